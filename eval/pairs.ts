/**
 * One comparison of two methods with the seed as the unit: the seeds × languages grid of
 * their differences on one metric, a sign-flip test and a t-interval over per-seed mean
 * gains, and (for accuracy) per-language wins/ties/losses judged against each language's own
 * binomial standard error.
 * @module
 */
import type { MetricRow } from "./contracts.ts";
import { mean, signFlipTest, tInterval } from "./stats.ts";

/**
 * What a comparison measures: accuracy (as scored, or after language centring), macro-F1, or
 * retrieval kept against the checkpoint.
 */
export type Metric = "accuracy" | "accuracy_centred" | "f1" | "retrieval_kept";

/**
 * The Holm family a comparison belongs to: `primary` (declared before the run, the question
 * the pipeline exists to answer), `control` (what pretraining adds: full − random-init), or
 * `exploratory` (everything else, with the correlations).
 */
export type Family = "primary" | "control" | "exploratory";

/** A row's value on a metric, in points, or null where the row does not have it. */
export type ValueOf = (r: MetricRow) => number | null;

/**
 * Accuracy in points.
 *
 * @example
 * ```ts
 * import { accuracyPoints } from "./pairs.ts";
 * if (accuracyPoints({ method: "a", seed: 1, language: "x", split: "test", accuracy: 0.5 }) !== 50) throw new Error();
 * ```
 */
export const accuracyPoints: ValueOf = (r) => 100 * r.accuracy;

/** A method's values on a complete seeds × languages grid (points). */
export interface Grid {
  seeds: number[];
  languages: string[];
  /** `values[s][l]`. */
  values: number[][];
}

function index(rows: MetricRow[], split: MetricRow["split"], value: ValueOf) {
  const at = new Map<string, number>();
  for (const r of rows) {
    const v = r.split === split ? value(r) : null;
    if (v !== null && Number.isFinite(v)) at.set(JSON.stringify([r.method, r.seed, r.language]), v);
  }
  return (m: string, s: number, l: string) => at.get(JSON.stringify([m, s, l]));
}

/**
 * The grids of `methods` over the seeds they all have and the languages every one of those
 * seeds scored for all of them: a balanced design, so a mean over cells equals the mean of
 * per-seed means.
 *
 * @example
 * ```ts
 * import { commonGrid } from "./pairs.ts";
 * const row = (method: string, seed: number, language: string, accuracy: number) =>
 *   ({ method, seed, language, split: "test" as const, accuracy });
 * const g = commonGrid([row("a", 1, "x", 0.5), row("b", 1, "x", 0.4), row("a", 1, "y", 0.6)], ["a", "b"], "test");
 * if (g.languages.join() !== "x" || g.grids[0].values[0][0] !== 50) throw new Error("y lacks b");
 * ```
 */
export function commonGrid(
  rows: MetricRow[],
  methods: string[],
  split: MetricRow["split"],
  value: ValueOf = accuracyPoints,
): { seeds: number[]; languages: string[]; grids: Grid[] } {
  const get = index(rows, split, value);
  const seedsOf = (m: string) =>
    new Set(
      rows.filter((r) => r.method === m && get(m, r.seed, r.language) !== undefined).map((r) => r.seed),
    );
  const seeds = [...seedsOf(methods[0])].filter((s) => methods.every((m) => seedsOf(m).has(s))).sort((a, b) =>
    a - b
  );
  const candidates = [...new Set(rows.filter((r) => r.split === split).map((r) => r.language))].sort();
  const languages = seeds.length
    ? candidates.filter((l) => seeds.every((s) => methods.every((m) => get(m, s, l) !== undefined)))
    : [];
  const grids = methods.map((m) => ({
    seeds,
    languages,
    values: seeds.map((s) => languages.map((l) => get(m, s, l)!)),
  }));
  return { seeds, languages, grids };
}

/** One language of a comparison (seed means and gain, in points). */
export interface LanguageGain {
  language: string;
  /** Seed-mean value of a and of b. */
  a: number;
  b: number;
  gain: number;
  /** Test items, when the rows say. */
  n: number | null;
  /** Accuracy only: binomial standard error of the difference, sqrt((pa(1−pa) + pb(1−pb))/n), in points. */
  se: number | null;
  outcome: "win" | "tie" | "loss" | "unknown";
}

/** A comparison a − b on one metric and split; gains in points. */
export interface PairComparison {
  a: string;
  b: string;
  metric: Metric;
  /** `test`: the zero-shot languages; `source`: the training languages (English). */
  split: MetricRow["split"];
  /** Set by the analysis; `exploratory` until then. */
  family: Family;
  /** Mean over seeds of the per-seed mean gain over languages. */
  gain: number;
  /** 95% t-interval over the per-seed mean gains; null below two seeds. */
  ci95: [number, number] | null;
  /** Exact two-sided sign-flip test over the per-seed mean gains. */
  p: number;
  /** Holm-adjusted within the comparison's family (set by the analysis). */
  p_holm: number;
  /** The smallest p this number of seeds can give. */
  min_p: number;
  n_seeds: number;
  n_languages: number;
  /** Mean gain of each seed, in `seeds` order. */
  per_seed: number[];
  seeds: number[];
  /** Accuracy only (otherwise all 0): languages beyond ± one binomial SE. */
  wins: number;
  ties: number;
  losses: number;
  /** Languages whose item count is unknown (or any language, for a metric without a binomial SE). */
  unknown: number;
  languages: LanguageGain[];
}

/** Options for {@link comparePair}. */
export interface PairOptions {
  resamples: number;
  /** Seed of this comparison's resampling (sign-flip above 20 seeds). */
  seed: number;
  /** Default `accuracy`. */
  metric?: Metric;
  /** Default `test`. */
  split?: MetricRow["split"];
  /** The metric's value per row in points; default accuracy. */
  value?: ValueOf;
}

/**
 * Compares `a` with `b`, or returns why it cannot (no common seed or language).
 *
 * For accuracy, a language is a win when gain > se, a loss when gain < −se, else a tie, with
 * se the binomial standard error of the difference of two accuracies on that language's n
 * items (taken as independent, which overstates the error of a paired difference: the rule
 * errs toward ties).
 *
 * @example
 * ```ts
 * import { comparePair } from "./pairs.ts";
 * const rows = [1, 2, 3].flatMap((seed) => ["x", "y"].flatMap((language) => [
 *   { method: "a", seed, language, split: "test" as const, accuracy: 0.6 + 0.01 * seed, n: 200 },
 *   { method: "b", seed, language, split: "test" as const, accuracy: 0.5, n: 200 },
 * ]));
 * const c = comparePair(rows, "a", "b", { resamples: 1000, seed: 0 });
 * if (typeof c === "string" || Math.abs(c.gain - 12) > 1e-9 || c.p !== 0.25 || c.ci95![0] > 12) throw new Error();
 * ```
 */
export function comparePair(
  rows: MetricRow[],
  a: string,
  b: string,
  o: PairOptions,
): PairComparison | string {
  const split = o.split ?? "test", metric = o.metric ?? "accuracy";
  const where = split === "test" ? "zero-shot languages" : "source languages";
  const { seeds, languages, grids: [ga, gb] } = commonGrid(rows, [a, b], split, o.value);
  if (seeds.length === 0) return `no seed in common with ${metric} on ${where}`;
  if (languages.length === 0) {
    return `no language of the ${where} with ${metric} for both in every common seed`;
  }
  const diff = ga.values.map((row, s) => row.map((x, l) => x - gb.values[s][l]));
  const perSeed = diff.map(mean);
  const test = signFlipTest(perSeed, o.resamples, o.seed);
  const items = new Map<string, number>();
  for (const r of rows) {
    if (r.split === split && (r.method === a || r.method === b) && r.n != null) {
      items.set(r.language, Math.min(items.get(r.language) ?? Infinity, r.n));
    }
  }
  const perLanguage = languages.map((language, l): LanguageGain => {
    const va = mean(ga.values.map((row) => row[l])), vb = mean(gb.values.map((row) => row[l]));
    const gain = va - vb;
    const n = metric.startsWith("accuracy") ? items.get(language) ?? null : null;
    const [pa, pb] = [va / 100, vb / 100];
    const se = n === null ? null : 100 * Math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n);
    const outcome = se === null ? "unknown" : gain > se ? "win" : gain < -se ? "loss" : "tie";
    return { language, a: va, b: vb, gain, n, se, outcome };
  });
  const count = (o: LanguageGain["outcome"]) => perLanguage.filter((g) => g.outcome === o).length;
  return {
    a,
    b,
    metric,
    split,
    family: "exploratory",
    gain: mean(perSeed),
    ci95: tInterval(perSeed),
    p: test.p,
    p_holm: test.p,
    min_p: test.min_p,
    n_seeds: seeds.length,
    n_languages: languages.length,
    per_seed: perSeed,
    seeds,
    wins: count("win"),
    ties: count("tie"),
    losses: count("loss"),
    unknown: count("unknown"),
    languages: perLanguage,
  };
}
