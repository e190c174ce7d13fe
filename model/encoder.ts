/**
 * The XLM-R / RoBERTa encoder in tfjs, written from the architecture: embeddings (word,
 * position with RoBERTa's padding offset, token type) + LayerNorm; post-LayerNorm blocks of
 * multi-head self-attention and a GELU feed-forward; an MLM head tied to the word
 * embeddings; and RoBERTa's sequence-classification head on `<s>`.
 * Parameters are named exactly as Hugging Face names them, so checkpoints load by name.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { EncoderConfig } from "./config.ts";
import { mulberry32, seeds } from "../kernels/random.ts";
import { bindingLimit, checkActivations, checkTensorSize, MLM_REMEDY, PARAMETER_REMEDY } from "./limits.ts";
import { splitForLimit, wordEmbeddingBlocks } from "./row_shards.ts";
import { dropoutGpu } from "../kernels/dropout.ts";
import { layerNormGpu } from "../kernels/layer_norm.ts";
import { geluGpu } from "../kernels/gelu.ts";
import { lookupRows } from "../kernels/embedding_grad.ts";
import { attentionSoftmax } from "../kernels/attention_softmax.ts";
import { fusedAttention, fusedAttentionFits, type ProbsDropout } from "../kernels/fused_attention.ts";
import { cpuAdapterKernelsEnabled } from "../kernels/cpu_adapter.ts";
import { crossEntropyWithGrad, tanhWithGrad } from "../kernels/head_grads.ts";

// Before any tensor exists: PROD silences tfjs's "running TensorFlow.js in Node.js" banner
// (printed at the cpu backend's first write) and skips its debug-only checks.
tf.env().set("PROD", true);

/** Model parameters by HF name (the word embedding as `NAME#k` row blocks when it exceeds the binding limit). */
export type Params = Map<string, tf.Variable>;

/** Which heads a parameter set carries. */
export interface Heads {
  mlm: boolean;
  numLabels: number;
}

/** HF names and shapes of every parameter for a config and heads. */
export function paramShapes(cfg: EncoderConfig, heads: Heads): [string, number[]][] {
  const D = cfg.hidden_size, F = cfg.intermediate_size;
  const out: [string, number[]][] = [
    ["roberta.embeddings.word_embeddings.weight", [cfg.vocab_size, D]],
    ["roberta.embeddings.position_embeddings.weight", [cfg.max_position_embeddings, D]],
    ["roberta.embeddings.token_type_embeddings.weight", [cfg.type_vocab_size, D]],
    ["roberta.embeddings.LayerNorm.weight", [D]],
    ["roberta.embeddings.LayerNorm.bias", [D]],
  ];
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `roberta.encoder.layer.${i}`;
    for (const n of ["query", "key", "value"]) {
      out.push([`${p}.attention.self.${n}.weight`, [D, D]], [`${p}.attention.self.${n}.bias`, [D]]);
    }
    out.push(
      [`${p}.attention.output.dense.weight`, [D, D]],
      [`${p}.attention.output.dense.bias`, [D]],
      [`${p}.attention.output.LayerNorm.weight`, [D]],
      [`${p}.attention.output.LayerNorm.bias`, [D]],
      [`${p}.intermediate.dense.weight`, [F, D]],
      [`${p}.intermediate.dense.bias`, [F]],
      [`${p}.output.dense.weight`, [D, F]],
      [`${p}.output.dense.bias`, [D]],
      [`${p}.output.LayerNorm.weight`, [D]],
      [`${p}.output.LayerNorm.bias`, [D]],
    );
  }
  if (heads.mlm) {
    out.push(
      ["lm_head.dense.weight", [D, D]],
      ["lm_head.dense.bias", [D]],
      ["lm_head.layer_norm.weight", [D]],
      ["lm_head.layer_norm.bias", [D]],
      ["lm_head.bias", [cfg.vocab_size]],
    );
  }
  if (heads.numLabels > 0) {
    out.push(
      ["classifier.dense.weight", [D, D]],
      ["classifier.dense.bias", [D]],
      ["classifier.out_proj.weight", [heads.numLabels, D]],
      ["classifier.out_proj.bias", [heads.numLabels]],
    );
  }
  return out;
}

/** Initial value for a parameter: N(0, 0.02) for matrices, ones for LayerNorm weights, zeros for biases. */
export function initValue(name: string, shape: number[], rand: () => number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  if (/LayerNorm\.weight$|layer_norm\.weight$/.test(name)) data.fill(1);
  else if (shape.length === 2) {
    for (let i = 0; i < n; i++) {
      const u = Math.max(rand(), 1e-12), v = rand();
      data[i] = 0.02 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
  }
  return data;
}

/**
 * Fresh parameters for a config, as tfjs variables (each owns its buffer, which the fused
 * optimizer relies on). A word embedding larger than `limit` bytes (the active device's
 * binding limit by default) is held as row blocks with the same values.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initParams } from "./encoder.ts";
 * import { namedConfig } from "./config.ts";
 * await tf.setBackend("cpu");
 * const params = initParams(namedConfig("tiny", 1000), { mlm: true, numLabels: 0 }, 42);
 * if (!params.has("lm_head.bias")) throw new Error("no MLM head");
 * ```
 */
export function initParams(cfg: EncoderConfig, heads: Heads, seed: number, limit = bindingLimit()): Params {
  const rand = mulberry32(seed);
  const params: Params = new Map();
  try {
    for (const [name, shape] of paramShapes(cfg, heads)) {
      for (const [key, data, s] of splitForLimit(name, initValue(name, shape, rand), shape, limit)) {
        params.set(key, ownedVariable(data, s, key));
      }
    }
  } catch (e) {
    for (const v of params.values()) v.dispose();
    throw e;
  }
  return params;
}

/**
 * A variable built from host data that shares its buffer with no other tensor. Throws a
 * {@link BindingLimitError} naming it when it is larger than the device can bind.
 */
export function ownedVariable(
  data: Float32Array,
  shape: number[],
  name: string,
  trainable = true,
): tf.Variable {
  checkTensorSize(`'${name}'`, shape, PARAMETER_REMEDY);
  const t = tf.tensor(data, shape, "float32");
  const v = tf.variable(t, trainable, `${name}#${crypto.randomUUID().slice(0, 8)}`);
  t.dispose();
  return v;
}

/** A batch on the host: token ids `[B, T]` row-major, padded with `pad_token_id`. */
export interface HostBatch {
  ids: Int32Array;
  B: number;
  T: number;
}

/** RoBERTa position ids: pad positions get `pad`, others count from `pad + 1`. */
export function positionIds(b: HostBatch, pad: number): Int32Array {
  const out = new Int32Array(b.ids.length);
  for (let r = 0; r < b.B; r++) {
    let c = 0;
    for (let t = 0; t < b.T; t++) {
      const i = r * b.T + t;
      if (b.ids[i] !== pad) out[i] = pad + ++c;
      else out[i] = pad;
    }
  }
  return out;
}

/** Dropout settings for a training forward pass; null in evaluation. */
export interface DropoutCtx {
  rate: number;
  seed: number;
  counter: number;
}

/**
 * Dropout: on WebGPU with the mask drawn in the shader ({@link dropoutGpu}); elsewhere tfjs's
 * seeded dropout, whose masks the pinned results were computed with.
 */
function dropout(x: tf.Tensor, d: DropoutCtx | null): tf.Tensor {
  const site = nextSite(d);
  if (!site) return x;
  if (tf.getBackend() === "webgpu") return dropoutGpu(x, site.rate, site.seed);
  return tf.dropout(x, site.rate, undefined, site.seed);
}

/** The next dropout site of a forward pass (every site, applied or fused, takes one), or null. */
function nextSite(d: DropoutCtx | null): ProbsDropout | null {
  if (!d || d.rate <= 0) return null;
  return { rate: d.rate, seed: seeds.dropoutSite(d.seed, d.counter++) };
}

function linear(x: tf.Tensor, p: Params, name: string): tf.Tensor {
  const w = p.get(`${name}.weight`)!, bias = p.get(`${name}.bias`)!;
  const shape = x.shape;
  const flat = x.reshape([-1, shape[shape.length - 1]]);
  // tfjs's fused matmul adds the bias in the same WebGPU dispatch.
  const y = tf.getBackend() === "webgpu"
    ? tf.fused.matMul({ a: flat, b: w, transposeB: true, bias })
    : tf.matMul(flat, w, false, true).add(bias);
  return y.reshape([...shape.slice(0, -1), w.shape[0]]);
}

function layerNorm(x: tf.Tensor, p: Params, name: string, eps: number): tf.Tensor {
  const w = p.get(`${name}.weight`)!, b = p.get(`${name}.bias`)!;
  return tf.getBackend() === "webgpu" ? layerNormGpu(x, w, b, eps) : layerNormOps(x, w, b, eps);
}

/** LayerNorm over the last axis from tfjs ops: the twin of {@link layerNormGpu}. */
export function layerNormOps(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const mean = x.mean(-1, true);
  const centered = x.sub(mean);
  const variance = centered.square().mean(-1, true);
  return centered.mul(variance.add(eps).rsqrt()).mul(w).add(b);
}

/** Exact GELU, `x * Φ(x)`, as HF's "gelu" (one kernel each way on WebGPU: {@link geluGpu}). */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (tf.getBackend() === "webgpu") return geluGpu(x);
  return x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1));
}

/**
 * Word embeddings of `[B, T]` token ids, gathered block by block when the embedding is split:
 * each block looks up the ids in its row range (others read its row 0 and are zeroed), so
 * every block is on the gradient path and gets a gradient, zero where no id fell.
 */
function embedTokens(p: Params, batch: HostBatch): tf.Tensor {
  const { B, T, ids } = batch;
  const blocks = wordEmbeddingBlocks(p);
  if (blocks.length === 1 && tf.getBackend() === "webgpu") return lookupRows(blocks[0], ids, [B, T]);
  if (blocks.length === 1) return tf.gather(blocks[0], tf.tensor2d(ids, [B, T], "int32"));
  let out: tf.Tensor | undefined;
  let start = 0;
  for (const w of blocks) {
    const end = start + w.shape[0];
    const inBlock = (v: number) => v >= start && v < end;
    const local = tf.tensor2d(Int32Array.from(ids, (v) => (inBlock(v) ? v - start : 0)), [B, T], "int32");
    const hit = tf.tensor3d(Float32Array.from(ids, (v) => (inBlock(v) ? 1 : 0)), [B, T, 1]);
    const part = tf.gather(w, local).mul(hit);
    out = out ? out.add(part) : part;
    start = end;
  }
  return out!;
}

/** Token, position and token-type embeddings, then LayerNorm and dropout: `[B, T, D]`. */
function embeddings(p: Params, cfg: EncoderConfig, batch: HostBatch, drop: DropoutCtx | null): tf.Tensor3D {
  const posIds = positionIds(batch, cfg.pad_token_id);
  const posTable = p.get("roberta.embeddings.position_embeddings.weight")!;
  const x = embedTokens(p, batch)
    .add(
      tf.getBackend() === "webgpu"
        ? lookupRows(posTable, posIds, [batch.B, batch.T])
        : tf.gather(posTable, tf.tensor2d(posIds, [batch.B, batch.T], "int32")),
    )
    .add(p.get("roberta.embeddings.token_type_embeddings.weight")!.slice([0, 0], [1, cfg.hidden_size]));
  return dropout(layerNorm(x, p, "roberta.embeddings.LayerNorm", cfg.layer_norm_eps), drop) as tf.Tensor3D;
}

/**
 * Multi-head self-attention of block `l` with its output projection (post-LN residual is the
 * caller's): `softmax(QK^T / sqrt(dh) + mask) V`. `keyMask` is -1e9 on padded keys. On a
 * software adapter, with a head size that is a multiple of 4, the attention itself is
 * {@link fusedAttention}; elsewhere tfjs ops.
 */
function selfAttention(
  x: tf.Tensor3D,
  p: Params,
  cfg: EncoderConfig,
  l: string,
  keyMask: tf.Tensor,
  drop: DropoutCtx | null,
): tf.Tensor3D {
  const H = cfg.num_attention_heads;
  const q = linear(x, p, `${l}.attention.self.query`) as tf.Tensor3D;
  const k = linear(x, p, `${l}.attention.self.key`) as tf.Tensor3D;
  const v = linear(x, p, `${l}.attention.self.value`) as tf.Tensor3D;
  const fused = tf.getBackend() === "webgpu" && cpuAdapterKernelsEnabled() &&
    fusedAttentionFits(x.shape[2], H);
  const ctx = fused
    ? fusedAttention(q, k, v, H, keyMask, nextSite(drop))
    : attentionOps(q, k, v, H, keyMask, drop);
  return dropout(linear(ctx, p, `${l}.attention.output.dense`), drop) as tf.Tensor3D;
}

/** The attention context `[B, T, D]` from tfjs ops: the twin of {@link fusedAttention}. */
function attentionOps(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  H: number,
  keyMask: tf.Tensor,
  drop: DropoutCtx | null,
): tf.Tensor3D {
  const [B, T, D] = q.shape;
  const dh = D / H;
  const heads = (t: tf.Tensor) => t.reshape([B, T, H, dh]).transpose([0, 2, 1, 3]);
  const raw = tf.matMul(heads(q), heads(k), false, true) as tf.Tensor4D;
  const probs = dropout(
    tf.getBackend() === "webgpu"
      ? attentionSoftmax(raw, 1 / Math.sqrt(dh), keyMask)
      : tf.softmax(raw.mul(1 / Math.sqrt(dh)).add(keyMask), -1),
    drop,
  );
  return tf.matMul(probs, heads(v)).transpose([0, 2, 1, 3]).reshape([B, T, D]) as tf.Tensor3D;
}

/** The feed-forward of block `l`: dense -> GELU -> dense, with dropout. */
function feedForward(x: tf.Tensor3D, p: Params, l: string, drop: DropoutCtx | null): tf.Tensor3D {
  return dropout(
    linear(gelu(linear(x, p, `${l}.intermediate.dense`)), p, `${l}.output.dense`),
    drop,
  ) as tf.Tensor3D;
}

/**
 * Encoder forward pass: returns hidden states `[B, T, D]`. Each block is post-LN, as in
 * RoBERTa: `x = LN(x + selfAttention(x))`, then `x = LN(x + feedForward(x))`. Throws a
 * {@link BindingLimitError} before computing when an activation would not fit the device.
 * `onLayer` sees every layer's output as it is made: 0 the embeddings, then each block's.
 */
export function encode(
  p: Params,
  cfg: EncoderConfig,
  batch: HostBatch,
  drop: DropoutCtx | null,
  onLayer?: (layer: number, hidden: tf.Tensor3D) => void,
): tf.Tensor3D {
  checkActivations(cfg, batch.B, batch.T);
  const keyMask = tf.tensor(
    Float32Array.from(batch.ids, (v) => (v === cfg.pad_token_id ? -1e9 : 0)),
    [batch.B, 1, 1, batch.T],
  );
  let x = embeddings(p, cfg, batch, drop);
  onLayer?.(0, x);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const l = `roberta.encoder.layer.${i}`;
    x = layerNorm(
      x.add(selfAttention(x, p, cfg, l, keyMask, drop)),
      p,
      `${l}.attention.output.LayerNorm`,
      cfg.layer_norm_eps,
    ) as tf.Tensor3D;
    x = layerNorm(
      x.add(feedForward(x, p, l, drop)),
      p,
      `${l}.output.LayerNorm`,
      cfg.layer_norm_eps,
    ) as tf.Tensor3D;
    onLayer?.(i + 1, x);
  }
  return x;
}

/**
 * MLM logits `[N, V]` at the flat positions `at` of the hidden states (masked tokens only),
 * with the decoder tied to the word embedding (block by block when it is split).
 */
export function mlmLogits(p: Params, cfg: EncoderConfig, hidden: tf.Tensor3D, at: Int32Array): tf.Tensor2D {
  checkTensorSize("MLM logits", [at.length, cfg.vocab_size], MLM_REMEDY);
  const flat = hidden.reshape([-1, cfg.hidden_size]);
  const h = tf.gather(flat, tf.tensor1d(at, "int32"));
  const t = layerNorm(gelu(linear(h, p, "lm_head.dense")), p, "lm_head.layer_norm", cfg.layer_norm_eps);
  const blocks = wordEmbeddingBlocks(p).map((w) => tf.matMul(t, w, false, true));
  const logits = blocks.length === 1 ? blocks[0] : tf.concat(blocks, 1);
  return logits.add(p.get("lm_head.bias")!);
}

/** The rows a pooled head reads, and how it pools them (see {@link headPooling}). */
export interface TokenPooling {
  kind: "mean" | "max";
  batch: HostBatch;
  pad: number;
}

/**
 * What {@link classifierLogits} needs to pool a batch as the config says: nothing for `<s>`,
 * the batch, pad id and kind for the mean or the max over tokens.
 */
export function headPooling(cfg: EncoderConfig, batch: HostBatch): TokenPooling | undefined {
  const kind = cfg.classifier_pooling;
  return kind === "mean" || kind === "max" ? { kind, batch, pad: cfg.pad_token_id } : undefined;
}

/**
 * The vector the classifier head reads, `[B, D]`: the `<s>` position, or the mean or max over
 * non-pad tokens when `pooling` is given.
 */
export function pooledForHead(hidden: tf.Tensor3D, pooling?: TokenPooling): tf.Tensor2D {
  const [B, , D] = hidden.shape;
  if (!pooling) return hidden.slice([0, 0, 0], [B, 1, D]).reshape([B, D]);
  const pool = pooling.kind === "max" ? maxPool : meanPool;
  return pool(hidden, pooling.batch, pooling.pad);
}

/**
 * Classification logits `[B, C]`: RoBERTa's head (dense + tanh + out_proj) on the `<s>`
 * position, or on the mean or max over non-pad positions when `pooling` is given.
 */
export function classifierLogits(
  p: Params,
  hidden: tf.Tensor3D,
  drop: DropoutCtx | null,
  pooling?: TokenPooling,
): tf.Tensor2D {
  const pooled = pooledForHead(hidden, pooling);
  const tanh = tf.getBackend() === "webgpu" ? tanhWithGrad : tf.tanh;
  const h = dropout(tanh(linear(dropout(pooled, drop), p, "classifier.dense")), drop);
  return linear(h, p, "classifier.out_proj") as tf.Tensor2D;
}

/** Mean cross-entropy of logits `[N, C]` against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  if (tf.getBackend() === "webgpu") return crossEntropyWithGrad(logits, labels);
  const logp = tf.logSoftmax(logits);
  const onehot = tf.oneHot(tf.tensor1d(labels, "int32"), logits.shape[1]);
  return logp.mul(onehot).sum().neg().div(labels.length) as tf.Scalar;
}

/** Mean of the hidden states over each row's non-pad positions: `[B, D]` sentence vectors. */
export function meanPool(hidden: tf.Tensor3D, batch: HostBatch, pad: number): tf.Tensor2D {
  const keep = tf.tensor3d(Float32Array.from(batch.ids, (v) => (v === pad ? 0 : 1)), [batch.B, batch.T, 1]);
  return hidden.mul(keep).sum(1).div(keep.sum(1)) as tf.Tensor2D;
}

/**
 * Elementwise max of the hidden states over each row's non-pad positions: `[B, D]`. Pad
 * positions are pushed 1e9 below before the max, so they never win and get no gradient.
 */
export function maxPool(hidden: tf.Tensor3D, batch: HostBatch, pad: number): tf.Tensor2D {
  const below = tf.tensor3d(Float32Array.from(batch.ids, (v) => (v === pad ? -1e9 : 0)), [
    batch.B,
    batch.T,
    1,
  ]);
  return hidden.add(below).max(1) as tf.Tensor2D;
}

/**
 * Symmetric InfoNCE between paired sentence vectors `a[i]` <-> `b[i]` with in-batch
 * negatives (InfoXLM's cross-lingual contrast, without its momentum queue): mean over both
 * directions of the cross-entropy of cosine similarity / `temperature` against the diagonal.
 */
export function pairContrast(a: tf.Tensor2D, b: tf.Tensor2D, temperature: number): tf.Scalar {
  const n = a.shape[0];
  const unit = (x: tf.Tensor2D) => x.div(x.square().sum(-1, true).add(1e-12).sqrt()) as tf.Tensor2D;
  const sim = tf.matMul(unit(a), unit(b), false, true).div(temperature) as tf.Tensor2D;
  const diag = Int32Array.from({ length: n }, (_, i) => i);
  return crossEntropy(sim, diag).add(crossEntropy(sim.transpose() as tf.Tensor2D, diag)).div(2) as tf.Scalar;
}

/** Encoder layer a parameter belongs to: -1 embeddings, 0..L-1 blocks, L heads. */
export function layerOf(name: string, numLayers: number): number {
  const m = /encoder\.layer\.(\d+)\./.exec(name);
  if (m) return Number(m[1]);
  if (name.startsWith("roberta.embeddings.")) return -1;
  return numLayers;
}
