/**
 * Runs an exported classifier with onnxruntime-web over a shard, and scores predictions.
 * @module
 */
import * as ort from "onnxruntime-web";
import { batchRows, type Shard } from "../data/shards.ts";

/** Creates a session on the wasm EP with one thread per core. */
export async function session(
  path: string,
  threads = navigator.hardwareConcurrency,
): Promise<ort.InferenceSession> {
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  return await ort.InferenceSession.create(await Deno.readFile(path), { executionProviders: ["wasm"] });
}

/**
 * Predicted label ids for the given rows of a shard (batched, each batch cut to its longest row).
 *
 * @example
 * ```ts
 * const preds = await predict(sess, test, [0, 1, 2]);
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

/** Accuracy and macro-F1 (over labels present in gold or predictions). */
export function scores(gold: ArrayLike<number>, pred: ArrayLike<number>): { accuracy: number; f1: number } {
  const n = gold.length;
  if (n === 0) return { accuracy: 0, f1: 0 };
  let correct = 0;
  const labels = new Set<number>();
  for (let i = 0; i < n; i++) {
    if (gold[i] === pred[i]) correct++;
    labels.add(gold[i]);
    labels.add(pred[i]);
  }
  let f1sum = 0;
  for (const c of labels) {
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < n; i++) {
      if (pred[i] === c && gold[i] === c) tp++;
      else if (pred[i] === c) fp++;
      else if (gold[i] === c) fn++;
    }
    f1sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return { accuracy: correct / n, f1: f1sum / labels.size };
}
