/**
 * LP-FT's first phase (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features and
 * Underperform Out-of-Distribution"): fit the new classification head on the frozen
 * encoder's pooled vectors before fine-tuning, so that fine-tuning starts from a head that
 * already reads the features, not from a random one whose early gradients distort them.
 *
 * The paper fits a linear probe with L-BFGS; here the whole new head (RoBERTa's dense + tanh
 * + out_proj) is fitted, full-batch with AdamW at a constant rate, without dropout, on the
 * vectors the encoder gives in evaluation mode. Full-batch needs no row order, so the fit is
 * deterministic given the weights.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { EncoderConfig } from "../model/config.ts";
import {
  classifierLogits,
  crossEntropy,
  encode,
  headPooling,
  type Params,
  pooledForHead,
} from "../model/encoder.ts";
import { batchRows, type Shard } from "../data/shards.ts";
import { AdamW, type TensorUpdate } from "./optimizer.ts";
import { trainStep } from "./step.ts";

/** How the head is fitted. */
export interface HeadFitOptions {
  /** Full-batch steps. */
  steps: number;
  lr: number;
  weightDecay: number;
  clipNorm: number;
  /** AdamW as the fused kernels (the fine-tuning's own setting). */
  fused: boolean;
}

/** The pooled vectors `[N, D]` the head reads, for every row of a shard, without dropout. */
export function pooledVectors(params: Params, cfg: EncoderConfig, s: Shard, batchSize = 64): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let i = 0; i < s.index.n; i += batchSize) {
    const b = batchRows(s, Array.from({ length: Math.min(batchSize, s.index.n - i) }, (_, k) => i + k));
    parts.push(tf.tidy(() => pooledForHead(encode(params, cfg, b, null), headPooling(cfg, b))));
  }
  const all = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return all;
}

/**
 * Fits the `classifier.*` tensors on the frozen encoder's pooled training vectors; the encoder
 * is not touched. Returns the loss of each step.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initParams } from "../model/encoder.ts";
 * import { namedConfig } from "../model/config.ts";
 * import { fitHead } from "./head_fit.ts";
 * await tf.setBackend("cpu");
 * const cfg = { ...namedConfig("tiny", 50), classifier_pooling: "mean" as const };
 * const params = initParams(cfg, { mlm: false, numLabels: 2 }, 1);
 * const shard = {
 *   index: { name: "train", n: 4, max_length: 4, pad_id: 1, languages: ["eng"], labels: ["a", "b"] },
 *   ids: Int32Array.from({ length: 16 }, (_, i) => (i % 4 === 0 ? 0 : 5 + (i % 8))),
 *   lengths: Uint16Array.of(4, 4, 4, 4),
 *   labels: Int16Array.of(0, 1, 0, 1),
 *   langs: new Uint16Array(4),
 *   items: Int32Array.of(0, 1, 2, 3),
 * };
 * const before = params.get("roberta.embeddings.word_embeddings.weight")!.dataSync().slice();
 * const o = { steps: 50, lr: 1e-2, weightDecay: 0, clipNorm: 1, fused: false };
 * const losses = await fitHead(params, cfg, shard, o);
 * if (!(losses[49] < losses[0])) throw new Error("the head did not fit");
 * const after = params.get("roberta.embeddings.word_embeddings.weight")!.dataSync();
 * if (after.some((v, i) => v !== before[i])) throw new Error("the encoder moved");
 * ```
 */
export async function fitHead(
  params: Params,
  cfg: EncoderConfig,
  train: Shard,
  o: HeadFitOptions,
): Promise<number[]> {
  const head: Params = new Map([...params].filter(([n]) => n.startsWith("classifier.")));
  const features = pooledVectors(params, cfg, train);
  const [N, D] = features.shape;
  // The head's own forward (dropout off): a pooled vector is a one-token hidden state read at <s>.
  const asHidden = features.reshape([N, 1, D]) as tf.Tensor3D;
  const labels = Int32Array.from({ length: N }, (_, i) => train.labels[i]);
  const opt = new AdamW(head, {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: o.weightDecay,
    fused: o.fused,
  });
  const updates = new Map<string, TensorUpdate>([...head.keys()].map((n) => [n, { mode: "none" }]));
  const losses: number[] = [];
  try {
    for (let k = 0; k < o.steps; k++) {
      const r = await trainStep(
        head,
        () => crossEntropy(classifierLogits(head, asHidden, null), labels),
        opt,
        updates,
        o.lr,
        o.clipNorm,
      );
      losses.push(r.loss);
    }
  } finally {
    opt.dispose();
    tf.dispose([features, asHidden]);
  }
  return losses;
}
