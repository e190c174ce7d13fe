/**
 * What one tensor's mask is for one step: the stream key, the keep threshold, how many
 * consecutive elements share a draw, and the scale applied to kept values.
 * @module
 */
import { keepThreshold, kept, streamKey } from "./rng.ts";

/** Everything a mask kernel needs for one tensor and one step. */
export interface MaskSpec {
  /** From {@link streamKey}. */
  key: number;
  /** From {@link keepThreshold}. */
  threshold: number;
  /** Elements per draw: 1 (element), row length (row), tensor size (layer/tensor). */
  divisor: number;
  /** Multiplier for kept values (1, or 1/keep when rescaling). */
  scale: number;
}

/**
 * Builds a mask spec.
 *
 * @example
 * ```ts
 * const spec = maskSpec({ seed: 1, step: 0, stream: 3, keep: 0.5, divisor: 1, rescale: false });
 * ```
 */
export function maskSpec(o: {
  seed: number;
  step: number;
  stream: number;
  keep: number;
  divisor: number;
  rescale: boolean;
}): MaskSpec {
  return {
    key: streamKey(o.seed, o.step, o.stream),
    threshold: keepThreshold(o.keep),
    divisor: Math.max(1, Math.floor(o.divisor)),
    scale: o.rescale && o.keep > 0 ? 1 / o.keep : 1,
  };
}

/** The keep mask (1 kept, 0 dropped) for `n` elements: the reference the shaders must match. */
export function referenceMask(spec: MaskSpec, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = kept(spec.key, Math.floor(i / spec.divisor), spec.threshold) ? 1 : 0;
  return out;
}
