/**
 * The pieces of the report that the README's results section repeats: number formats,
 * Markdown tables (columns n/a in every row left out), the one-line verdict of a comparison,
 * the first-screen answer and the methods table.
 * @module
 */
import type { Analysis, MethodSummary } from "./compare.ts";
import type { Recipe } from "./contracts.ts";
import type { Family, Metric, PairComparison } from "./pairs.ts";

/**
 * A table cell: user-given names must not open HTML or split the row.
 *
 * @example
 * ```ts
 * import { cell } from "./report_text.ts";
 * if (cell("a|<b>") !== "a\\|&lt;b&gt;") throw new Error(cell("a|<b>"));
 * ```
 */
export function cell(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\|/g, "\\|");
}

/**
 * The sentences on settings chosen after a recipe's grid (its `then`), one per later pipeline.
 *
 * @example
 * ```ts
 * import { laterRecipeSentences } from "./report_text.ts";
 * const [s] = laterRecipeSentences({
 *   pipeline: "recipe", split: "dev", grid: {}, chosen: {},
 *   then: [{ pipeline: "lp", split: "dev", grid: { steps: [0, 30] }, chosen: { steps: 30 }, applies: "full" }],
 * });
 * if (s !== "Then the `lp` pipeline, on dev, from steps ∈ {0, 30}: steps 30 (full).") throw new Error(s);
 * ```
 */
export function laterRecipeSentences(r: Recipe): string[] {
  const show = (v: unknown) => cell(typeof v === "string" ? v : JSON.stringify(v));
  return (r.then ?? []).map((t) =>
    `Then the \`${cell(t.pipeline)}\` pipeline, on ${cell(t.split)}, from ${
      Object.entries(t.grid).map(([k, vs]) => `${cell(k)} ∈ {${vs.map(show).join(", ")}}`).join(" × ")
    }: ${Object.entries(t.chosen).map(([k, v]) => `${cell(k)} ${show(v)}`).join(", ")} (${cell(t.applies)}).`
  );
}

/**
 * Points with one decimal, or n/a.
 *
 * @example
 * ```ts
 * import { pts } from "./report_text.ts";
 * if (pts(12.345) !== "12.3" || pts(null) !== "n/a") throw new Error();
 * ```
 */
export const pts = (x: number | null | undefined): string => x == null ? "n/a" : x.toFixed(1);

/**
 * A signed gain in points.
 *
 * @example
 * ```ts
 * import { signed } from "./report_text.ts";
 * if (signed(1.25) !== "+1.3" || signed(-2) !== "-2.0") throw new Error();
 * ```
 */
export const signed = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;

/**
 * A p-value: three decimals, scientific below 0.001, or n/a.
 *
 * @example
 * ```ts
 * import { fmtP } from "./report_text.ts";
 * if (fmtP(0.25) !== "0.250" || fmtP(0.00002) !== "2.0e-5" || fmtP(null) !== "n/a") throw new Error();
 * ```
 */
export const fmtP = (p: number | null | undefined): string =>
  p == null ? "n/a" : p >= 0.001 ? p.toFixed(3) : p.toExponential(1);

/**
 * A share in [0, 1] as a percentage with two decimals (an overlap of 0.02% must not read 0.0%).
 *
 * @example
 * ```ts
 * import { pct2 } from "./report_text.ts";
 * if (pct2(0.0002) !== "0.02%") throw new Error(pct2(0.0002));
 * ```
 */
export const pct2 = (x: number): string => `${(100 * x).toFixed(2)}%`;

/**
 * A signed interval in points, or n/a.
 *
 * @example
 * ```ts
 * import { ci } from "./report_text.ts";
 * if (ci([-0.04, 2]) !== "[-0.0, +2.0]" || ci(null) !== "n/a") throw new Error(ci([-0.04, 2]));
 * ```
 */
export const ci = (c: [number, number] | null | undefined): string =>
  c ? `[${signed(c[0])}, ${signed(c[1])}]` : "n/a";

/**
 * A Markdown table; a column (other than the first) that reads n/a in every row is left out.
 *
 * @example
 * ```ts
 * import { table } from "./report_text.ts";
 * const t = table(["m", "x", "y"], [["a", "1", "n/a"], ["b", "2", "n/a"]]);
 * if (t[0] !== "| m | x |" || t.length !== 4) throw new Error(t.join("\n"));
 * ```
 */
export function table(head: string[], rows: string[][]): string[] {
  const keep = head.map((_, i) => i === 0 || !rows.length || rows.some((r) => r[i] !== "n/a"));
  const pick = <T>(xs: T[]) => xs.filter((_, i) => keep[i]);
  return [
    `| ${pick(head).join(" | ")} |`,
    `|${pick(head).map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${pick(r).join(" | ")} |`),
  ];
}

/**
 * What a metric is called in the report.
 *
 * @example
 * ```ts
 * import { metricLabel } from "./report_text.ts";
 * if (metricLabel("f1") !== "zero-shot macro-F1" || metricLabel("accuracy", "source") !== "English (source) accuracy") {
 *   throw new Error();
 * }
 * ```
 */
export function metricLabel(metric: Metric, split: "source" | "test" = "test"): string {
  if (metric === "retrieval_kept") return "retrieval kept vs the checkpoint";
  const where = split === "source" ? "English (source)" : "zero-shot";
  const what =
    { f1: "macro-F1", accuracy: "accuracy", accuracy_centred: "accuracy after language centring" }[metric];
  return `${where} ${what}`;
}

/**
 * Comparisons of a family.
 *
 * @example
 * ```ts ignore
 * const primary = inFamily(analysis, "primary");
 * ```
 */
export const inFamily = (a: Analysis, f: Family): PairComparison[] =>
  a.comparisons.filter((c) => c.family === f);

/**
 * The one-line verdict of a comparison within its family of `k` tests: which side the data
 * favour, at the 0.05 family-wise level, and when the seeds cannot get there at all.
 *
 * @example
 * ```ts ignore
 * verdict(c, 2); // "graddrop is better than full (significant after Holm over 2 tests)."
 * ```
 */
export function verdict(c: PairComparison, k: number): string {
  const over = `Holm over ${k} ${c.family} test${k === 1 ? "" : "s"}`;
  if (c.p_holm < 0.05) {
    return `**${cell(c.gain > 0 ? c.a : c.b)} is better than ${
      cell(c.gain > 0 ? c.b : c.a)
    }** (significant after ${over}).`;
  }
  if (c.min_p * k >= 0.05) {
    return `**Undecided:** ${c.n_seeds} seeds cannot reach p_Holm < 0.05 with ${over}, whatever the data.`;
  }
  const covers = !c.ci95 || (c.ci95[0] <= 0 && c.ci95[1] >= 0);
  return `**No significant difference** after ${over}${
    covers
      ? "; the interval includes 0"
      : "; the unadjusted interval excludes 0, the family-wise test does not"
  } (no evidence of no difference either).`;
}

/**
 * One first-screen line: the comparison, its gain, interval, p_Holm and verdict.
 *
 * @example
 * ```ts ignore
 * answerLine(c, 2); // "- **graddrop − full**, zero-shot accuracy: +1.2 points, 95% CI [+0.4, +2.0], p_Holm 0.016 (6 seeds). **graddrop is better ..."
 * ```
 */
export function answerLine(c: PairComparison, k: number): string {
  const unit = c.metric === "retrieval_kept" ? "points of retrieval kept" : "points";
  return `- **${cell(c.a)} − ${cell(c.b)}**, ${metricLabel(c.metric, c.split)}: ${
    signed(c.gain)
  } ${unit}, 95% CI ${ci(c.ci95)}, p_Holm ${fmtP(c.p_holm)} (${c.n_seeds} seeds, ${c.n_languages} language${
    c.n_languages === 1 ? "" : "s"
  }). ${verdict(c, k)}`;
}

/**
 * The answer first: each primary comparison, and what pretraining adds when the control ran.
 *
 * @example
 * ```ts ignore
 * const lines = answer(analysis);
 * ```
 */
export function answer(a: Analysis): string[] {
  const primary = inFamily(a, "primary"), control = inFamily(a, "control");
  const out: string[] = [];
  if (primary.length) {
    out.push(
      primary.length === 1
        ? "The comparison this pipeline was declared to make (the primary family, one test, so Holm leaves its p as it is):"
        : `The comparisons this pipeline was declared to make (the primary family; Holm over these ${primary.length} alone):`,
      "",
      ...primary.map((c) => answerLine(c, primary.length)),
    );
  } else {
    out.push(
      "No primary comparison was declared (`primary` in the analysis stage's `with`, or `--primary`): every test in this report is exploratory.",
    );
  }
  for (const s of a.skipped.filter((s) => s.family === "primary")) {
    out.push(
      `- **${cell(s.a)} − ${cell(s.b)}** (${metricLabel(s.metric)}): declared but not made: ${s.reason}.`,
    );
  }
  if (control.length) {
    out.push(
      "",
      `**What pretraining adds** (full − random-init: the same fine-tuning from random weights; a control family of its own, Holm over its ${control.length} tests, so it neither competes with nor dilutes the primary question):`,
      "",
      ...control.map((c) => answerLine(c, control.length)),
    );
  }
  return [...out, ""];
}

const KIND_LABEL: Record<MethodSummary["kind"], string> = {
  "fine-tuned": "fine-tuned",
  "control": "control (random init)",
  "non-neural": "non-neural baseline",
  "floor": "floor",
};

/**
 * The methods table, controls and baselines included, with the figure caption text above it.
 *
 * @example
 * ```ts ignore
 * const lines = methodsTable(analysis);
 * ```
 */
export function methodsTable(a: Analysis): string[] {
  const src = a.languages.source;
  const source = src.length === 1 ? cell(src[0]) : "source";
  const share = Math.round(100 * a.design.collapse_share);
  // Analyses made without unlabelled text keep their table as it was.
  const centred = a.summary.some((s) => s.zero_shot_centred);
  return table(
    [
      "method",
      "kind",
      "seeds",
      `${source} accuracy`,
      `${source} macro-F1`,
      "zero-shot accuracy",
      "95% CI",
      "zero-shot macro-F1",
      ...(centred ? ["centred zero-shot accuracy", "centred macro-F1"] : []),
      "retrieval kept",
      "kept 95% CI",
      `one label > ${share}%`,
    ],
    a.summary.map((s) => [
      cell(s.method),
      KIND_LABEL[s.kind],
      s.floor ? "deterministic" : String(s.seeds),
      s.source ? (s.floor ? pts(s.source.mean) : `${pts(s.source.mean)} ± ${pts(s.source.std)}`) : "n/a",
      pts(s.source_f1),
      s.zero_shot
        ? (s.floor ? pts(s.zero_shot.mean) : `${pts(s.zero_shot.mean)} ± ${pts(s.zero_shot.std)}`)
        : "n/a",
      s.zero_shot?.ci95 ? `[${pts(s.zero_shot.ci95[0])}, ${pts(s.zero_shot.ci95[1])}]` : "n/a",
      pts(s.f1),
      ...(centred
        ? [
          s.zero_shot_centred ? `${pts(s.zero_shot_centred.mean)} ± ${pts(s.zero_shot_centred.std)}` : "n/a",
          pts(s.f1_centred),
        ]
        : []),
      s.retrieval_kept ? `${pts(s.retrieval_kept.mean)}%` : "n/a",
      s.retrieval_kept?.ci95 ? `[${pts(s.retrieval_kept.ci95[0])}, ${pts(s.retrieval_kept.ci95[1])}]` : "n/a",
      s.collapsed === null
        ? "n/a"
        : `${s.collapsed.length} of ${a.predictions.filter((p) => p.method === s.method).length}`,
    ]),
  );
}

/**
 * What the methods table says, in one line.
 *
 * @example
 * ```ts ignore
 * const line = methodsLegend(analysis);
 * ```
 */
export function methodsLegend(a: Analysis): string {
  const seeds = [...new Set(a.summary.filter((s) => !s.floor).map((s) => s.seeds))].sort((x, y) => x - y);
  const f1 = a.summary.some((s) => s.f1 !== null || s.source_f1 !== null);
  return [
    `${f1 ? "Accuracy and macro-F1" : "Accuracy"} in %: mean ± std over ${
      seeds.join(" or ")
    } seeds of the per-seed mean over languages; 95% CI: t-interval over those per-seed means.`,
    ...(a.summary.some((s) => s.zero_shot_centred)
      ? [
        "Centred: the same test items after language centring (each language's mean head input over its unlabelled dev sentences moved onto English's; no target-language label read).",
      ]
      : []),
    ...(a.summary.some((s) => s.retrieval_kept)
      ? [
        "Retrieval kept: the fine-tuned model's English↔language retrieval as a share of the pretrained checkpoint's (100% keeps all).",
      ]
      : []),
    ...(a.predictions.length
      ? [
        `One label > ${
          Math.round(100 * a.design.collapse_share)
        }%: languages on which the method predicts one label for more than that share of items.`,
      ]
      : []),
  ].join(" ");
}
