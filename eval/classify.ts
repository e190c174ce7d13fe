/**
 * Runs an exported classifier with onnxruntime-web's wasm execution provider over a shard.
 * (The webgpu build of onnxruntime-web 1.30 imports its glue from a blob: URL, which Deno's
 * module loader refuses, so evaluation stays on wasm.)
 * @module
 */
import * as ort from "onnxruntime-web";
import { batchRows, type Shard } from "../data/shards.ts";

/**
 * Creates a wasm session (one thread).
 *
 * @example
 * ```ts
 * const sess = await session("model.onnx");
 * ```
 */
export async function session(path: string): Promise<ort.InferenceSession> {
  // One thread: under Deno, onnxruntime-web starts no worker threads, and asking for more
  // leaves the main thread spinning forever. Parallelism comes from running stages side by side.
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  return await ort.InferenceSession.create(await Deno.readFile(path), { executionProviders: ["wasm"] });
}

/** What one pass of the model gives for some rows of a shard. */
export interface Inference {
  /** Predicted label per row (empty for a bare encoder). */
  labels: Int32Array;
  /** Sentence vectors, row after row (`rows.length` x hidden). */
  pooled: Float32Array;
  hidden: number;
}

/**
 * Runs the model over the given rows of a shard (batched, each batch cut to its longest row,
 * rows sorted by length to waste little on padding): predicted labels and pooled vectors.
 *
 * @example
 * ```ts ignore
 * const { labels, pooled } = await infer(await session("model.onnx"), test, [0, 1, 2]);
 * ```
 */
export async function infer(
  sess: ort.InferenceSession,
  s: Shard,
  rows: number[],
  batchSize = 64,
): Promise<Inference> {
  const order = rows.map((r, i) => [r, i]).sort((a, b) => s.lengths[a[0]] - s.lengths[b[0]]);
  const labels = new Int32Array(sess.outputNames.includes("logits") ? rows.length : 0);
  let pooled = new Float32Array(0), hidden = 0;
  for (let i = 0; i < order.length; i += batchSize) {
    const chunk = order.slice(i, i + batchSize);
    const b = batchRows(s, chunk.map(([r]) => r));
    const ids = BigInt64Array.from(b.ids, (v) => BigInt(v));
    const mask = BigInt64Array.from(b.ids, (v) => (v === s.index.pad_id ? 0n : 1n));
    const out = await sess.run({
      input_ids: new ort.Tensor("int64", ids, [b.B, b.T]),
      attention_mask: new ort.Tensor("int64", mask, [b.B, b.T]),
    });
    const p = out.pooled.data as Float32Array;
    if (hidden === 0) {
      hidden = p.length / b.B;
      pooled = new Float32Array(rows.length * hidden);
    }
    chunk.forEach(([, at], k) => pooled.set(p.subarray(k * hidden, (k + 1) * hidden), at * hidden));
    if (labels.length > 0) {
      const logits = out.logits.data as Float32Array;
      const C = logits.length / b.B;
      chunk.forEach(([, at], k) => {
        let best = 0;
        for (let c = 1; c < C; c++) if (logits[k * C + c] > logits[k * C + best]) best = c;
        labels[at] = best;
      });
    }
  }
  return { labels, pooled, hidden };
}
