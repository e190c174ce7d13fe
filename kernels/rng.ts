/**
 * The stateless counter-based RNG behind every GradDrop mask: a PCG output hash on u32.
 * The WGSL text and the TypeScript functions compute the same bits, so a mask needs no
 * memory, is reproducible, and the GPU's can be checked element by element.
 * @module
 */

/** WGSL source of `pcg(u32) -> u32` (PCG-RXS-M-XS 32, as a hash). */
export const PCG_WGSL = /* wgsl */ `
fn pcg(v : u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}`;

/**
 * The same hash in TypeScript (u32 arithmetic via `Math.imul` and `>>> 0`).
 *
 * @example
 * ```ts
 * pcg(0); // 129708002
 * ```
 */
export function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/**
 * Per-tensor stream key from (seed, step, stream id). Computed on the host and passed to
 * the shader as a uniform; `step` is the epoch when masks are resampled per epoch, and the
 * stream is a parameter index or, for layer granularity, a layer index.
 */
export function streamKey(seed: number, step: number, stream: number): number {
  return pcg((seed >>> 0) ^ pcg((step >>> 0) ^ pcg(stream >>> 0)));
}

/** Integer keep threshold for keep probability `keep`: keep iff `(hash >> 8) < threshold`. */
export function keepThreshold(keep: number): number {
  return Math.round(Math.max(0, Math.min(1, keep)) * 16777216);
}

/** Whether counter `c` of the stream `key` is kept under `threshold` (reference for the WGSL). */
export function kept(key: number, c: number, threshold: number): boolean {
  return (pcg((pcg(c) ^ key) >>> 0) >>> 8) < threshold;
}

/** WGSL of the same keep test. */
export const KEEP_WGSL = /* wgsl */ `
fn kept(key : u32, c : u32, threshold : u32) -> bool {
  return (pcg(pcg(c) ^ key) >> 8u) < threshold;
}`;
