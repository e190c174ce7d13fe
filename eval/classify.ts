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

/**
 * Predicted label ids for the given rows of a shard (batched, each batch cut to its longest row).
 *
 * @example
 * ```ts
 * const preds = await predict(await session("model.onnx"), test, [0, 1, 2]);
 * ```
 */
export async function predict(
  sess: ort.InferenceSession,
  s: Shard,
  rows: number[],
  batchSize = 64,
): Promise<Int32Array> {
  const order = [...rows].sort((a, b) => s.lengths[a] - s.lengths[b]);
  const out = new Map<number, number>();
  for (let i = 0; i < order.length; i += batchSize) {
    const chunk = order.slice(i, i + batchSize);
    const b = batchRows(s, chunk);
    const ids = BigInt64Array.from(b.ids, (v) => BigInt(v));
    const mask = BigInt64Array.from(b.ids, (v) => (v === s.index.pad_id ? 0n : 1n));
    const r = await sess.run({
      input_ids: new ort.Tensor("int64", ids, [b.B, b.T]),
      attention_mask: new ort.Tensor("int64", mask, [b.B, b.T]),
    });
    const logits = r.logits.data as Float32Array;
    const C = logits.length / b.B;
    chunk.forEach((row, k) => {
      let best = 0;
      for (let c = 1; c < C; c++) if (logits[k * C + c] > logits[k * C + best]) best = c;
      out.set(row, best);
    });
  }
  return Int32Array.from(rows, (r) => out.get(r)!);
}
