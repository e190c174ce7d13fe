/**
 * The whole analysis behind a report: per-method summaries (controls and non-neural baselines
 * included), comparisons between methods on accuracy, macro-F1 and retrieval kept (seed-level
 * sign-flip tests, t-intervals over per-seed means) in three Holm families (primary, control,
 * exploratory), per-language tables, gains against covariates and groups, what the classifiers
 * predict, dev curves, and the majority-class floor. Values in the result are in points.
 * @module
 */
import { ConfigError } from "../pipeline/errors.ts";
import { seeds as namedSeeds } from "../kernels/random.ts";
import {
  type DevPoint,
  FLOOR,
  type MetricRow,
  type Primary,
  type Recipe,
  type Reference,
  type ReportTask,
  type RetrievalRow,
} from "./contracts.ts";
import {
  commonGrid,
  comparePair,
  type Family,
  type Metric,
  type PairComparison,
  type ValueOf,
} from "./pairs.ts";
import { holm, mean, scores, signFlipTest, spearman, std, tInterval } from "./stats.ts";

/** Options for {@link analyze}. */
export interface AnalyzeOptions {
  /** The method others are measured against; default `full` when present, else the first method. */
  baseline?: string;
  /** `all`: every pair of methods; `baseline`: each method against the baseline only (exploratory). */
  pairs: "all" | "baseline";
  /** The pre-declared comparisons: Holm runs over these alone. */
  primary?: Primary[];
  resamples: number;
  seed: number;
  task?: ReportTask;
  /** The pretrained checkpoint's retrieval per language. */
  checkpointRetrieval?: RetrievalRow[];
  references?: Reference[];
  /** Methods that are not fine-tuned encoders (the n-gram and subword baselines). */
  nonNeural?: string[];
  /** Each fine-tune's dev accuracy during training. */
  devCurves?: DevPoint[];
  recipe?: Recipe;
}

/** The fine-tune from random weights: `full` minus it is what pretraining adds. */
export const RANDOM_INIT = "random-init";

/** A method predicting one label for more than this share of a language's items is flagged. */
export const COLLAPSE_SHARE = 0.6;

/** Numeric per-language covariates correlated with gains. */
export const COVARIATES = [
  "pretrain_tokens",
  "pretrain_share",
  "resource_size",
  "fertility",
  "unk_rate",
] as const;

/** Mean, std and 95% t-interval over seeds of a per-seed figure (points). */
export interface SeedSummary {
  mean: number;
  std: number;
  ci95: [number, number] | null;
  seeds: number[];
  per_seed: number[];
}

/** What a method is, for the methods table. */
export type MethodKind = "fine-tuned" | "control" | "non-neural" | "floor";

/** A method's figures, in points. */
export interface MethodSummary {
  method: string;
  kind: MethodKind;
  /** The deterministic majority-class floor. */
  floor: boolean;
  seeds: number;
  /** Per seed, the mean over source languages. */
  source: SeedSummary | null;
  /** Per seed, the mean over zero-shot languages. */
  zero_shot: (SeedSummary & { languages: number }) | null;
  /** Per seed, the mean over zero-shot languages after language centring, when rows carry it. */
  zero_shot_centred: SeedSummary | null;
  /** Mean zero-shot macro-F1, when rows carry it. */
  f1: number | null;
  /** Mean zero-shot macro-F1 after language centring, when rows carry it. */
  f1_centred: number | null;
  /** Mean source macro-F1, when rows carry it. */
  source_f1: number | null;
  /** Per seed, the mean over languages of retrieval / the checkpoint's (points: 100 keeps all). */
  retrieval_kept: SeedSummary | null;
  /** Languages on which the method predicts one label for more than {@link COLLAPSE_SHARE} of items. */
  collapsed: string[] | null;
}

/** Spearman's rho between a method's per-language gain over the baseline and a covariate. */
export interface CovariateTest {
  method: string;
  covariate: typeof COVARIATES[number];
  /** Over the languages' seed-mean gains. */
  rho: number | null;
  /** Each seed's rho over its own gains, in the comparison's seed order (empty where rho is null). */
  rho_per_seed: number[];
  /** Sign-flip test over `rho_per_seed`: the seed is the unit. */
  p: number | null;
  /** Holm-adjusted within the exploratory family. */
  p_holm: number | null;
  /** Languages where the covariate is known, of `of`. */
  n: number;
  of: number;
}

/**
 * Mean gain over the baseline within one tier or script. Tiers are also tested (exploratory
 * family): the per-seed mean gain over the tier's languages, as any comparison; scripts are
 * descriptive.
 */
export interface GroupGain {
  method: string;
  by: "tier" | "script";
  group: string;
  n: number;
  mean_gain: number;
  /** Tiers only: 95% t-interval over seeds, sign-flip p, Holm-adjusted within the exploratory family. */
  ci95: [number, number] | null;
  p: number | null;
  p_holm: number | null;
}

/** Sentence retrieval (points) of the checkpoint and of each fine-tuned method. */
export interface RetrievalSummary {
  checkpoint: { mean: number; languages: number } | null;
  methods: {
    method: string;
    mean: number;
    languages: number;
    /** Mean over seeds of the per-seed mean over languages of fine-tuned / checkpoint retrieval (a fraction). */
    kept: number | null;
    /** 95% t-interval of `kept` over seeds (fractions). */
    kept_ci95: [number, number] | null;
    /** `kept` of each seed, in `seeds` order (fractions). */
    kept_per_seed: number[];
    seeds: number[];
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

/** The label a method predicts most on a language. */
export interface PredictionShare {
  method: string;
  language: string;
  split: MetricRow["split"];
  /** The label most predicted, summed over seeds (its name when the task gives labels). */
  top_label: string;
  /** Mean over seeds of the largest share of predictions any one label got (points). */
  top_share: number;
  /** `top_share` above {@link COLLAPSE_SHARE}. */
  collapsed: boolean;
}

/** Dev accuracy (points) of a method at one epoch, mean over its seeds. */
export interface DevCurvePoint {
  method: string;
  epoch: number;
  /** Mean step of the point over seeds, when recorded. */
  step: number | null;
  accuracy: number;
  seeds: number;
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

function seedSummary(perSeed: Map<number, number[]>): SeedSummary | null {
  const seeds = [...perSeed.keys()].filter((s) => perSeed.get(s)!.length).sort((a, b) => a - b);
  if (!seeds.length) return null;
  const xs = seeds.map((s) => mean(perSeed.get(s)!));
  return { mean: mean(xs), std: std(xs), ci95: tInterval(xs), seeds, per_seed: xs };
}

const centredPoints: ValueOf = (r) => r.accuracy_centred == null ? null : 100 * r.accuracy_centred;

function bySeed(rows: MetricRow[], value: ValueOf): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const r of rows) {
    const v = value(r);
    if (v !== null && Number.isFinite(v)) out.set(r.seed, [...out.get(r.seed) ?? [], v]);
  }
  return out;
}

function kindOf(m: string, o: AnalyzeOptions): MethodKind {
  if (m === FLOOR) return "floor";
  if (o.nonNeural?.includes(m)) return "non-neural";
  return m === RANDOM_INIT ? "control" : "fine-tuned";
}

function summarise(
  rows: MetricRow[],
  m: string,
  o: AnalyzeOptions,
  kept: ValueOf | null,
  shares: PredictionShare[],
): MethodSummary {
  const own = rows.filter((r) => r.method === m);
  const of = (split: MetricRow["split"]) => own.filter((r) => r.split === split);
  const acc: ValueOf = (r) => 100 * r.accuracy;
  // Per seed over languages, then over seeds: what every figure of a method here means.
  const meanOf = (split: MetricRow["split"], value: (r: MetricRow) => number | null | undefined) =>
    seedSummary(bySeed(of(split), (r) => {
      const v = value(r);
      return v == null ? null : 100 * v;
    }))?.mean ?? null;
  const zs = seedSummary(bySeed(of("test"), acc));
  const mine = shares.filter((p) => p.method === m);
  return {
    method: m,
    kind: kindOf(m, o),
    floor: m === FLOOR,
    seeds: new Set(own.map((r) => r.seed)).size,
    source: seedSummary(bySeed(of("source"), acc)),
    // The floor is deterministic: it has no sampling interval.
    zero_shot: zs
      ? {
        ...zs,
        ci95: m === FLOOR ? null : zs.ci95,
        languages: new Set(of("test").map((r) => r.language)).size,
      }
      : null,
    zero_shot_centred: seedSummary(bySeed(of("test"), centredPoints)),
    f1: meanOf("test", (r) => r.f1),
    f1_centred: meanOf("test", (r) => r.f1_centred),
    source_f1: meanOf("source", (r) => r.f1),
    retrieval_kept: kept ? seedSummary(bySeed(of("test"), kept)) : null,
    collapsed: mine.length && m !== FLOOR ? mine.filter((p) => p.collapsed).map((p) => p.language) : null,
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

/** Retrieval kept per row (points: 100 × fine-tuned / checkpoint), where the checkpoint's is > 0. */
function keptValue(checkpoint: RetrievalRow[] | undefined): ValueOf | null {
  const ck = new Map((checkpoint ?? []).filter((r) => r.retrieval > 0).map((r) => [r.language, r.retrieval]));
  if (!ck.size) return null;
  return (r) => r.retrieval == null || !ck.has(r.language) ? null : 100 * r.retrieval / ck.get(r.language)!;
}

function retrievalSummary(
  rows: MetricRow[],
  methods: string[],
  checkpoint: RetrievalRow[] | undefined,
  kept: ValueOf | null,
): RetrievalSummary | null {
  // The zero-shot languages, as the comparisons of retrieval kept read them.
  const carried = rows.filter((r) => r.retrieval != null && r.split === "test");
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
      const k = kept ? seedSummary(bySeed(own, kept)) : null;
      return {
        method,
        mean: mean(own.map((r) => 100 * r.retrieval!)),
        languages: new Set(own.map((r) => r.language)).size,
        kept: k ? k.mean / 100 : null,
        kept_ci95: k?.ci95 ? [k.ci95[0] / 100, k.ci95[1] / 100] : null,
        kept_per_seed: k ? k.per_seed.map((x) => x / 100) : [],
        seeds: k?.seeds ?? [],
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

function predictionShares(rows: MetricRow[], labels: string[]): PredictionShare[] {
  const groups = new Map<string, MetricRow[]>();
  for (const r of rows) {
    if (r.pred_share?.length && r.method !== FLOOR) {
      const key = JSON.stringify([r.method, r.language]);
      groups.set(key, [...groups.get(key) ?? [], r]);
    }
  }
  return [...groups.values()].map((rs) => {
    const summed = rs.reduce(
      (acc, r) => acc.map((x, i) => x + (r.pred_share![i] ?? 0)),
      new Array<number>(Math.max(...rs.map((r) => r.pred_share!.length))).fill(0),
    );
    const top = summed.indexOf(Math.max(...summed));
    const topShare = mean(rs.map((r) => Math.max(...r.pred_share!)));
    return {
      method: rs[0].method,
      language: rs[0].language,
      split: rs[0].split,
      top_label: labels[top] ?? String(top),
      top_share: 100 * topShare,
      collapsed: topShare > COLLAPSE_SHARE,
    };
  }).sort((x, y) => x.method.localeCompare(y.method) || x.language.localeCompare(y.language));
}

function devCurves(points: DevPoint[]): DevCurvePoint[] {
  const groups = new Map<string, DevPoint[]>();
  for (const p of points) {
    const key = JSON.stringify([p.method, p.epoch]);
    groups.set(key, [...groups.get(key) ?? [], p]);
  }
  return [...groups.values()].map((ps) => {
    const steps = ps.map((p) => p.step).filter((s): s is number => s !== null);
    return {
      method: ps[0].method,
      epoch: ps[0].epoch,
      step: steps.length === ps.length ? mean(steps) : null,
      accuracy: 100 * mean(ps.map((p) => p.accuracy)),
      seeds: new Set(ps.map((p) => p.seed)).size,
    };
  }).sort((x, y) => x.method.localeCompare(y.method) || x.epoch - y.epoch);
}

/**
 * Spearman's rho of each comparison's per-language gain (seed means) with each covariate, and a
 * test with the seed as its unit: each seed's own rho over the same languages, a sign-flip
 * test over those rhos. It asks whether the association in these languages holds
 * across training runs, not whether it would hold in other languages.
 */
function covariateTests(
  rows: MetricRow[],
  vs: PairComparison[],
  task: ReportTask,
  o: AnalyzeOptions,
): CovariateTest[] {
  return vs.flatMap((c) => {
    const { grids } = commonGrid(rows, [c.a, c.b], c.split);
    const gainsOf = (s: number) =>
      new Map(grids[0].languages.map((l, k) => [l, grids[0].values[s][k] - grids[1].values[s][k]]));
    const perSeedGains = grids[0].seeds.map((_, s) => gainsOf(s));
    return COVARIATES.map((covariate) => {
      const known = c.languages.filter((g) => {
        const v = task.languages[g.language]?.[covariate];
        return typeof v === "number" && Number.isFinite(v);
      });
      const x = known.map((g) => task.languages[g.language][covariate] as number);
      const rho = spearman(x, known.map((g) => g.gain));
      // A seed whose gains are all equal has no ranks to correlate: no association, rho 0.
      const perSeed = rho === null
        ? []
        : perSeedGains.map((gains) => spearman(x, known.map((g) => gains.get(g.language)!)) ?? 0);
      const p = rho === null
        ? null
        : signFlipTest(perSeed, o.resamples, namedSeeds.analysis(o.seed, `rho:${c.a}:${covariate}`)).p;
      return {
        method: c.a,
        covariate,
        rho,
        rho_per_seed: perSeed,
        p,
        p_holm: p,
        n: known.length,
        of: c.languages.length,
      };
    });
  });
}

function groupGains(
  rows: MetricRow[],
  vs: PairComparison[],
  tierOf: (l: string) => string | null,
  scriptOf: (l: string) => string | null,
  o: AnalyzeOptions,
) {
  const out: GroupGain[] = [];
  for (const [by, of] of [["tier", tierOf], ["script", scriptOf]] as const) {
    for (const c of vs) {
      if (!c.languages.some((g) => of(g.language) !== null)) continue;
      const groups = new Map<string, string[]>();
      for (const g of c.languages) {
        const key = of(g.language) ?? "n/a";
        groups.set(key, [...groups.get(key) ?? [], g.language]);
      }
      for (const [group, languages] of [...groups].sort((x, y) => x[0].localeCompare(y[0]))) {
        const gains = c.languages.filter((g) => languages.includes(g.language)).map((g) => g.gain);
        const test = by === "tier" && group !== "n/a"
          ? comparePair(rows.filter((r) => languages.includes(r.language)), c.a, c.b, {
            resamples: o.resamples,
            seed: namedSeeds.analysis(o.seed, `tier:${c.a}|${c.b}|${group}`),
          })
          : null;
        const t = typeof test === "string" ? null : test;
        out.push({
          method: c.a,
          by,
          group,
          n: gains.length,
          mean_gain: mean(gains),
          ci95: t?.ci95 ?? null,
          p: t?.p ?? null,
          p_holm: t?.p ?? null,
        });
      }
    }
  }
  return out;
}

/** One comparison to make: a − b on a metric and split, in a family. */
interface Wanted {
  a: string;
  b: string;
  metric: Metric;
  split: MetricRow["split"];
  family: Family;
}

/** What each family holds and the smallest p its seed counts allow. */
export interface FamilyDesign {
  family: Family;
  /** Tests adjusted together (comparisons made, plus correlations and tier tests for the exploratory family). */
  tests: number;
  comparison_tests: number;
  correlation_tests: number;
  tier_tests: number;
  /** Distinct seed counts among its comparisons, with the smallest p each can give. */
  seed_counts: { n_seeds: number; min_p: number }[];
}

function familyDesign(family: Family, cs: PairComparison[], correlations = 0, tiers = 0): FamilyDesign {
  const own = cs.filter((c) => c.family === family);
  return {
    family,
    tests: own.length + correlations + tiers,
    comparison_tests: own.length,
    correlation_tests: correlations,
    tier_tests: tiers,
    seed_counts: [...new Set(own.map((c) => c.n_seeds))].sort((a, b) => a - b)
      .map((n) => ({ n_seeds: n, min_p: own.find((c) => c.n_seeds === n)!.min_p })),
  };
}

const same = (w: { a: string; b: string; metric: Metric; split: string }, x: typeof w) =>
  w.metric === x.metric && w.split === x.split &&
  ((w.a === x.a && w.b === x.b) || (w.a === x.b && w.b === x.a));

/**
 * Runs the analysis on validated rows. Holm runs within each family: the declared primary
 * comparisons, the pretraining control (`full` − `random-init` on source and zero-shot
 * accuracy, when both are present and not declared primary), and the exploratory rest
 * (every other pair on every metric, the correlations, and each method's gain per resource tier).
 *
 * @example
 * ```ts
 * import { analyze } from "./compare.ts";
 * const rows = [1, 2, 3].flatMap((seed) =>
 *   ["full", "graddrop"].map((method) => ({ method, seed, language: "fra", split: "test" as const, accuracy: 0.5 }))
 * );
 * const a = analyze(rows, { pairs: "all", resamples: 500, seed: 0, primary: [{ a: "graddrop", b: "full", metric: "accuracy" }] });
 * if (a.comparisons[0].family !== "primary" || a.comparisons[0].a !== "graddrop") throw new Error();
 * ```
 */
export function analyze(rows: MetricRow[], o: AnalyzeOptions) {
  const present = [...new Set(rows.map((r) => r.method))];
  const trained = present.filter((m) => m !== FLOOR);
  if (trained.length === 0) throw new ConfigError("no method other than the majority floor in the metrics");
  const baseline = defaultBaseline(trained, o.baseline);
  const methods = [baseline, ...trained.filter((m) => m !== baseline)];
  const kept = keptValue(o.checkpointRetrieval);
  const values: Record<Metric, ValueOf | null> = {
    accuracy: (r) => 100 * r.accuracy,
    accuracy_centred: centredPoints,
    f1: (r) => r.f1 == null ? null : 100 * r.f1,
    retrieval_kept: kept,
  };
  const wanted: Wanted[] = [];
  const skipped: { a: string; b: string; metric: Metric; family: Family; reason: string }[] = [];
  for (const p of o.primary ?? []) {
    const missing = [p.a, p.b].filter((m) => !trained.includes(m));
    if (missing.length) {
      skipped.push({ ...p, family: "primary", reason: `${missing.join(" and ")} not in the metrics` });
    } else if (!wanted.some((w) => same(w, { ...p, split: "test" }))) {
      wanted.push({ ...p, split: "test", family: "primary" });
    }
  }
  if (trained.includes("full") && trained.includes(RANDOM_INIT)) {
    for (const split of ["source", "test"] as const) {
      const c = { a: "full", b: RANDOM_INIT, metric: "accuracy" as const, split };
      if (!wanted.some((w) => same(w, c))) wanted.push({ ...c, family: "control" });
    }
  }
  const pairs = o.pairs === "baseline"
    ? methods.slice(1).map((m) => [m, baseline] as const)
    : methods.flatMap((a, j) => methods.slice(0, j).map((b) => [a, b] as const));
  for (const metric of ["accuracy", "accuracy_centred", "f1", "retrieval_kept"] as const) {
    for (const [a, b] of pairs) {
      const c = { a, b, metric, split: "test" as const };
      if (!wanted.some((w) => same(w, c))) wanted.push({ ...c, family: "exploratory" });
    }
  }
  const comparisons: PairComparison[] = [];
  for (const w of wanted) {
    const value = values[w.metric];
    const c = value
      ? comparePair(rows, w.a, w.b, {
        resamples: o.resamples,
        seed: namedSeeds.analysis(o.seed, `pair:${w.a}|${w.b}|${w.metric}|${w.split}`),
        metric: w.metric,
        split: w.split,
        value,
      })
      : "the pretrained checkpoint's retrieval is not given";
    if (typeof c !== "string") comparisons.push({ ...c, family: w.family });
    // An exploratory pair on a metric one side lacks (a baseline without retrieval) is simply not made.
    else if (w.family !== "exploratory" || w.metric === "accuracy") {
      skipped.push({ a: w.a, b: w.b, metric: w.metric, family: w.family, reason: c });
    }
  }
  // Each method's zero-shot gain over the baseline, for the covariate and tier analyses; a primary
  // declared baseline first (`full:graddrop`) is read the other way round, as `graddrop − full`.
  const vs = comparisons.filter((c) => c.metric === "accuracy" && c.split === "test").flatMap((c) => {
    if (c.b === baseline) return [c];
    if (c.a !== baseline || c.family !== "primary") return [];
    const turned = comparePair(rows, c.b, c.a, {
      resamples: o.resamples,
      seed: namedSeeds.analysis(o.seed, `pair:${c.b}|${c.a}|accuracy|test`),
    });
    return typeof turned === "string" ? [] : [turned];
  });
  const task = o.task;
  const refTier = new Map((o.checkpointRetrieval ?? []).map((r) => [r.language, r.tier ?? null]));
  const tierOf = (l: string) => task?.languages[l]?.tier ?? refTier.get(l) ?? null;
  const scriptOf = (l: string) => task?.languages[l]?.script ?? null;
  const covariates = task ? covariateTests(rows, vs, task, o) : [];
  const groups = groupGains(rows, vs, tierOf, scriptOf, o);
  const tiers = groups.filter((g) => g.p !== null);
  for (const family of ["primary", "control"] as const) {
    const own = comparisons.filter((c) => c.family === family);
    holm(own.map((c) => c.p)).forEach((p, i) => own[i].p_holm = p!);
  }
  const exploratory = comparisons.filter((c) => c.family === "exploratory");
  const adjusted = holm([
    ...exploratory.map((c) => c.p),
    ...covariates.map((c) => c.p),
    ...tiers.map((g) => g.p),
  ]);
  exploratory.forEach((c, i) => c.p_holm = adjusted[i]!);
  covariates.forEach((c, i) => c.p_holm = adjusted[exploratory.length + i]);
  tiers.forEach((g, i) => g.p_holm = adjusted[exploratory.length + covariates.length + i]);
  const shown = present.includes(FLOOR) ? [...methods, FLOOR] : methods;
  const byLanguage = perLanguage(rows, shown);
  const shares = predictionShares(rows, task?.labels ?? []);
  const correlations = covariates.filter((c) => c.p !== null).length;
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
      interval: "95% Student t-interval over the per-seed mean gains" as const,
      primary: o.primary ?? [],
      families: [
        familyDesign("primary", comparisons),
        familyDesign("control", comparisons),
        familyDesign("exploratory", comparisons, correlations, tiers.length),
      ],
      collapse_share: COLLAPSE_SHARE,
    },
    summary: shown.map((m) => summarise(rows, m, o, kept, shares)),
    comparisons,
    skipped,
    per_language: byLanguage,
    covariates,
    groups,
    tiers: [...new Set(byLanguage.map((l) => tierOf(l.language)).filter((t) => t !== null))].length > 0,
    retrieval: retrievalSummary(rows, methods, o.checkpointRetrieval, kept),
    predictions: shares,
    dev_curves: devCurves(o.devCurves ?? []),
    recipe: o.recipe ?? null,
    warnings: task?.warnings ?? [],
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
