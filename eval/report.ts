/**
 * `report.md`: the analysis as Markdown, the answer first (primary verdicts, the methods
 * table, the main plot), details after, "How to read this" last, every number of the design
 * (seeds, families, resamples) taken from the run. Plots are marked by `<!-- figure:NAME -->`
 * comments that the HTML report replaces with SVG (Markdown viewers hide them).
 * @module
 */
import type { Analysis } from "./compare.ts";
import { COVARIATES } from "./compare.ts";
import type { PairComparison } from "./pairs.ts";
import {
  answer,
  cell,
  ci,
  fmtP,
  inFamily,
  laterRecipeSentences,
  methodsLegend,
  methodsTable,
  metricLabel,
  pct2,
  pts,
  signed,
  table,
} from "./report_text.ts";

export { cell, fmtP, pts, signed } from "./report_text.ts";

/** The figures `report.md` marks, in order. */
export const FIGURES = ["methods", "languages", "covariate", "dev", "curves"] as const;

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

// Rounds first, so a tiny negative reads 0.00 rather than -0.00.
const signedRho = (r: number) => {
  const s = r.toFixed(2);
  return Number(s) === 0 ? "0.00" : Number(s) > 0 ? `+${s}` : s;
};

const COVARIATE_LABEL: Record<typeof COVARIATES[number], string> = {
  pretrain_tokens: "pretraining tokens",
  pretrain_share: "pretraining share",
  resource_size: "resource size",
  fertility: "fertility",
  unk_rate: "unknown-token rate",
};

/** A collapsible block: one summary line, the rest on demand (GitHub and the HTML report). */
function details(summary: string, body: string[]): string[] {
  return ["<details>", `<summary>${summary}</summary>`, "", ...body, "", "</details>", ""];
}

function warnings(a: Analysis): string[] {
  return a.warnings.length ? [...a.warnings.map((w) => `> **Warning:** ${cell(w)}`), ""] : [];
}

function contamination(a: Analysis): string[] {
  const c = a.contamination;
  if (!c) return [];
  const line = c.exact_share === 0
    ? `**Test-set contamination:** no test item occurs verbatim in the pretraining corpus (${c.items} items); word 8-gram overlap ${
      pct2(c.ngram8_share)
    }.`
    : `> **Warning: ${
      pct2(c.exact_share)
    } of ${c.items} test items occur verbatim in the pretraining corpus: their languages are not zero-shot.** Word 8-gram overlap: ${
      pct2(c.ngram8_share)
    }.`;
  const per = Object.entries(c.per_language).sort((x, y) => x[0].localeCompare(y[0]));
  return [
    line,
    "",
    ...(per.length
      ? details("Contamination per language", [
        "Exact: share of test items whose normalised text occurs in the pretraining corpus. 8-gram: share of their word 8-grams that do.",
        "",
        ...table(["language", "items", "exact", "8-gram"], [
          ["**all**", String(c.items), `**${pct2(c.exact_share)}**`, pct2(c.ngram8_share)],
          ...per.map(([l, v]) => [cell(l), String(v.items), pct2(v.exact), pct2(v.ngram8)]),
        ]),
      ])
      : []),
  ];
}

function recipe(a: Analysis): string[] {
  const r = a.recipe;
  if (!r) return [];
  const show = (v: unknown) => typeof v === "string" ? v : JSON.stringify(v);
  const grid = Object.entries(r.grid).map(([k, vs]) => `${cell(k)} ∈ {${vs.map(show).map(cell).join(", ")}}`);
  const chosen = Object.entries(r.chosen).map(([m, vs]) =>
    `${cell(m)}: ${Object.entries(vs).map(([k, v]) => `${cell(k)} ${cell(show(v))}`).join(", ")}`
  );
  return [
    "## Recipe",
    "",
    `Chosen by the \`${cell(r.pipeline)}\` pipeline on ${
      cell(r.split)
    } alone (never on test), from the grid ${grid.join(" × ")}. Chosen per method: ${chosen.join("; ")}.`,
    ...laterRecipeSentences(r).map((s) => ["", s]).flat(),
    "",
  ];
}

function methods(a: Analysis): string[] {
  // The plot first and compact: with the verdicts above, it and the table's head fit one screen.
  return ["## Methods", "", figureMarker("methods"), "", ...methodsTable(a), "", methodsLegend(a), ""];
}

const COMPARISON_HEAD = [
  "comparison",
  "metric",
  "gain (pts)",
  "95% CI",
  "p",
  "p (Holm)",
  "seeds",
  "languages",
  "wins/ties/losses",
  "per-seed gains",
];

function comparisonRows(cs: PairComparison[]): string[][] {
  return cs.map((c) => [
    `${cell(c.a)} − ${cell(c.b)}`,
    metricLabel(c.metric, c.split),
    signed(c.gain),
    ci(c.ci95),
    fmtP(c.p),
    c.p_holm < 0.05 ? `**${fmtP(c.p_holm)}**` : fmtP(c.p_holm),
    String(c.n_seeds),
    String(c.n_languages),
    c.metric.startsWith("accuracy")
      ? `${c.wins}/${c.ties}/${c.losses}${c.unknown ? ` (${c.unknown} n unknown)` : ""}`
      : "n/a",
    c.per_seed.map(signed).join(" "),
  ]);
}

function declared(a: Analysis): string[] {
  const cs = [...inFamily(a, "primary"), ...inFamily(a, "control")];
  if (!cs.length) return [];
  // The declared pairs on the other metrics: an accuracy gain that macro-F1 does not back is a warning sign.
  const pairs = inFamily(a, "primary");
  const beside = inFamily(a, "exploratory").filter((c) =>
    pairs.some((p) => (p.a === c.a && p.b === c.b) || (p.a === c.b && p.b === c.a))
  );
  return [
    "## Primary and control comparisons in detail",
    "",
    "Gains in points (a − b); p: exact sign-flip test over the per-seed gains; p (Holm): within the comparison's own family.",
    "",
    ...table(COMPARISON_HEAD, comparisonRows(cs)),
    "",
    ...(beside.length
      ? [
        "The primary pairs on the other metrics (exploratory family):",
        "",
        ...table(COMPARISON_HEAD, comparisonRows(beside)),
        "",
      ]
      : []),
  ];
}

function forgetting(a: Analysis): string[] {
  const r = a.retrieval;
  if (!r) return [];
  const kept = a.comparisons.filter((c) => c.metric === "retrieval_kept");
  const out = [
    "## Forgetting: cross-lingual retrieval kept",
    "",
    "Top-1 English↔language retrieval accuracy (%). Kept: per seed, the mean over languages of the fine-tuned model's retrieval divided by the pretrained checkpoint's; mean over seeds with its 95% t-interval. Change: mean difference in points.",
    "",
    ...table([
      "model",
      "mean retrieval",
      "kept vs checkpoint",
      "kept 95% CI",
      "change (pts)",
      "seeds",
      "languages",
    ], [
      ...(r.checkpoint
        ? [[
          "pretrained checkpoint",
          pts(r.checkpoint.mean),
          "100%",
          "n/a",
          "0.0",
          "n/a",
          String(r.checkpoint.languages),
        ]]
        : []),
      ...r.methods.map((m) => [
        cell(m.method),
        pts(m.mean),
        m.kept === null ? "n/a" : `${(100 * m.kept).toFixed(1)}%`,
        m.kept_ci95 ? `[${(100 * m.kept_ci95[0]).toFixed(1)}, ${(100 * m.kept_ci95[1]).toFixed(1)}]` : "n/a",
        m.change === null ? "n/a" : signed(m.change),
        String(m.seeds.length || "n/a"),
        String(m.languages),
      ]),
    ]),
    "",
  ];
  if (kept.length) {
    out.push(
      "Retrieval kept compared between methods (gain in points of kept; the same tests as accuracy; p (Holm) within each comparison's family):",
      "",
      ...table(
        [COMPARISON_HEAD[0], "family", ...COMPARISON_HEAD.slice(2)],
        comparisonRows(kept).map((r, i) => [r[0], kept[i].family, ...r.slice(2)]),
      ),
      "",
    );
  }
  const ms = r.methods.map((m) => m.method);
  out.push(
    ...details("Retrieval per language", [
      "Retrieval per language (%, fine-tuned: mean over seeds).",
      "",
      ...table(
        ["language", "checkpoint", ...ms.map(cell)],
        r.per_language.map((l) => [cell(l.language), pts(l.checkpoint), ...ms.map((m) => pts(l.methods[m]))]),
      ),
    ]),
  );
  return out;
}

function predictions(a: Analysis): string[] {
  if (!a.predictions.length) return [];
  const share = Math.round(100 * a.design.collapse_share);
  const flagged = a.predictions.filter((p) => p.collapsed);
  const methods = [...new Set(a.predictions.map((p) => p.method))];
  const out = [
    "## What the classifiers predict",
    "",
    `Share of a language's test items given the most predicted label (mean over seeds). A method is flagged on a language where one label takes more than ${share}% of its predictions: its accuracy there says little about the task.`,
    "",
    ...table(
      ["method", "flagged languages", "mean top-label share", "most predicted label (overall)"],
      methods.map((m) => {
        const own = a.predictions.filter((p) => p.method === m);
        const labels = new Map<string, number>();
        for (const p of own) labels.set(p.top_label, (labels.get(p.top_label) ?? 0) + 1);
        const top = [...labels].sort((x, y) => y[1] - x[1])[0][0];
        const bad = own.filter((p) => p.collapsed).length;
        return [
          cell(m),
          bad ? `**${bad} of ${own.length}**` : `0 of ${own.length}`,
          `${pts(own.reduce((s, p) => s + p.top_share, 0) / own.length)}%`,
          cell(top),
        ];
      }),
    ),
    "",
  ];
  if (flagged.length) {
    out.push(
      ...details(`Flagged (method, language) pairs: ${flagged.length}`, [
        ...table(
          ["method", "language", "label", "share"],
          flagged.map((p) => [cell(p.method), cell(p.language), cell(p.top_label), `${pts(p.top_share)}%`]),
        ),
      ]),
    );
  }
  return out;
}

function exploratory(a: Analysis): string[] {
  const cs = inFamily(a, "exploratory");
  const fam = a.design.families.find((f) => f.family === "exploratory")!;
  if (!cs.length && !a.skipped.length) return [];
  const out = [
    "## Exploratory comparisons",
    "",
    `Not declared before the run: hypothesis-generating. p (Holm) is adjusted over this family alone: ${fam.comparison_tests} comparisons, ${fam.correlation_tests} correlations and ${fam.tier_tests} per-tier gains. Gains in points, row − column.`,
    "",
  ];
  const acc = cs.filter((c) => c.metric === "accuracy");
  if (a.design.pairs === "all" && a.methods.length > 2) {
    const all = a.comparisons.filter((c) => c.metric === "accuracy" && c.split === "test");
    const cellOf = (r: string, col: string) => {
      if (r === col) return "—";
      const direct = all.find((x) => x.a === r && x.b === col);
      const flipped = all.find((x) => x.a === col && x.b === r);
      const x = direct ?? flipped;
      if (!x) return "n/a";
      const k = direct ? 1 : -1;
      const iv: [number, number] | null = x.ci95 ? (direct ? x.ci95 : [-x.ci95[1], -x.ci95[0]]) : null;
      const g = `${signed(k * x.gain)} ${ci(iv)} p_H ${fmtP(x.p_holm)}${
        x.family === "exploratory" ? "" : ` (${x.family})`
      }`;
      return x.p_holm < 0.05 ? `**${g}**` : g;
    };
    out.push(
      "Zero-shot accuracy, every pair: gain, 95% CI, Holm-adjusted p within its family (bold below 0.05).",
      "",
      ...table(
        ["row − column", ...a.methods.map(cell)],
        a.methods.map((r) => [cell(r), ...a.methods.map((c) => cellOf(r, c))]),
      ),
      "",
    );
  }
  for (const metric of ["accuracy", "f1"] as const) {
    const own = metric === "accuracy" ? acc : cs.filter((c) => c.metric === metric);
    if (!own.length) continue;
    out.push(
      ...details(`${metricLabel(metric)}: ${own.length} exploratory comparisons`, [
        ...table(COMPARISON_HEAD, comparisonRows(own)),
      ]),
    );
  }
  const skipped = a.skipped.filter((s) => s.family !== "primary");
  if (skipped.length) {
    out.push(
      ...skipped.map((s) =>
        `- ${cell(s.a)} − ${cell(s.b)} (${metricLabel(s.metric)}): not compared (${s.reason}).`
      ),
      "",
    );
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
    ...details("Accuracy per language", [
      "Accuracy (%, mean over seeds). n: test items.",
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
    ]),
  ];
  const task = a.task;
  if (task && Object.keys(task.languages).length) {
    const num = (x: number | null | undefined, f: (x: number) => string) => x == null ? "n/a" : f(x);
    out.push(
      ...details("Covariates per language", [
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
      ]),
    );
  }
  return out;
}

function covariates(a: Analysis): string[] {
  if (!a.covariates.length && !a.groups.length) return [];
  const out = [`## Gains and the languages' resources (exploratory)`, ""];
  // A covariate no language records (or that never varies) has no rho for any method: its column goes.
  const known = COVARIATES.filter((cov) => a.covariates.some((c) => c.covariate === cov && c.rho !== null));
  if (known.length) {
    const methodsWith = [...new Set(a.covariates.map((c) => c.method))];
    out.push(
      `Spearman's rho between each method's per-language gain over ${
        cell(a.baseline)
      } and a covariate; (known/languages); p_H: Holm-adjusted within the exploratory family. Covariates no language records are left out.`,
      "",
      ...table(
        ["method", ...known.map((c) => COVARIATE_LABEL[c])],
        methodsWith.map((m) => [
          cell(m),
          ...known.map((cov) => {
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
      by === "tier"
        ? `Mean gain over ${
          cell(a.baseline)
        } by resource tier (points; languages; 95% CI over seeds; p_H: Holm-adjusted within the exploratory family).`
        : `Mean gain over ${cell(a.baseline)} by script (points; languages; descriptive, no test).`,
      "",
      ...table(
        [by, ...ms.map(cell)],
        groups.map((g) => [
          cell(g),
          ...ms.map((m) => {
            const x = gs.find((y) => y.group === g && y.method === m);
            if (!x) return "n/a";
            const tested = x.p_holm === null ? "" : ` ${ci(x.ci95)} p_H ${fmtP(x.p_holm)}`;
            return `${signed(x.mean_gain)} (${x.n})${tested}`;
          }),
        ]),
      ),
      "",
    );
  }
  out.push(figureMarker("covariate"), "");
  return out;
}

function references(a: Analysis): string[] {
  if (!a.references.length) return [];
  const src = a.languages.source;
  const sourceLabel = src.length === 1
    ? `source language ${src[0]}`
    : `mean over ${src.length} source languages`;
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

function training(a: Analysis): string[] {
  return [
    "## Training",
    "",
    ...(a.dev_curves.length
      ? [
        "Dev accuracy per epoch (mean over seeds), the curve the recipe was chosen on.",
        "",
        figureMarker("dev"),
        "",
      ]
      : []),
    figureMarker("curves"),
    "",
  ];
}

function seedDesign(a: Analysis): string {
  return a.design.families.filter((f) => f.comparison_tests > 0).map((f) => {
    const counts = f.seed_counts.map((c) => `${c.n_seeds} seeds (smallest p ${fmtP(c.min_p)})`).join(", ");
    const best = Math.min(...f.seed_counts.map((c) => c.min_p));
    const reach = best * f.tests < 0.05
      ? "a result consistent in every seed can reach p_Holm < 0.05"
      : `**no p_Holm can fall below 0.05, whatever the data** (2/2^n × ${f.tests} ≥ 0.05 needs more seeds: at least ${
        Math.floor(Math.log2(40 * f.tests)) + 1
      })`;
    return `the ${f.family} family holds ${f.tests} tests with ${counts}: ${reach}`;
  }).join("; ");
}

function howToRead(a: Analysis): string[] {
  const d = a.design;
  const seedCounts = [...new Set(a.comparisons.map((c) => c.n_seeds))].sort((x, y) => x - y);
  const sampled = seedCounts.some((n) => n > 20);
  return [
    "## How to read this",
    "",
    `- **The unit is the seed.** A seed is one fine-tuning run per method: same pretrained checkpoint, same data; the seed changes only fine-tuning randomness. Every language one run scores shares that run's luck, so a comparison a − b is summarised per seed first (the mean over languages of a's value minus b's, in points, pairing runs by seed number), on the seeds and languages both methods have.`,
    `- **p** is an exact two-sided sign-flip test over the n per-seed mean gains: the share of the sign patterns of those gains whose mean is at least as far from zero as the one observed${
      sampled ? ` (above 20 seeds, ${d.resamples} random patterns)` : " (all 2^n patterns enumerated)"
    }. Its smallest value is 2/2^n.`,
    `- **Families.** Holm's method adjusts p within one family at a time: the **primary** family (the comparisons declared before the run)${
      a.comparisons.some((c) => c.family === "control")
        ? ", the **control** family (full − random-init, what pretraining adds)"
        : ""
    } and the **exploratory** family (every other pair, on ${
      [...new Set(a.comparisons.filter((c) => c.family === "exploratory").map((c) => metricLabel(c.metric)))]
        .join(", ") || "no metric"
    }, the correlations and the per-tier gains). Adding exploratory tests never changes a primary p_Holm. In this run ${
      seedDesign(a) || "no comparison could be made"
    }.`,
    `- **95% CI** is a Student t-interval over the per-seed mean gains (mean ± t(0.975, n−1)·sd/√n). It treats the seeds as the sample and the languages as fixed: it says how a rerun with new seeds on these languages would vary, not how other languages would.`,
    `- **Wins/ties/losses** (accuracy, descriptive): a language is a win when its gain exceeds one binomial standard error of the difference on its n items, SE = 100·sqrt((p_a(1−p_a) + p_b(1−p_b))/n), a loss below −SE, else a tie (errs toward ties).`,
    `- **Correlations** are Spearman's rho between a method's per-language gain over ${
      cell(a.baseline)
    } and a covariate over the languages where it is known ("n/a" below three, or constant). Its p is a sign-flip test over each seed's own rho (the seed as the unit, as everywhere here): whether the association in these languages holds across training runs, not whether it would in other languages.`,
    ...(a.floor
      ? [
        `- **majority** always predicts the most frequent training label: deterministic, for scale, in no test.`,
      ]
      : []),
    `- **What this design cannot show.** Languages are not independent samples (related languages, shared scripts, translated test sets), there is one task, one model and one pretraining run, and nothing here extends beyond these languages. A p above 0.05 is not evidence of no difference: the interval says which differences the data still allow.`,
    "",
  ];
}

/**
 * Renders the Markdown report.
 *
 * @example
 * ```ts ignore
 * const md = markdown(analyze(rows, { pairs: "all", resamples: 10000, seed: 0, task, primary }), "GradDrop", ["Task: sib200."]);
 * ```
 */
export function markdown(a: Analysis, title: string, notes: string[]): string {
  return [
    `# ${cell(title)}`,
    "",
    ...notes.flatMap((n) => [n, ""]),
    ...answer(a),
    ...warnings(a),
    ...contamination(a),
    ...methods(a),
    ...recipe(a),
    ...declared(a),
    ...forgetting(a),
    ...predictions(a),
    ...exploratory(a),
    ...languageTables(a),
    ...covariates(a),
    ...references(a),
    ...training(a),
    ...howToRead(a),
  ].join("\n");
}
