/**
 * What one fine-tuning instance needs in device memory, counted before it runs: parameters;
 * bytes of weights, gradients and AdamW's two moments (float32 each); and the activations
 * tfjs keeps for the backward pass at the micro-batch `B x T`. Inside `tf.variableGrads`
 * every op's output lives until the backward pass ends, so activations are the sum of the
 * outputs of `model/encoder.ts`'s forward ops, counted per op:
 *
 * - linear: matmul + bias add, 2 outputs of the output size (reshapes share memory);
 * - dropout (tfjs: random, add, floor, div, mul): 5 outputs of the input size;
 * - LayerNorm: sub, square, mul, mul, add: 5 x `BTD` (row statistics are `BT`, left out);
 * - attention: q, k, v linears (6 `BTD`) and their head transposes (3 `BTD`); scores matmul,
 *   scale, mask add and softmax (4 `BHTT`); dropout on the probabilities (5 `BHTT`);
 *   context matmul and transpose (2 `BTD`); output linear (2 `BTD`) and dropout (5 `BTD`);
 *   residual add (1 `BTD`) and LayerNorm (5 `BTD`);
 * - feed-forward: intermediate linear (2 `BTF`), GELU `x*0.5*(1+erf(x/sqrt2))` (5 `BTF`),
 *   output linear (2 `BTD`), dropout (5 `BTD`), residual (1 `BTD`), LayerNorm (5 `BTD`);
 * - per layer: 37 `BTD` + 9 `BHTT` + 7 `BTF` floats; embeddings: two gathers, two adds,
 *   LayerNorm and dropout, 13 `BTD`; the classifier reads `<s>` only (left out).
 *
 * tfjs's backward pass keeps the gradient of every one of those outputs until it ends, so the
 * plan counts the forward twice. Measured with `tf.profile` (tests/memory_plan_test.ts): the
 * forward's kernels allocate the per-op count within 2%; the peak of forward and backward is
 * 1.8x the forward (2.9x as `tf.memory` counts it, which counts a reshape's shared buffer again).
 * @module
 */
import type { EncoderConfig } from "../model/config.ts";
import { type Heads, paramShapes } from "../model/encoder.ts";

/** The memory a fine-tune needs and what it must fit. */
export interface MemoryPlan {
  parameters: number;
  batch: number;
  length: number;
  accumulate: number;
  bytes: { weights: number; gradients: number; adam_moments: number; activations: number; total: number };
  /** The largest single tensor (bytes) and which. The word embedding is split to fit a binding. */
  largest_tensor: { name: string; bytes: number };
  /** What the backend allows: total bytes (wasm's 4 GiB heap) and/or per-tensor binding bytes (WebGPU). */
  limit: { backend: string; total_bytes: number | null; binding_bytes: number | null; note: string };
  fits: boolean;
  /** Why not, in one line, when it does not fit. */
  problem?: string;
}

/** Floats the forward pass's ops output at `B x T` (see the module comment for the count). */
export function forwardFloats(cfg: EncoderConfig, B: number, T: number): number {
  const D = cfg.hidden_size, F = cfg.intermediate_size, H = cfg.num_attention_heads;
  return 13 * B * T * D + cfg.num_hidden_layers * (37 * B * T * D + 9 * B * H * T * T + 7 * B * T * F);
}

/** Floats of activations at the peak of a training step: the forward's outputs and their gradients. */
export function activationFloats(cfg: EncoderConfig, B: number, T: number): number {
  return 2 * forwardFloats(cfg, B, T);
}

/** tfjs-backend-wasm 4.22's memory: at most 65,536 pages of 64 KiB (its module declares it). */
export const WASM_HEAP_BYTES = 65536 * 65536;

/** Binding limits known per WebGPU adapter kind (PLATFORM.md): llvmpipe 128 MiB, NVIDIA 2 GiB - 1. */
export const WEBGPU_BINDING = { software: 134217728, hardware: 2147483647 };

const GB = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);

/**
 * The plan for a config, heads and micro-batch on a backend. `binding` is the WebGPU binding
 * limit when known (the software adapter's, or a hardware one's).
 *
 * @example
 * ```ts
 * import { memoryPlan } from "./memory_plan.ts";
 * import { namedConfig } from "../model/config.ts";
 * const p = memoryPlan(namedConfig("base", 250002), { mlm: false, numLabels: 7 }, 32, 128, 1, "wasm");
 * if (p.fits) throw new Error("XLM-R base does not fit tfjs-wasm's 4 GiB heap");
 * ```
 */
export function memoryPlan(
  cfg: EncoderConfig,
  heads: Heads,
  B: number,
  T: number,
  accumulate: number,
  backend: string,
  binding: number | null = null,
): MemoryPlan {
  const shapes = paramShapes(cfg, heads);
  const parameters = shapes.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
  const weights = 4 * parameters;
  const activations = 4 * activationFloats(cfg, B, T);
  const total = 4 * weights + activations;
  const D = cfg.hidden_size, F = cfg.intermediate_size, H = cfg.num_attention_heads;
  const candidates: [string, number][] = [
    ["attention scores", 4 * B * H * T * T],
    ["feed-forward activations", 4 * B * T * F],
    ["hidden states", 4 * B * T * D],
    ...shapes.filter(([n]) => !n.includes("word_embeddings")).map(([n, s]): [string, number] => [
      n,
      4 * s.reduce((x, y) => x * y, 1),
    ]),
  ];
  const [name, bytes] = candidates.reduce((a, b) => (b[1] > a[1] ? b : a));
  const plan: MemoryPlan = {
    parameters,
    batch: B,
    length: T,
    accumulate,
    bytes: { weights, gradients: weights, adam_moments: 2 * weights, activations, total },
    largest_tensor: { name, bytes },
    limit: backend === "wasm"
      ? { backend, total_bytes: WASM_HEAP_BYTES, binding_bytes: null, note: "tfjs-wasm heap (4 GiB)" }
      : backend === "webgpu"
      ? {
        backend,
        total_bytes: null,
        binding_bytes: binding,
        note:
          "WebGPU does not report device memory: the GPU needs the total; each tensor must fit one binding",
      }
      : { backend, total_bytes: null, binding_bytes: null, note: "host memory" },
    fits: true,
  };
  if (plan.limit.total_bytes !== null && total > plan.limit.total_bytes) {
    plan.fits = false;
    plan.problem = `needs ${GB(total)} (weights ${GB(weights)}, gradients ${GB(weights)}, AdamW ${
      GB(2 * weights)
    }, activations ${GB(activations)} at ${B}x${T}) but the ${plan.limit.note} holds ${
      GB(plan.limit.total_bytes)
    }`;
  } else if (plan.limit.binding_bytes !== null && bytes > plan.limit.binding_bytes) {
    plan.fits = false;
    plan.problem = `tensor ${name} needs ${GB(bytes)}, more than one WebGPU binding (${
      GB(plan.limit.binding_bytes)
    }): lower batch_size (accumulate keeps the effective batch) or max_length`;
  }
  return plan;
}

/** One line for `run --dry-run`. */
export function describePlan(p: MemoryPlan): string {
  const b = p.bytes;
  return `${(p.parameters / 1e6).toFixed(1)}M parameters; weights ${GB(b.weights)}, gradients ${
    GB(b.gradients)
  }, AdamW moments ${GB(b.adam_moments)}, activations ${GB(b.activations)} at ${p.batch}x${p.length}${
    p.accumulate > 1 ? ` (x${p.accumulate} accumulated)` : ""
  }; total ${GB(b.total)}; limit: ${
    p.limit.total_bytes !== null
      ? GB(p.limit.total_bytes)
      : p.limit.binding_bytes !== null
      ? `${GB(p.limit.binding_bytes)} per tensor (largest ${p.largest_tensor.name} ${
        GB(p.largest_tensor.bytes)
      })`
      : "unknown"
  } (${p.limit.note})${p.fits ? "" : " -- DOES NOT FIT"}`;
}
