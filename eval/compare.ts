/**
 * The whole analysis behind a report: per-method summaries, comparisons between methods
 * (seed-level tests, bootstrap intervals, Holm over every test made), per-language tables,
 * gains against covariates and groups, retrieval kept, and the majority-class floor.
 * Accuracies in the result are in points (percent).
 * @module
 */
import { ConfigError } from "../pipeline/errors.ts";
import { seeds as namedSeeds } from "../kernels/random.ts";
import { twoLevelBootstrap } from "./bootstrap.ts";
import { FLOOR, type MetricRow, type Reference, type ReportTask, type RetrievalRow } from "./contracts.ts";
import { commonGrid, comparePair, type PairComparison } from "./pairs.ts";
import { holm, mean, scores, spearman, std } from "./stats.ts";

/** Options for {@link analyze}. */
export interface AnalyzeOptions {
  /** The method others are measured against; default `full` when present, else the first method. */
  baseline?: string;
  /** `all`: every pair of methods; `baseline`: each method against the baseline only. */
  pairs: "all" | "baseline";
  resamples: number;
  seed: number;
  task?: ReportTask;
  /** The pretrained checkpoint's retrieval per language. */
  checkpointRetrieval?: RetrievalRow[];
  references?: Reference[];
}

/** Numeric per-language covariates correlated with gains. */
export const COVARIATES = [
  "pretrain_tokens",
  "pretrain_share",
  "resource_size",
  "fertility",
  "unk_rate",
] as const;

/** A method's accuracy, in points. */
export interface MethodSummary {
  method: string;
  /** The deterministic majority-class floor. */
  floor: boolean;
  seeds: number;
  /** Mean and std over seeds of the per-seed mean over source languages. */
  source: { mean: number; std: number } | null;
  zero_shot: { mean: number; std: number; ci95: [number, number] | null; languages: number } | null;
  /** Mean zero-shot macro-F1, when rows carry it. */
  f1: number | null;
}

/** Spearman's rho between a method's per-language gain over the baseline and a covariate. */
export interface CovariateTest {
  method: string;
  covariate: typeof COVARIATES[number];
  rho: number | null;
  p: number | null;
  p_holm: number | null;
  /** Languages where the covariate is known, of `of`. */
  n: number;
  of: number;
}

/** Mean gain over the baseline within one tier or script. */
export interface GroupGain {
  method: string;
  by: "tier" | "script";
  group: string;
  n: number;
  mean_gain: number;
}

/** Sentence retrieval (points) of the checkpoint and of each fine-tuned method. */
export interface RetrievalSummary {
  checkpoint: { mean: number; languages: number } | null;
  methods: {
    method: string;
    mean: number;
    languages: number;
    /** Mean over languages of fine-tuned / checkpoint retrieval (a fraction), where the checkpoint's is > 0. */
    kept: number | null;
    /** Mean over languages of fine-tuned − checkpoint retrieval, in points. */
    change: number | null;
  }[];
  per_language: { language: string; checkpoint: number | null; methods: Record<string, number | null> }[];
}

/** One language's seed-mean accuracy (points) per method, floor included. */
export interface LanguageRow {
  language: string;
  split: MetricRow["split"];
  n: number | null;
  accuracy: Record<string, number | null>;
}

function defaultBaseline(methods: string[], wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (!methods.includes(wanted)) {
      throw new ConfigError(
        `baseline '${wanted}' is not a method in the metrics (have: ${methods.join(", ")})`,
      );
    }
    return wanted;
  }
  return methods.includes("full") ? "full" : methods[0];
}

function summarise(rows: MetricRow[], m: string, o: AnalyzeOptions): MethodSummary {
  const own = rows.filter((r) => r.method === m);
  const seedList = [...new Set(own.map((r) => r.seed))];
  const perSeed = (split: MetricRow["split"]) =>
    seedList.map((s) => own.filter((r) => r.seed === s && r.split === split).map((r) => 100 * r.accuracy))
      .filter((xs) => xs.length).map(mean);
  const src = perSeed("source"), zs = perSeed("test");
  // The floor is deterministic: it has no sampling interval.
  const grid = m === FLOOR ? null : commonGrid(rows, [m], "test");
  const f1 = own.filter((r) => r.split === "test" && r.f1 != null).map((r) => 100 * r.f1!);
  return {
    method: m,
    floor: m === FLOOR,
    seeds: seedList.length,
    source: src.length ? { mean: mean(src), std: std(src) } : null,
    zero_shot: zs.length
      ? {
        mean: mean(zs),
        std: std(zs),
        ci95: !grid?.languages.length ? null : twoLevelBootstrap(
          grid.grids[0].acc.map((row) => row.map((x) => 100 * x)),
          o.resamples,
          namedSeeds.analysis(o.seed, `mean:${m}`),
        ),
        languages: new Set(own.filter((r) => r.split === "test").map((r) => r.language)).size,
      }
      : null,
    f1: f1.length ? mean(f1) : null,
  };
}

function perLanguage(rows: MetricRow[], methods: string[]): LanguageRow[] {
  const languages = [...new Set(rows.map((r) => r.language))].sort();
  return languages.map((language) => {
    const own = rows.filter((r) => r.language === language);
    const ns = own.map((r) => r.n).filter((n): n is number => n != null);
    return {
      language,
      split: own[0].split,
      n: ns.length ? Math.min(...ns) : null,
      accuracy: Object.fromEntries(methods.map((m) => {
        const xs = own.filter((r) => r.method === m).map((r) => 100 * r.accuracy);
        return [m, xs.length ? mean(xs) : null];
      })),
    };
  });
}

function retrievalSummary(
  rows: MetricRow[],
  methods: string[],
  checkpoint: RetrievalRow[] | undefined,
): RetrievalSummary | null {
  const carried = rows.filter((r) => r.retrieval != null);
  if (!carried.length && !checkpoint?.length) return null;
  const ck = new Map((checkpoint ?? []).map((r) => [r.language, 100 * r.retrieval]));
  const languages = [...new Set([...carried.map((r) => r.language), ...ck.keys()])].sort();
  const ftMean = (m: string, l: string) => {
    const xs = carried.filter((r) => r.method === m && r.language === l).map((r) => 100 * r.retrieval!);
    return xs.length ? mean(xs) : null;
  };
  const withRetrieval = methods.filter((m) => carried.some((r) => r.method === m));
  return {
    checkpoint: ck.size ? { mean: mean([...ck.values()]), languages: ck.size } : null,
    methods: withRetrieval.map((method) => {
      const own = carried.filter((r) => r.method === method);
      const paired = languages.map((l) => [ftMean(method, l), ck.get(l)] as const)
        .filter((x): x is readonly [number, number] => x[0] !== null && x[1] !== undefined);
      const ratios = paired.filter(([, c]) => c > 0).map(([f, c]) => f / c);
      return {
        method,
        mean: mean(own.map((r) => 100 * r.retrieval!)),
        languages: new Set(own.map((r) => r.language)).size,
        kept: ratios.length ? mean(ratios) : null,
        change: paired.length ? mean(paired.map(([f, c]) => f - c)) : null,
      };
    }),
    per_language: languages.map((language) => ({
      language,
      checkpoint: ck.get(language) ?? null,
      methods: Object.fromEntries(withRetrieval.map((m) => [m, ftMean(m, language)])),
    })),
  };
}

function covariateTests(vs: PairComparison[], task: ReportTask, o: AnalyzeOptions): CovariateTest[] {
  return vs.flatMap((c) =>
    COVARIATES.map((covariate) => {
      const pts = c.languages.map((g) => [task.languages[g.language]?.[covariate], g.gain] as const)
        .filter((p): p is readonly [number, number] => typeof p[0] === "number" && Number.isFinite(p[0]));
      const r = spearman(
        pts.map((p) => p[0]),
        pts.map((p) => p[1]),
        o.resamples,
        namedSeeds.analysis(o.seed, `rho:${c.a}:${covariate}`),
      );
      return { method: c.a, covariate, rho: r.rho, p: r.p, p_holm: r.p, n: r.n, of: c.languages.length };
    })
  );
}

function groupGains(
  vs: PairComparison[],
  tierOf: (l: string) => string | null,
  scriptOf: (l: string) => string | null,
) {
  const out: GroupGain[] = [];
  for (const [by, of] of [["tier", tierOf], ["script", scriptOf]] as const) {
    for (const c of vs) {
      if (!c.languages.some((g) => of(g.language) !== null)) continue;
      const groups = new Map<string, number[]>();
      for (const g of c.languages) {
        const key = of(g.language) ?? "n/a";
        groups.set(key, [...groups.get(key) ?? [], g.gain]);
      }
      for (const [group, gains] of [...groups].sort((x, y) => x[0].localeCompare(y[0]))) {
        out.push({ method: c.a, by, group, n: gains.length, mean_gain: mean(gains) });
      }
    }
  }
  return out;
}

/**
 * Runs the analysis on validated rows.
 *
 * @example
 * ```ts
 * import { analyze } from "./compare.ts";
 * const rows = [1, 2, 3].flatMap((seed) =>
 *   ["full", "graddrop"].map((method) => ({ method, seed, language: "fra", split: "test" as const, accuracy: 0.5 }))
 * );
 * const a = analyze(rows, { pairs: "all", resamples: 500, seed: 0 });
 * if (a.comparisons[0].a !== "graddrop" || a.comparisons[0].b !== "full") throw new Error();
 * ```
 */
export function analyze(rows: MetricRow[], o: AnalyzeOptions) {
  const present = [...new Set(rows.map((r) => r.method))];
  const trained = present.filter((m) => m !== FLOOR);
  if (trained.length === 0) throw new ConfigError("no method other than the majority floor in the metrics");
  const baseline = defaultBaseline(trained, o.baseline);
  const methods = [baseline, ...trained.filter((m) => m !== baseline)];
  const wanted = o.pairs === "baseline"
    ? methods.slice(1).map((m) => [m, baseline] as const)
    : methods.flatMap((a, j) => methods.slice(0, j).map((b) => [a, b] as const));
  const comparisons: PairComparison[] = [];
  const skipped: { a: string; b: string; reason: string }[] = [];
  for (const [a, b] of wanted) {
    const c = comparePair(rows, a, b, {
      resamples: o.resamples,
      seed: namedSeeds.analysis(o.seed, `pair:${a}|${b}`),
    });
    if (typeof c === "string") skipped.push({ a, b, reason: c });
    else comparisons.push(c);
  }
  const vs = comparisons.filter((c) => c.b === baseline);
  const task = o.task;
  const refTier = new Map((o.checkpointRetrieval ?? []).map((r) => [r.language, r.tier ?? null]));
  const tierOf = (l: string) => task?.languages[l]?.tier ?? refTier.get(l) ?? null;
  const scriptOf = (l: string) => task?.languages[l]?.script ?? null;
  const covariates = task ? covariateTests(vs, task, o) : [];
  const adjusted = holm([...comparisons.map((c) => c.p), ...covariates.map((c) => c.p)]);
  comparisons.forEach((c, i) => c.p_holm = adjusted[i]!);
  covariates.forEach((c, i) => c.p_holm = adjusted[comparisons.length + i]);
  const shown = present.includes(FLOOR) ? [...methods, FLOOR] : methods;
  const byLanguage = perLanguage(rows, shown);
  return {
    baseline,
    methods,
    floor: present.includes(FLOOR),
    languages: {
      source: byLanguage.filter((l) => l.split === "source").map((l) => l.language),
      test: byLanguage.filter((l) => l.split === "test").map((l) => l.language),
    },
    design: {
      pairs: o.pairs,
      resamples: o.resamples,
      seed: o.seed,
      /** Tests in the Holm family: comparisons plus correlations with a p. */
      tests: adjusted.filter((p) => p !== null).length,
      comparison_tests: comparisons.length,
      correlation_tests: covariates.filter((c) => c.p !== null).length,
      /** Distinct seed counts among the comparisons, with the smallest p each can give. */
      seed_counts: [...new Set(comparisons.map((c) => c.n_seeds))].sort((a, b) => a - b)
        .map((n) => ({ n_seeds: n, min_p: comparisons.find((c) => c.n_seeds === n)!.min_p })),
    },
    summary: shown.map((m) => summarise(rows, m, o)),
    comparisons,
    skipped,
    per_language: byLanguage,
    covariates,
    groups: groupGains(vs, tierOf, scriptOf),
    tiers: [...new Set(byLanguage.map((l) => tierOf(l.language)).filter((t) => t !== null))].length > 0,
    retrieval: retrievalSummary(rows, methods, o.checkpointRetrieval),
    contamination: task?.contamination ?? null,
    references: o.references ?? [],
    task: task ?? null,
  };
}

/** The object {@link analyze} returns. */
export type Analysis = ReturnType<typeof analyze>;

/** A scored set of gold labels for the floor. */
export interface GoldSet {
  language: string;
  split: MetricRow["split"];
  gold: ArrayLike<number>;
}

/**
 * The majority-class floor: always predict the most frequent training label (the smallest
 * label id among equals). Deterministic, so one row per language with seed 0.
 *
 * @example
 * ```ts
 * import { majorityFloor } from "./compare.ts";
 * const [row] = majorityFloor([2, 2, 1], [{ language: "fra", split: "test", gold: [2, 1, 2, 2] }]);
 * if (row.accuracy !== 0.75 || row.method !== "majority" || row.n !== 4) throw new Error();
 * ```
 */
export function majorityFloor(train: ArrayLike<number>, sets: GoldSet[]): MetricRow[] {
  const counts = new Map<number, number>();
  for (const l of Array.from(train)) counts.set(l, (counts.get(l) ?? 0) + 1);
  const [label] = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0] ?? [0];
  return sets.filter((s) => s.gold.length > 0).map((s) => {
    const sc = scores(s.gold, Array.from(s.gold, () => label));
    return {
      method: FLOOR,
      seed: 0,
      language: s.language,
      split: s.split,
      accuracy: sc.accuracy,
      f1: sc.f1,
      n: s.gold.length,
    };
  });
}
