/**
 * The two-level (seeds, then languages) percentile bootstrap of a mean over a seeds ×
 * languages grid, the confidence interval every gain in the report carries.
 * @module
 */
import { mulberry32 } from "../kernels/random.ts";
import { quantile } from "./stats.ts";

/**
 * 95% percentile interval of the grid mean. Each replicate draws the seeds (rows) with
 * replacement, then the languages (columns) with replacement, and averages the drawn cells.
 * One language draw serves every drawn seed because every seed scored the same languages:
 * a language that is easy for both methods stays one language, not one per seed.
 *
 * @param cells `cells[s][l]`, every row the same length.
 * @example
 * ```ts
 * import { twoLevelBootstrap } from "./bootstrap.ts";
 * const [lo, hi] = twoLevelBootstrap([[1, 2, 3], [2, 3, 4], [1, 3, 5]], 2000, 0);
 * if (!(lo <= 2.67 && 2.67 <= hi)) throw new Error("the interval holds the grid mean");
 * ```
 */
export function twoLevelBootstrap(cells: number[][], resamples: number, seed: number): [number, number] {
  const S = cells.length, L = cells[0]?.length ?? 0;
  if (S === 0 || L === 0) throw new Error("twoLevelBootstrap: empty grid");
  const rand = mulberry32(seed);
  const ws = new Float64Array(S), wl = new Float64Array(L);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    ws.fill(0);
    wl.fill(0);
    for (let i = 0; i < S; i++) ws[Math.floor(rand() * S)]++;
    for (let j = 0; j < L; j++) wl[Math.floor(rand() * L)]++;
    let total = 0;
    for (let s = 0; s < S; s++) {
      if (ws[s] === 0) continue;
      const row = cells[s];
      let sum = 0;
      for (let l = 0; l < L; l++) sum += wl[l] * row[l];
      total += ws[s] * sum;
    }
    stats[r] = total / (S * L);
  }
  stats.sort();
  return [quantile(stats, 0.025), quantile(stats, 0.975)];
}
