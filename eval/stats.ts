/**
 * Statistics for the comparison: mean/std, the t-interval over per-seed means, an exact
 * sign-flip test, Holm's adjustment, Spearman's rho, and
 * accuracy/macro-F1/predicted-label shares. Seeded, so reports are reproducible.
 * @module
 */
import jStat from "jstat";
import { mulberry32 } from "../kernels/random.ts";

/**
 * Arithmetic mean (0 for none).
 *
 * @example
 * ```ts
 * import { mean } from "./stats.ts";
 * if (mean([1, 2, 3]) !== 2) throw new Error();
 * ```
 */
export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/**
 * Sample standard deviation (0 for fewer than two).
 *
 * @example
 * ```ts
 * import { std } from "./stats.ts";
 * if (std([1, 3]) !== Math.SQRT2) throw new Error();
 * ```
 */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * 95% Student t-interval of the mean of `xs` (one value per seed): mean ± t(0.975, n−1)·sd/√n.
 * Null below two values, where the seed-to-seed spread is unknown. It treats the values as the
 * independent units they are (one run each), so it covers at its nominal rate when seed
 * variance dominates, where a percentile bootstrap over few seeds is too narrow.
 *
 * @example
 * ```ts
 * import { tInterval } from "./stats.ts";
 * const [lo, hi] = tInterval([1, 2, 3])!;
 * // mean 2, sd 1, t(0.975, 2) = 4.303: 2 ± 4.303/√3
 * if (Math.abs(hi - 2 - 4.303 / Math.sqrt(3)) > 1e-3 || lo > 0) throw new Error(`${lo} ${hi}`);
 * if (tInterval([5]) !== null) throw new Error("one seed has no interval");
 * ```
 */
export function tInterval(xs: number[]): [number, number] | null {
  if (xs.length < 2) return null;
  const half = jStat.studentt.inv(0.975, xs.length - 1) * std(xs) / Math.sqrt(xs.length);
  const m = mean(xs);
  return [m - half, m + half];
}

/** Above this many values the sign-flip test samples patterns instead of enumerating 2^n. */
const EXACT_UP_TO = 20;

/** Result of {@link signFlipTest}. */
export interface SignFlip {
  /** Two-sided p-value. */
  p: number;
  /** Whether every sign pattern was enumerated. */
  exact: boolean;
  /** The smallest p this number of values can give: 2/2^n (exact), or 1/(1 + resamples). */
  min_p: number;
}

/**
 * Two-sided sign-flip (paired permutation) test of "mean is zero": under H0 each value's sign
 * is equally likely to be + or −, so p is the share of the 2^n sign patterns whose mean is at
 * least as far from zero as the observed one (enumerated up to 20 values, sampled above).
 *
 * @example
 * ```ts
 * import { signFlipTest } from "./stats.ts";
 * const t = signFlipTest([1.2, 0.8, 2.0], 10000, 0);
 * if (t.p !== 0.25 || t.min_p !== 0.25) throw new Error("3 values: 2 of 8 patterns");
 * ```
 */
export function signFlipTest(xs: number[], resamples: number, seed: number): SignFlip {
  const n = xs.length;
  if (n === 0) return { p: 1, exact: true, min_p: 1 };
  const obs = Math.abs(xs.reduce((a, b) => a + b, 0));
  // Sums of the same magnitudes in another order can differ in the last bits.
  const tol = 1e-9 * xs.reduce((a, b) => a + Math.abs(b), 0);
  if (n <= EXACT_UP_TO) {
    const total = 2 ** n;
    let hits = 0;
    for (let m = 0; m < total; m++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (m >> i) & 1 ? -xs[i] : xs[i];
      if (Math.abs(s) >= obs - tol) hits++;
    }
    return { p: hits / total, exact: true, min_p: 2 / total };
  }
  const rand = mulberry32(seed);
  let hits = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (const x of xs) s += rand() < 0.5 ? -x : x;
    if (Math.abs(s) >= obs - tol) hits++;
  }
  return { p: (1 + hits) / (1 + resamples), exact: false, min_p: Math.max(2 / 2 ** n, 1 / (1 + resamples)) };
}

/**
 * Holm's step-down adjustment of a family of p-values (family-wise error control). `null`
 * marks a test that was not made: it stays `null` and does not count in the family.
 *
 * @example
 * ```ts
 * import { holm } from "./stats.ts";
 * const adj = holm([0.5, null, 0.125, 0.25]);
 * // sorted 0.125, 0.25, 0.5 times 3, 2, 1 -> 0.375, 0.5, 0.5 (kept monotone)
 * if (adj.join() !== "0.5,,0.375,0.5") throw new Error(adj.join());
 * ```
 */
export function holm(ps: (number | null)[]): (number | null)[] {
  const made = ps.map((p, i) => [p, i] as const).filter((x): x is readonly [number, number] => x[0] !== null)
    .sort((a, b) => a[0] - b[0]);
  const out: (number | null)[] = ps.map(() => null);
  let running = 0;
  made.forEach(([p, i], k) => {
    running = Math.max(running, Math.min(1, (made.length - k) * p));
    out[i] = running;
  });
  return out;
}

/**
 * The q-quantile of sorted values, interpolating linearly between order statistics.
 *
 * @example
 * ```ts
 * import { quantile } from "./stats.ts";
 * if (quantile([1, 2, 3, 4, 5], 0.25) !== 2) throw new Error();
 * ```
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h), hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

function ranks(xs: number[]): number[] {
  const idx = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array(xs.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

function pearson(a: number[], b: number[]): number | null {
  const ma = mean(a), mb = mean(b);
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) ** 2;
    db += (b[i] - mb) ** 2;
  }
  return da && db ? num / Math.sqrt(da * db) : null;
}

/**
 * Spearman's rho (average ranks for ties); null below three points or when either side is
 * constant. It carries no p-value: a test of it needs a unit of randomness, which the caller
 * chooses (the analysis uses seeds, `eval/compare.ts`).
 *
 * @example
 * ```ts
 * import { spearman } from "./stats.ts";
 * if (spearman([1, 2, 3, 4], [4, 3, 2, 1]) !== -1) throw new Error();
 * if (spearman([1, 2], [1, 2]) !== null) throw new Error("undefined below 3 points");
 * ```
 */
export function spearman(x: number[], y: number[]): number | null {
  if (x.length < 3) return null;
  return pearson(ranks(x), ranks(y));
}

/** What {@link scores} returns. */
export interface Scores {
  accuracy: number;
  f1: number;
  /** Share of the predictions that went to each label id, `classes` entries (the label distribution predicted). */
  pred_share: number[];
}

/**
 * Accuracy, macro-F1 (over labels present in gold or predictions) and the share of
 * predictions per label (over `classes` labels; default: the largest id seen + 1). Every
 * scorer (fine-tuned models, the n-gram and subword baselines, the floor) reports through it.
 *
 * @example
 * ```ts
 * import { scores } from "./stats.ts";
 * const s = scores([0, 0, 1, 1], [0, 1, 1, 1], 3);
 * if (s.accuracy !== 0.75 || s.pred_share.join() !== "0.25,0.75,0") throw new Error(s.pred_share.join());
 * ```
 */
export function scores(gold: ArrayLike<number>, pred: ArrayLike<number>, classes?: number): Scores {
  const n = gold.length;
  let top = (classes ?? 0) - 1;
  for (let i = 0; i < n; i++) top = Math.max(top, gold[i], pred[i]);
  const counts = new Array<number>(top + 1).fill(0);
  for (let i = 0; i < n; i++) counts[pred[i]]++;
  const share = counts.map((c) => n ? c / n : 0);
  if (n === 0) return { accuracy: 0, f1: 0, pred_share: share };
  let correct = 0;
  const labels = new Set<number>();
  for (let i = 0; i < n; i++) {
    if (gold[i] === pred[i]) correct++;
    labels.add(gold[i]);
    labels.add(pred[i]);
  }
  let f1sum = 0;
  for (const c of labels) {
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < n; i++) {
      if (pred[i] === c && gold[i] === c) tp++;
      else if (pred[i] === c) fp++;
      else if (gold[i] === c) fn++;
    }
    f1sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return { accuracy: correct / n, f1: f1sum / labels.size, pred_share: share };
}
