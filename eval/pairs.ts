/**
 * One comparison of two methods with the seed as the unit: the seeds × languages grid of
 * their accuracy differences, a sign-flip test over per-seed mean gains, a two-level
 * bootstrap interval, and per-language wins/ties/losses judged against each language's own
 * binomial standard error.
 * @module
 */
import type { MetricRow } from "./contracts.ts";
import { twoLevelBootstrap } from "./bootstrap.ts";
import { mean, signFlipTest } from "./stats.ts";

/** A method's accuracies on a complete seeds × languages grid (fractions). */
export interface Grid {
  seeds: number[];
  languages: string[];
  /** `acc[s][l]`. */
  acc: number[][];
}

function index(rows: MetricRow[], split: MetricRow["split"]) {
  const at = new Map<string, MetricRow>();
  for (const r of rows) if (r.split === split) at.set(JSON.stringify([r.method, r.seed, r.language]), r);
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
 * if (g.languages.join() !== "x") throw new Error("y lacks b");
 * ```
 */
export function commonGrid(
  rows: MetricRow[],
  methods: string[],
  split: MetricRow["split"],
): { seeds: number[]; languages: string[]; grids: Grid[] } {
  const get = index(rows, split);
  const seedsOf = (m: string) =>
    new Set(rows.filter((r) => r.method === m && r.split === split).map((r) => r.seed));
  const seeds = [...seedsOf(methods[0])].filter((s) => methods.every((m) => seedsOf(m).has(s))).sort((a, b) =>
    a - b
  );
  const candidates = [...new Set(rows.filter((r) => r.split === split).map((r) => r.language))].sort();
  const languages = seeds.length
    ? candidates.filter((l) => seeds.every((s) => methods.every((m) => get(m, s, l))))
    : [];
  const grids = methods.map((m) => ({
    seeds,
    languages,
    acc: seeds.map((s) => languages.map((l) => get(m, s, l)!.accuracy)),
  }));
  return { seeds, languages, grids };
}

/** One language of a comparison (accuracies and gain in points). */
export interface LanguageGain {
  language: string;
  /** Seed-mean accuracy of a and of b. */
  a: number;
  b: number;
  gain: number;
  /** Test items, when the rows say. */
  n: number | null;
  /** Binomial standard error of the difference, sqrt((pa(1−pa) + pb(1−pb))/n), in points. */
  se: number | null;
  outcome: "win" | "tie" | "loss" | "unknown";
}

/** A comparison a − b on the zero-shot (test) languages; gains in accuracy points. */
export interface PairComparison {
  a: string;
  b: string;
  /** mean(a) − mean(b) over the grid. */
  gain: number;
  ci95: [number, number];
  /** Exact two-sided sign-flip test over the per-seed mean gains. */
  p: number;
  /** Holm-adjusted over every test of the analysis (set by the analysis). */
  p_holm: number;
  /** The smallest p this number of seeds can give. */
  min_p: number;
  n_seeds: number;
  n_languages: number;
  /** Mean gain of each seed, in `seeds` order. */
  per_seed: number[];
  seeds: number[];
  wins: number;
  ties: number;
  losses: number;
  /** Languages whose item count is unknown, so not classified. */
  unknown: number;
  languages: LanguageGain[];
}

/** Options for {@link comparePair}. */
export interface PairOptions {
  resamples: number;
  /** Seed of this comparison's resampling. */
  seed: number;
}

/**
 * Compares `a` with `b` on the test split, or returns why it cannot (no common seed or
 * language).
 *
 * A language is a win when gain > se, a loss when gain < −se, else a tie, with se the binomial
 * standard error of the difference of two accuracies on that language's n items (taken as
 * independent, which overstates the error of a paired difference: the rule errs toward ties).
 *
 * @example
 * ```ts
 * import { comparePair } from "./pairs.ts";
 * const rows = [1, 2, 3].flatMap((seed) => ["x", "y"].flatMap((language) => [
 *   { method: "a", seed, language, split: "test" as const, accuracy: 0.6, n: 200 },
 *   { method: "b", seed, language, split: "test" as const, accuracy: 0.5, n: 200 },
 * ]));
 * const c = comparePair(rows, "a", "b", { resamples: 1000, seed: 0 });
 * if (typeof c === "string" || Math.abs(c.gain - 10) > 1e-9 || c.p !== 0.25) throw new Error();
 * ```
 */
export function comparePair(
  rows: MetricRow[],
  a: string,
  b: string,
  o: PairOptions,
): PairComparison | string {
  const { seeds, languages, grids: [ga, gb] } = commonGrid(rows, [a, b], "test");
  if (seeds.length === 0) return "no seed in common on zero-shot languages";
  if (languages.length === 0) return "no zero-shot language scored by both in every common seed";
  const diff = ga.acc.map((row, s) => row.map((x, l) => 100 * (x - gb.acc[s][l])));
  const perSeed = diff.map(mean);
  const test = signFlipTest(perSeed, o.resamples, o.seed);
  const items = new Map<string, number>();
  for (const r of rows) {
    if (r.split === "test" && (r.method === a || r.method === b) && r.n != null) {
      items.set(r.language, Math.min(items.get(r.language) ?? Infinity, r.n));
    }
  }
  const perLanguage = languages.map((language, l): LanguageGain => {
    const pa = mean(ga.acc.map((row) => row[l])), pb = mean(gb.acc.map((row) => row[l]));
    const gain = 100 * (pa - pb);
    const n = items.get(language) ?? null;
    const se = n === null ? null : 100 * Math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n);
    const outcome = se === null ? "unknown" : gain > se ? "win" : gain < -se ? "loss" : "tie";
    return { language, a: 100 * pa, b: 100 * pb, gain, n, se, outcome };
  });
  const count = (o: LanguageGain["outcome"]) => perLanguage.filter((g) => g.outcome === o).length;
  return {
    a,
    b,
    gain: mean(perSeed),
    ci95: twoLevelBootstrap(diff, o.resamples, o.seed),
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
