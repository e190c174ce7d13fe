/**
 * Runs an exported classifier with onnxruntime-web over a shard, on the WebGPU execution
 * provider (`onnxruntime-web/webgpu`) or the wasm one (the package root). Both run one
 * thread in Deno: the WebGPU build fetches its threaded glue from a `blob:` URL Deno
 * refuses, and the wasm build with more threads starts no worker and spins the main thread
 * forever. Parallelism comes from running several processes.
 * @module
 */
import * as ortWasm from "onnxruntime-web";
import { batchRows, type Shard } from "../data/shards.ts";
import type { HostBatch } from "../model/encoder.ts";
import { explainProvider, type Provider, type ProviderChoice } from "../platform/adapter.ts";
import { throwIfDeviceError, watchDevice } from "../model/device_guard.ts";

/** An open session with the onnxruntime-web build that created it (tensors must come from the same build). */
export interface Session {
  session: ortWasm.InferenceSession;
  ort: typeof ortWasm;
  provider: Provider;
  /** Why this provider: the request, or for `auto` the adapter that decided it. */
  reason: string;
}

/**
 * Opens a one-thread session on the provider `choice` resolves to: `auto` takes WebGPU only
 * on a hardware adapter (the same rule as training's backend).
 *
 * @example
 * ```ts ignore
 * const sess = await session("model.onnx", "auto"); // sess.provider: "wasm" on llvmpipe
 * ```
 */
export async function session(path: string, choice: ProviderChoice = "auto"): Promise<Session> {
  const { choice: provider, reason } = await explainProvider(choice);
  const ort = provider === "webgpu" ? await import("onnxruntime-web/webgpu") : ortWasm;
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const bytes = await Deno.readFile(path);
  const s = await ort.InferenceSession.create(bytes, { executionProviders: [provider], logSeverityLevel: 3 });
  // ORT's WebGPU errors are uncaptured events on its own device, as tfjs's are: same guard.
  if (provider === "webgpu") watchDevice(await (ort.env.webgpu.device as Promise<unknown>) as GPUDevice);
  return { session: s, ort, provider, reason };
}

/** The outputs of one batch: pooled sentence vectors, and for a classifier the head's input and logits. */
export interface BatchOutput {
  pooled: Float32Array;
  features?: Float32Array;
  logits?: Float32Array;
}

/**
 * Runs one batch of token ids (`pad` marks padding) through the model.
 *
 * @example
 * ```ts ignore
 * const { pooled, logits } = await runBatch(sess, { ids: Int32Array.from([0, 5, 2]), B: 1, T: 3 }, 1);
 * ```
 */
export async function runBatch(sess: Session, b: HostBatch, pad: number): Promise<BatchOutput> {
  const ids = BigInt64Array.from(b.ids, (v) => BigInt(v));
  const mask = BigInt64Array.from(b.ids, (v) => (v === pad ? 0n : 1n));
  const r = await sess.session.run({
    input_ids: new sess.ort.Tensor("int64", ids, [b.B, b.T]),
    attention_mask: new sess.ort.Tensor("int64", mask, [b.B, b.T]),
  });
  if (sess.provider === "webgpu") throwIfDeviceError();
  return {
    pooled: r.pooled.data as Float32Array,
    features: r.features?.data as Float32Array | undefined,
    logits: r.logits?.data as Float32Array | undefined,
  };
}

/**
 * Classifier logits `[B, C]` (row-major) for a batch of token ids; `pad` marks padding.
 *
 * @example
 * ```ts ignore
 * const l = await logits(sess, { ids: Int32Array.from([0, 5, 2]), B: 1, T: 3 }, 1);
 * ```
 */
export async function logits(sess: Session, b: HostBatch, pad: number): Promise<Float32Array> {
  const out = await runBatch(sess, b, pad);
  if (!out.logits) throw new Error("the model has no classifier head (no 'logits' output)");
  return out.logits;
}

/** What one pass of the model gives for some rows of a shard. */
export interface Inference {
  /** Predicted label per row (empty for a bare encoder). */
  labels: Int32Array;
  /** Sentence vectors, row after row (`rows.length` x hidden). */
  pooled: Float32Array;
  /** What the head read, row after row (empty for a bare encoder or an export without it). */
  features: Float32Array;
  hidden: number;
}

function argmaxRows(l: Float32Array, B: number): Int32Array {
  const C = l.length / B;
  return Int32Array.from({ length: B }, (_, k) => {
    let best = 0;
    for (let c = 1; c < C; c++) if (l[k * C + c] > l[k * C + best]) best = c;
    return best;
  });
}

/**
 * Runs the model over the given rows of a shard (batched, each batch cut to its longest row,
 * rows sorted by length to waste little on padding): predicted labels, pooled vectors and
 * the head's input.
 *
 * @example
 * ```ts ignore
 * const { labels, pooled } = await infer(await session("model.onnx"), test, [0, 1, 2]);
 * ```
 */
export async function infer(
  sess: Session,
  s: Shard,
  rows: number[],
  batchSize = 64,
  progress?: (fraction: number) => void,
): Promise<Inference> {
  const order = rows.map((r, i) => [r, i]).sort((a, b) => s.lengths[a[0]] - s.lengths[b[0]]);
  const labels = new Int32Array(sess.session.outputNames.includes("logits") ? rows.length : 0);
  const hasFeatures = sess.session.outputNames.includes("features");
  let pooled = new Float32Array(0), features = new Float32Array(0), hidden = 0;
  for (let i = 0; i < order.length; i += batchSize) {
    const chunk = order.slice(i, i + batchSize);
    const b = batchRows(s, chunk.map(([r]) => r));
    const out = await runBatch(sess, b, s.index.pad_id);
    progress?.((i + chunk.length) / order.length);
    if (hidden === 0) {
      hidden = out.pooled.length / b.B;
      pooled = new Float32Array(rows.length * hidden);
      if (hasFeatures) features = new Float32Array(rows.length * hidden);
    }
    chunk.forEach(([, at], k) => {
      pooled.set(out.pooled.subarray(k * hidden, (k + 1) * hidden), at * hidden);
      if (out.features) features.set(out.features.subarray(k * hidden, (k + 1) * hidden), at * hidden);
    });
    if (out.logits && labels.length > 0) {
      const best = argmaxRows(out.logits, b.B);
      chunk.forEach(([, at], k) => labels[at] = best[k]);
    }
  }
  return { labels, pooled, features, hidden };
}

/**
 * Predicted labels from the head alone (an export's `head.onnx`) for rows of features
 * (`n` x hidden, row-major), such as features moved by language centring.
 *
 * @example
 * ```ts ignore
 * const labels = await headLabels(await session("head.onnx"), centred, n, 128);
 * ```
 */
export async function headLabels(
  head: Session,
  features: Float32Array,
  n: number,
  d: number,
): Promise<Int32Array> {
  if (n === 0) return new Int32Array(0);
  const r = await head.session.run({ features: new head.ort.Tensor("float32", features, [n, d]) });
  if (head.provider === "webgpu") throwIfDeviceError();
  return argmaxRows(r.logits.data as Float32Array, n);
}
