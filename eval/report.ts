/**
 * `report.md`: the analysis as Markdown tables, with "How to read this" saying exactly
 * what was run. Plots are marked by `<!-- figure:NAME -->` comments that the HTML report
 * replaces with SVG (Markdown viewers hide them).
 * @module
 */
import type { Analysis } from "./compare.ts";
import { COVARIATES } from "./compare.ts";

/** The figures `report.md` marks, in order. */
export const FIGURES = ["methods", "languages", "covariate", "curves"] as const;

/**
 * Where a figure goes.
 *
 * @example
 * ```ts
 * import { figureMarker } from "./report.ts";
 * if (figureMarker("methods") !== "<!-- figure:methods -->") throw new Error();
 * ```
 */
export const figureMarker = (name: typeof FIGURES[number]): string => `<!-- figure:${name} -->`;

/**
 * A table cell: user-given names must not open HTML or split the row.
 *
 * @example
 * ```ts
 * import { cell } from "./report.ts";
 * if (cell("a|<b>") !== "a\\|&lt;b&gt;") throw new Error(cell("a|<b>"));
 * ```
 */
export function cell(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\|/g, "\\|");
}

/**
 * Points with one decimal, or n/a.
 *
 * @example
 * ```ts
 * import { pts } from "./report.ts";
 * if (pts(12.345) !== "12.3" || pts(null) !== "n/a") throw new Error();
 * ```
 */
export const pts = (x: number | null | undefined): string => x == null ? "n/a" : x.toFixed(1);

/**
 * A signed gain in points.
 *
 * @example
 * ```ts
 * import { signed } from "./report.ts";
 * if (signed(1.25) !== "+1.3" || signed(-2) !== "-2.0") throw new Error();
 * ```
 */
export const signed = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;

/**
 * A p-value: three decimals, scientific below 0.001, or n/a.
 *
 * @example
 * ```ts
 * import { fmtP } from "./report.ts";
 * if (fmtP(0.25) !== "0.250" || fmtP(0.00002) !== "2.0e-5" || fmtP(null) !== "n/a") throw new Error();
 * ```
 */
export const fmtP = (p: number | null | undefined): string =>
  p == null ? "n/a" : p >= 0.001 ? p.toFixed(3) : p.toExponential(1);

// Rounds first, so a tiny negative reads 0.00 rather than -0.00.
const signedRho = (r: number) => {
  const s = r.toFixed(2);
  return Number(s) === 0 ? "0.00" : Number(s) > 0 ? `+${s}` : s;
};

const ci = (c: [number, number] | null) => c ? `[${signed(c[0])}, ${signed(c[1])}]` : "n/a";

function table(head: string[], rows: string[][]): string[] {
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
}

const COVARIATE_LABEL: Record<typeof COVARIATES[number], string> = {
  pretrain_tokens: "pretraining tokens",
  pretrain_share: "pretraining share",
  resource_size: "resource size",
  fertility: "fertility",
  unk_rate: "unknown-token rate",
};

function seedDesign(a: Analysis): string {
  const counts = a.design.seed_counts;
  if (!counts.length) return "No comparison could be made, so no test was run.";
  const each = counts.map((c) =>
    `n = ${c.n_seeds} seed${c.n_seeds === 1 ? "" : "s"}: smallest attainable p = 2/2^${c.n_seeds} = ${
      fmtP(c.min_p)
    }`
  ).join("; ");
  const smallest = Math.min(...counts.map((c) => c.min_p));
  // Holm multiplies the smallest p by the family size; 2/2^n · m < 0.05 needs 2^n > 40m.
  const needed = Math.floor(Math.log2(40 * a.design.tests)) + 1;
  const verdict = smallest * a.design.tests >= 0.05
    ? `**With ${a.design.tests} tests, no Holm-adjusted p of a comparison between methods can fall below 0.05, whatever the data: that needs at least ${needed} seeds per comparison (the correlations, permutation tests over languages, can).**`
    : `A Holm-adjusted p below 0.05 needs at least ${needed} seeds per comparison here.`;
  return `${each}. ${verdict}`;
}

function howToRead(a: Analysis): string[] {
  const d = a.design;
  return [
    "## How to read this",
    "",
    `- **The unit is the seed.** A seed is one fine-tuning run per method: same pretrained checkpoint, same data; the seed changes only fine-tuning randomness (head initialisation, data order, dropout, gradient masks). Every language scored by one run shares that run's luck, so a comparison a − b is summarised per seed first: the mean over zero-shot languages of a's accuracy minus b's, in points, pairing runs by seed number, on the seeds and languages both methods have.`,
    `- **p** is an exact two-sided sign-flip test over the n per-seed mean gains: if a and b were exchangeable each per-seed gain would be as likely negative as positive, and p is the share of the 2^n sign patterns whose mean is at least as far from zero as the one observed (above 20 seeds, ${d.resamples} random patterns). ${
      seedDesign(a)
    }`,
    `- **p (Holm)** is p adjusted by Holm's step-down method over all ${d.tests} tests in this report (${d.comparison_tests} comparisons between methods and ${d.correlation_tests} correlations); it controls the chance of any false positive among them. Read significance from it, not from p.`,
    `- **95% CI** is a two-level percentile bootstrap of the mean gain: each of ${d.resamples} replicates draws the seeds with replacement, then the languages with replacement (one draw shared by the drawn seeds, since every seed scored the same languages), and averages; seed ${d.seed}, so the same data gives the same interval. It carries both seed-to-seed and language-to-language variation. With 3 seeds the seed level has only 10 distinct resamples: treat the interval as approximate.`,
    `- **Wins/ties/losses** (descriptive, not tests): a language is a win for a when its gain (difference of seed-mean accuracies) exceeds one binomial standard error of that difference on the language's n test items, SE = 100·sqrt((p_a(1−p_a) + p_b(1−p_b))/n), a loss when it is below −SE, else a tie. The two accuracies are treated as independent, which overstates the error of a paired difference, so the rule errs toward ties. Languages whose item count the metrics do not give are counted as "n unknown" and not classified. For scale: at 60 items and 50% accuracy SE is 9.1 points.`,
    `- **Correlations** are Spearman's rho between a method's per-language gain over ${a.baseline} and a covariate, over the languages where the covariate is known ("n/a" when fewer than three are, or it does not vary); p from ${d.resamples} permutations of the languages, Holm-adjusted with the rest.`,
    ...(a.floor
      ? [
        `- **majority** is the majority-class floor: it always predicts the most frequent training label. It is deterministic, shown for scale, and takes part in no test.`,
      ]
      : []),
    `- **What this design cannot show.** Languages are not independent samples (related languages, shared scripts, and test sets that are translations of each other move together), so the number of languages is not a sample size and per-language figures are descriptive. There is one task, one model and one pretraining run: the seeds vary fine-tuning only, so a difference may belong to this checkpoint. Nothing here extends beyond these languages. A p above 0.05 is not evidence of no difference: read the interval.`,
    "",
  ];
}

function contamination(a: Analysis): string[] {
  const c = a.contamination;
  if (!c) return [];
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const head = c.exact_share === 0
    ? `> **Exact overlap with the pretraining corpus: ${
      pct(0)
    } of ${c.items} test items.** Word 8-gram overlap: ${pct(c.ngram8_share)}.`
    : `> **Warning: ${
      pct(c.exact_share)
    } of ${c.items} test items occur verbatim in the pretraining corpus: their languages are not zero-shot.** Word 8-gram overlap: ${
      pct(c.ngram8_share)
    }.`;
  const per = Object.entries(c.per_language).sort((x, y) => x[0].localeCompare(y[0]));
  return [
    "## Test-set contamination",
    "",
    head,
    "",
    "Exact: share of test items whose normalised text occurs in the pretraining corpus. 8-gram: share of their word 8-grams that do.",
    "",
    ...table(["language", "items", "exact", "8-gram"], [
      ["**all**", String(c.items), `**${pct(c.exact_share)}**`, pct(c.ngram8_share)],
      ...per.map(([l, v]) => [cell(l), String(v.items), pct(v.exact), pct(v.ngram8)]),
    ]),
    "",
  ];
}

function methods(a: Analysis): string[] {
  return [
    "## Methods",
    "",
    "Accuracy in %. Source: mean ± std over seeds of the mean over source languages. Zero-shot: the same over zero-shot languages, with its two-level bootstrap 95% CI.",
    "",
    ...table(
      ["method", "seeds", "source", "zero-shot", "95% CI", "zero-shot macro-F1", "zero-shot languages"],
      a.summary.map((s) => [
        cell(s.method),
        s.floor ? "deterministic" : String(s.seeds),
        s.source ? `${pts(s.source.mean)} ± ${pts(s.source.std)}` : "n/a",
        s.zero_shot ? `${pts(s.zero_shot.mean)} ± ${pts(s.zero_shot.std)}` : "n/a",
        s.zero_shot?.ci95 ? `[${pts(s.zero_shot.ci95[0])}, ${pts(s.zero_shot.ci95[1])}]` : "n/a",
        pts(s.f1),
        String(s.zero_shot?.languages ?? 0),
      ]),
    ),
    "",
    figureMarker("methods"),
    "",
  ];
}

function comparisonRows(cs: Analysis["comparisons"]): string[][] {
  return cs.map((c) => [
    `${cell(c.a)} − ${cell(c.b)}`,
    signed(c.gain),
    ci(c.ci95),
    fmtP(c.p),
    c.p_holm < 0.05 ? `**${fmtP(c.p_holm)}**` : fmtP(c.p_holm),
    String(c.n_seeds),
    String(c.n_languages),
    `${c.wins}/${c.ties}/${c.losses}${c.unknown ? ` (${c.unknown} n unknown)` : ""}`,
  ]);
}

const COMPARISON_HEAD = [
  "comparison",
  "gain (pts)",
  "95% CI",
  "p",
  "p (Holm)",
  "seeds",
  "languages",
  "wins/ties/losses",
];

function comparisons(a: Analysis): string[] {
  const vs = a.comparisons.filter((c) => c.b === a.baseline);
  const others = a.comparisons.filter((c) => c.b !== a.baseline);
  const out = [
    `## Against the baseline (${cell(a.baseline)}), zero-shot languages`,
    "",
    ...(vs.length
      ? table(COMPARISON_HEAD, comparisonRows(vs))
      : ["No method could be compared with the baseline."]),
    "",
  ];
  if (a.design.pairs === "all" && a.methods.length > 2) {
    const cellOf = (r: string, c: string) => {
      if (r === c) return "—";
      const direct = a.comparisons.find((x) => x.a === r && x.b === c);
      const flipped = a.comparisons.find((x) => x.a === c && x.b === r);
      const x = direct ?? flipped;
      if (!x) return "n/a";
      const k = direct ? 1 : -1;
      const [lo, hi] = direct ? x.ci95 : [-x.ci95[1], -x.ci95[0]];
      const g = `${signed(k * x.gain)} [${signed(lo)}, ${signed(hi)}] p_H ${fmtP(x.p_holm)}`;
      return x.p_holm < 0.05 ? `**${g}**` : g;
    };
    out.push(
      "## All pairs",
      "",
      "Row − column: gain in points on the zero-shot languages, 95% CI, Holm-adjusted p (bold below 0.05).",
      "",
      ...table(
        ["row − column", ...a.methods.map(cell)],
        a.methods.map((r) => [cell(r), ...a.methods.map((c) => cellOf(r, c))]),
      ),
      "",
      ...(others.length ? [...table(COMPARISON_HEAD, comparisonRows(others)), ""] : []),
    );
  }
  if (a.skipped.length) {
    out.push(...a.skipped.map((s) => `- ${cell(s.a)} − ${cell(s.b)}: not compared (${s.reason}).`), "");
  }
  return out;
}

function languageTables(a: Analysis): string[] {
  const shown = a.summary.map((s) => s.method);
  const out = [
    "## Per language",
    "",
    `Gain over ${cell(a.baseline)} per zero-shot language (seed means, points), grouped by ${
      a.tiers ? "resource tier" : "script"
    } and sorted by mean gain.`,
    "",
    figureMarker("languages"),
    "",
    "Accuracy (%, mean over seeds). n: test items (n/a when the metrics do not say).",
    "",
    ...table(
      ["language", "split", "n", ...shown.map(cell)],
      [...a.per_language].sort((x, y) => x.split.localeCompare(y.split)).map((l) => [
        cell(l.language),
        l.split === "source" ? "source" : "zero-shot",
        l.n === null ? "n/a" : String(l.n),
        ...shown.map((m) => pts(l.accuracy[m])),
      ]),
    ),
    "",
  ];
  const task = a.task;
  if (task && Object.keys(task.languages).length) {
    const num = (x: number | null | undefined, f: (x: number) => string) => x == null ? "n/a" : f(x);
    out.push(
      "Covariates from the task (n/a: not recorded for that language).",
      "",
      ...table(
        [
          "language",
          "script",
          "tier",
          "pretraining tokens",
          "pretraining share",
          "resource size",
          "fertility",
          "unknown rate",
        ],
        a.per_language.map((l) => {
          const i = task.languages[l.language];
          return [
            cell(l.language),
            cell(i?.script ?? "n/a"),
            cell(i?.tier ?? "n/a"),
            num(i?.pretrain_tokens, (x) => Math.round(x).toLocaleString("en-US")),
            num(i?.pretrain_share, (x) => x.toPrecision(3)),
            num(i?.resource_size, (x) => x.toLocaleString("en-US")),
            num(i?.fertility, (x) => x.toFixed(2)),
            num(i?.unk_rate, (x) => x.toFixed(4)),
          ];
        }),
      ),
      "",
    );
  }
  return out;
}

function covariates(a: Analysis): string[] {
  if (!a.covariates.length && !a.groups.length) return [];
  const out = [`## Gains and the languages' resources`, ""];
  if (a.covariates.length) {
    const methodsWith = [...new Set(a.covariates.map((c) => c.method))];
    out.push(
      `Spearman's rho between each method's per-language gain over ${
        cell(a.baseline)
      } and a covariate; (known/languages); p_H: Holm-adjusted p.`,
      "",
      ...table(
        ["method", ...COVARIATES.map((c) => COVARIATE_LABEL[c])],
        methodsWith.map((m) => [
          cell(m),
          ...COVARIATES.map((cov) => {
            const c = a.covariates.find((x) => x.method === m && x.covariate === cov)!;
            return c.rho === null
              ? `n/a (${c.n}/${c.of})`
              : `${signedRho(c.rho)} (${c.n}/${c.of}) p_H ${fmtP(c.p_holm)}`;
          }),
        ]),
      ),
      "",
    );
  }
  for (const by of ["tier", "script"] as const) {
    const gs = a.groups.filter((g) => g.by === by);
    if (!gs.length) continue;
    const groups = [...new Set(gs.map((g) => g.group))];
    const ms = [...new Set(gs.map((g) => g.method))];
    out.push(
      `Mean gain over ${cell(a.baseline)} by ${
        by === "tier" ? "resource tier" : "script"
      } (points; languages).`,
      "",
      ...table(
        [by, ...ms.map(cell)],
        groups.map((g) => [
          cell(g),
          ...ms.map((m) => {
            const x = gs.find((y) => y.group === g && y.method === m);
            return x ? `${signed(x.mean_gain)} (${x.n})` : "n/a";
          }),
        ]),
      ),
      "",
    );
  }
  out.push(figureMarker("covariate"), "");
  return out;
}

function retrieval(a: Analysis): string[] {
  const r = a.retrieval;
  if (!r) return [];
  const out = [
    "## Cross-lingual sentence retrieval",
    "",
    "Top-1 English↔language retrieval accuracy (%). Kept: mean over languages of the fine-tuned model's retrieval divided by the pretrained checkpoint's; change: mean difference in points.",
    "",
    ...table(["model", "mean retrieval", "kept vs checkpoint", "change (pts)", "languages"], [
      ...(r.checkpoint
        ? [["pretrained checkpoint", pts(r.checkpoint.mean), "100%", "0.0", String(r.checkpoint.languages)]]
        : []),
      ...r.methods.map((m) => [
        cell(m.method),
        pts(m.mean),
        m.kept === null ? "n/a" : `${(100 * m.kept).toFixed(1)}%`,
        m.change === null ? "n/a" : signed(m.change),
        String(m.languages),
      ]),
    ]),
    "",
  ];
  const ms = r.methods.map((m) => m.method);
  out.push(
    "Retrieval per language (%, fine-tuned: mean over seeds).",
    "",
    ...table(
      ["language", "checkpoint", ...ms.map(cell)],
      r.per_language.map((l) => [cell(l.language), pts(l.checkpoint), ...ms.map((m) => pts(l.methods[m]))]),
    ),
    "",
  );
  return out;
}

function references(a: Analysis, sourceLabel: string): string[] {
  if (!a.references.length) return [];
  return [
    "## Beside published figures",
    "",
    `Accuracy (%). Ours: ${sourceLabel} and the zero-shot mean of this run; published figures are as reported by their authors, on their own models, data and languages.`,
    "",
    ...table(["model", "English / source", "zero-shot", "from"], [
      ...a.summary.map((s) => [cell(s.method), pts(s.source?.mean), pts(s.zero_shot?.mean), "this run"]),
      ...a.references.map((r) => [cell(r.label), pts(r.english), pts(r.zero_shot), "literature"]),
    ]),
    "",
  ];
}

/**
 * Renders the Markdown report.
 *
 * @example
 * ```ts ignore
 * const md = markdown(analyze(rows, { pairs: "all", resamples: 10000, seed: 0, task }), "GradDrop", ["Task: sib200."]);
 * ```
 */
export function markdown(a: Analysis, title: string, notes: string[]): string {
  const src = a.languages.source;
  const sourceLabel = src.length === 1
    ? `source language ${src[0]}`
    : `mean over ${src.length} source languages`;
  return [
    `# ${cell(title)}`,
    "",
    ...notes.flatMap((n) => [n, ""]),
    ...contamination(a),
    ...howToRead(a),
    ...methods(a),
    ...comparisons(a),
    ...languageTables(a),
    ...covariates(a),
    ...retrieval(a),
    ...references(a, sourceLabel),
    "## Fine-tuning loss",
    "",
    figureMarker("curves"),
    "",
  ].join("\n");
}
