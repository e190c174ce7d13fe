/**
 * One optimisation step shared by pretraining and fine-tuning: gradients of the trainable
 * tensors, global-norm clipping, then AdamW with each tensor's mask.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Params } from "../model/encoder.ts";
import { type AdamW, clipScale, type TensorUpdate } from "./optimizer.ts";

/**
 * Runs `loss` forward and backward over the tensors in `updates`, clips, and updates.
 * Returns the loss and the pre-clip gradient norm (one GPU->CPU read per step).
 *
 * @example
 * ```ts
 * const { loss } = await trainStep(params, () => crossEntropy(logits(), labels), opt, updates, lr, 1.0);
 * ```
 */
export async function trainStep(
  params: Params,
  loss: () => tf.Scalar,
  opt: AdamW,
  updates: Map<string, TensorUpdate>,
  lr: number,
  clipNorm: number,
): Promise<{ loss: number; gradNorm: number }> {
  const names = [...updates.keys()];
  const vars = names.map((n) => params.get(n)!);
  const { value, grads } = tf.variableGrads(loss, vars);
  const gradMap = new Map<string, tf.Tensor>();
  names.forEach((n, i) => gradMap.set(n, grads[vars[i].name]));
  const { scale, norm } = clipScale([...gradMap.values()], clipNorm);
  opt.apply(gradMap, scale, lr, updates);
  const [l, gn] = await Promise.all([value.data(), norm.data()]);
  tf.dispose([value, scale, norm, ...Object.values(grads)]);
  return { loss: l[0], gradNorm: gn[0] };
}

/** Seeded permutation of 0..n-1 for an epoch (mulberry32 Fisher-Yates). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  let a = (seed * 1000003 + epoch * 7919 + 1) >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
