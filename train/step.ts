/**
 * One optimisation step shared by pretraining and fine-tuning: gradients of the trainable
 * tensors, global-norm clipping, then AdamW with each tensor's mask.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Params } from "../model/encoder.ts";
import type { AdamW, TensorUpdate } from "./optimizer.ts";
import { seeds, shuffled } from "../kernels/random.ts";

/**
 * Runs `loss` forward and backward over the tensors in `updates`, clips, and updates.
 * Returns the loss and the pre-clip gradient norm (one GPU->CPU read per step on WebGPU).
 *
 * @example
 * ```ts ignore
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
  const { value, grads } = gradsOf(loss, vars);
  const gradMap = new Map<string, tf.Tensor>();
  names.forEach((n, i) => gradMap.set(n, grads[vars[i].name]));
  const r = await opt.stepAndRead(gradMap, clipNorm, lr, updates, value);
  tf.dispose([value, ...Object.values(grads)]);
  return r;
}

/**
 * `tf.variableGrads`, except that on WebGPU the backward pass starts from a 1 filled on the
 * device: tfjs's own seed is a host tensor, uploaded through a staging buffer every step.
 */
function gradsOf(
  loss: () => tf.Scalar,
  vars: tf.Variable[],
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  if (tf.getBackend() !== "webgpu") return tf.variableGrads(loss, vars);
  const engine = tf.engine() as unknown as {
    gradients(f: () => tf.Scalar, xs: tf.Tensor[], dy: tf.Tensor, allow: boolean): {
      value: tf.Scalar;
      grads: (tf.Tensor | null)[];
    };
  };
  const seed = tf.fill([], 1);
  const { value, grads } = engine.gradients(loss, vars, seed, true);
  seed.dispose();
  const named: Record<string, tf.Tensor> = {};
  vars.forEach((v, i) => {
    if (grads[i]) named[v.name] = grads[i]!;
  });
  return { value, grads: named };
}

/**
 * One update from several micro-batches (gradient accumulation): each part's gradients are
 * computed and freed in turn, summed with its weight (its share of the batch's rows, so the
 * sum is the whole batch's mean-loss gradient), then clipped and applied once. Memory is one
 * micro-batch's activations; the result matches one step on the whole batch up to float
 * rounding (and dropout, which draws per micro-batch).
 *
 * @example
 * ```ts ignore
 * await accumulatedStep(params, [{ loss: lossA, weight: 0.5 }, { loss: lossB, weight: 0.5 }], opt, updates, lr, 1);
 * ```
 */
export async function accumulatedStep(
  params: Params,
  parts: { loss: () => tf.Scalar; weight: number }[],
  opt: AdamW,
  updates: Map<string, TensorUpdate>,
  lr: number,
  clipNorm: number,
): Promise<{ loss: number; gradNorm: number }> {
  const names = [...updates.keys()];
  const vars = names.map((n) => params.get(n)!);
  let sum: tf.Tensor[] | null = null;
  let loss = 0;
  for (const part of parts) {
    const { value, grads } = tf.variableGrads(part.loss, vars);
    const prev: tf.Tensor[] | null = sum;
    sum = tf.tidy(() => vars.map((v, i) => grads[v.name].mul(part.weight).add(prev ? prev[i] : 0)));
    if (prev) tf.dispose(prev);
    loss += (await value.data())[0] * part.weight;
    tf.dispose([value, ...Object.values(grads)]);
  }
  const gradMap = new Map<string, tf.Tensor>();
  names.forEach((n, i) => gradMap.set(n, sum![i]));
  const gradNorm = await opt.step(gradMap, clipNorm, lr, updates);
  tf.dispose(sum!);
  return { loss, gradNorm };
}

/** Seeded permutation of 0..n-1 for an epoch. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  return shuffled(Array.from({ length: n }, (_, i) => i), seeds.epochOrder(seed, epoch));
}
