/**
 * Statistics for the comparison: mean/std, a paired sign-flip permutation test, and
 * Spearman's rho with a permutation p-value. Seeded, so reports are reproducible.
 * @module
 */
import { mulberry32 } from "../kernels/random.ts";

/** Arithmetic mean (0 for none). */
export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Sample standard deviation (0 for fewer than two). */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * Two-sided paired permutation test on differences: under H0 each difference's sign is
 * exchangeable; p = (1 + #{|mean of flipped| >= |observed|}) / (1 + resamples).
 *
 * @example
 * ```ts
 * pairedPermutation([0.1, 0.2, 0.15], 10000, 0).p; // 0.25 (only 8 sign patterns)
 * ```
 */
export function pairedPermutation(
  diffs: number[],
  resamples: number,
  seed: number,
): { mean: number; p: number; resamples: number } {
  const n = diffs.length;
  const obs = Math.abs(mean(diffs));
  if (n === 0) return { mean: 0, p: 1, resamples: 0 };
  if (n <= 16) {
    // Exact: enumerate every sign pattern.
    let hits = 0;
    const total = 1 << n;
    for (let m = 0; m < total; m++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (m >> i) & 1 ? -diffs[i] : diffs[i];
      if (Math.abs(s / n) >= obs - 1e-12) hits++;
    }
    return { mean: mean(diffs), p: hits / total, resamples: total };
  }
  const rand = mulberry32(seed);
  let hits = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (const d of diffs) s += rand() < 0.5 ? -d : d;
    if (Math.abs(s / n) >= obs - 1e-12) hits++;
  }
  return { mean: mean(diffs), p: (1 + hits) / (1 + resamples), resamples };
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

function pearson(a: number[], b: number[]): number {
  const ma = mean(a), mb = mean(b);
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) ** 2;
    db += (b[i] - mb) ** 2;
  }
  return da && db ? num / Math.sqrt(da * db) : 0;
}

/** Spearman's rho (average ranks for ties) with a two-sided permutation p-value. */
export function spearman(
  x: number[],
  y: number[],
  resamples: number,
  seed: number,
): { rho: number; p: number; n: number; resamples: number } {
  const n = x.length;
  if (n < 3) return { rho: 0, p: 1, n, resamples: 0 };
  const rx = ranks(x), ry = ranks(y);
  const rho = pearson(rx, ry);
  const rand = mulberry32(seed);
  const perm = [...ry];
  let hits = 0;
  for (let r = 0; r < resamples; r++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    if (Math.abs(pearson(rx, perm)) >= Math.abs(rho) - 1e-12) hits++;
  }
  return { rho, p: (1 + hits) / (1 + resamples), n, resamples };
}

/** Accuracy and macro-F1 (over labels present in gold or predictions). */
export function scores(gold: ArrayLike<number>, pred: ArrayLike<number>): { accuracy: number; f1: number } {
  const n = gold.length;
  if (n === 0) return { accuracy: 0, f1: 0 };
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
  return { accuracy: correct / n, f1: f1sum / labels.size };
}
