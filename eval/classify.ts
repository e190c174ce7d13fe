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
  return { session: s, ort, provider, reason };
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
  const ids = BigInt64Array.from(b.ids, (v) => BigInt(v));
  const mask = BigInt64Array.from(b.ids, (v) => (v === pad ? 0n : 1n));
  const r = await sess.session.run({
    input_ids: new sess.ort.Tensor("int64", ids, [b.B, b.T]),
    attention_mask: new sess.ort.Tensor("int64", mask, [b.B, b.T]),
  });
  return r.logits.data as Float32Array;
}

/**
 * Predicted label ids for the given rows of a shard (batched, each batch cut to its longest row).
 *
 * @example
 * ```ts ignore
 * const preds = await predict(await session("model.onnx"), test, [0, 1, 2]);
 * ```
 */
export async function predict(
  sess: Session,
  s: Shard,
  rows: number[],
  batchSize = 64,
): Promise<Int32Array> {
  const order = [...rows].sort((a, b) => s.lengths[a] - s.lengths[b]);
  const out = new Map<number, number>();
  for (let i = 0; i < order.length; i += batchSize) {
    const chunk = order.slice(i, i + batchSize);
    const b = batchRows(s, chunk);
    const l = await logits(sess, b, s.index.pad_id);
    const C = l.length / b.B;
    chunk.forEach((row, k) => {
      let best = 0;
      for (let c = 1; c < C; c++) if (l[k * C + c] > l[k * C + best]) best = c;
      out.set(row, best);
    });
  }
  return Int32Array.from(rows, (r) => out.get(r)!);
}
