/**
 * Size checks before allocation. tfjs-backend-webgpu binds every tensor as one whole buffer
 * and does not check the device's limits (an over-limit tensor computes as zeros), so the
 * tensors this project creates are checked here first, with a message saying what to do.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import type { EncoderConfig } from "./config.ts";

/** A tensor would exceed what the device can bind. */
export class BindingLimitError extends Error {
  override name = "BindingLimitError";
}

/**
 * The largest tensor, in bytes, the active tfjs backend can bind: the device's
 * `maxStorageBufferBindingSize` and `maxBufferSize` on WebGPU, unlimited elsewhere.
 *
 * @example
 * ```ts ignore
 * bindingLimit(); // 134217728 on llvmpipe, 2147483647 on NVIDIA, Infinity on wasm
 * ```
 */
export function bindingLimit(): number {
  if (tf.getBackend() !== "webgpu") return Infinity;
  const l = (tf.backend() as WebGPUBackend).device.limits;
  return Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize);
}

const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * Throws {@link BindingLimitError} when a float32 tensor of `shape` would not fit the
 * binding limit, naming the tensor, its bytes, the limit and the remedy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.throws(() => checkTensorSize("attention scores", [64, 16, 256, 256], "use a smaller batch", 134217728));
 * ```
 */
export function checkTensorSize(what: string, shape: number[], remedy: string, limit = bindingLimit()): void {
  const bytes = shape.reduce((a, b) => a * b, 4);
  if (bytes <= limit) return;
  throw new BindingLimitError(
    `tensor ${what} [${shape.join(", ")}] needs ${fmt(bytes)} bytes, more than the ${
      fmt(limit)
    } bytes this WebGPU device can bind (maxStorageBufferBindingSize/maxBufferSize; Mesa's software adapter allows 128 MiB, NVIDIA 2 GiB): ${remedy}`,
  );
}

const ACTIVATION_REMEDY =
  "use a smaller batch or sequence length, or a GPU (or backend wasm, which has no binding limit)";

/**
 * Checks the largest activations of a forward pass over a `[B, T]` batch: the embedding
 * lookup `[B, T, D]`, attention scores `[B, H, T, T]` and the feed-forward `[B, T, F]`.
 *
 * @example
 * ```ts ignore
 * checkActivations(cfg, 32, 128); // throws on llvmpipe when B*H*T*T*4 > 128 MiB
 * ```
 */
export function checkActivations(cfg: EncoderConfig, B: number, T: number, limit = bindingLimit()): void {
  if (limit === Infinity) return;
  checkTensorSize("word embedding lookup", [B, T, cfg.hidden_size], ACTIVATION_REMEDY, limit);
  checkTensorSize("attention scores", [B, cfg.num_attention_heads, T, T], ACTIVATION_REMEDY, limit);
  checkTensorSize("feed-forward activations", [B, T, cfg.intermediate_size], ACTIVATION_REMEDY, limit);
}

/** The remedy for a parameter (or its optimizer moment) that does not fit. */
export const PARAMETER_REMEDY =
  "only the word embedding is split into blocks automatically; use a smaller model, a GPU, or backend wasm";

/** The remedy for MLM logits that do not fit. */
export const MLM_REMEDY =
  "predict fewer masked positions per step (smaller batch, sequence or mask_prob), or use a GPU";
