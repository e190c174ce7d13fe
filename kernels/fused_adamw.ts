/**
 * Fused GradDrop + AdamW: one WGSL pass reads gradient, moments and weights, applies the
 * clip scale and the mask, and writes moments and weights in place. tfjs programs have one
 * output, so this kernel records its own dispatch into the backend's command stream (in
 * order with tfjs's own work) with read_write bindings on the parameter's buffers.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { KEEP_WGSL, kept, PCG_WGSL } from "./rng.ts";
import type { MaskSpec } from "./mask_spec.ts";
import { uniformData, type UniformField, wgslFields } from "./uniforms.ts";
import { recordDispatch } from "./tfjs_webgpu_internals.ts";

/** How the mask acts: not at all, on the gradient (moments carry on), or on the whole update. */
export type MaskMode = "none" | "gradient" | "update";

/** Hyper-parameters of one AdamW step for one tensor. */
export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Bias corrections 1 - beta^t. */
  bc1: number;
  bc2: number;
  mode: MaskMode;
  mask?: MaskSpec;
}

/** The mask as both fused kernels (WGSL and wasm) take it: `mode` 0 none, 1 gradient, 2 update. */
export interface KernelMask {
  mode: number;
  key: number;
  divisor: number;
  threshold: number;
  scale: number;
}

/**
 * What the kernels apply for step `s`: no mask (mode 0) when the step has none or its mode is
 * `none`, as {@link referenceAdamW} does.
 *
 * @example
 * ```ts
 * import { kernelMask } from "./fused_adamw.ts";
 * const s = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, bc1: 0.1, bc2: 0.001 };
 * if (kernelMask({ ...s, mode: "gradient" }).mode !== 0) throw new Error("no mask, no masking");
 * ```
 */
export function kernelMask(s: AdamWStep): KernelMask {
  if (!s.mask || s.mode === "none") return { mode: 0, key: 0, divisor: 1, threshold: 0, scale: 1 };
  const { key, divisor, threshold, scale } = s.mask;
  return { mode: s.mode === "gradient" ? 1 : 2, key, divisor, threshold, scale };
}

const WORKGROUP = 256;
const MAX_GROUPS_X = 65535;

/** A dispatch's view of one step: the step, its mask, the size and the row stride. */
interface Dispatch {
  s: AdamWStep;
  mask: KernelMask;
  n: number;
  stride: number;
}

const UNIFORMS: UniformField<Dispatch>[] = [
  { name: "key", type: "u32", value: (d) => d.mask.key },
  { name: "divisor", type: "u32", value: (d) => d.mask.divisor },
  { name: "threshold", type: "u32", value: (d) => d.mask.threshold },
  { name: "scale", type: "f32", value: (d) => d.mask.scale },
  { name: "lr", type: "f32", value: (d) => d.s.lr },
  { name: "beta1", type: "f32", value: (d) => d.s.beta1 },
  { name: "beta2", type: "f32", value: (d) => d.s.beta2 },
  { name: "eps", type: "f32", value: (d) => d.s.eps },
  { name: "wd", type: "f32", value: (d) => d.s.weightDecay },
  { name: "bc1", type: "f32", value: (d) => d.s.bc1 },
  { name: "bc2", type: "f32", value: (d) => d.s.bc2 },
  { name: "n", type: "u32", value: (d) => d.n },
  { name: "mode", type: "u32", value: (d) => d.mask.mode },
  { name: "stride", type: "u32", value: (d) => d.stride },
];

/** WGSL source of the fused kernel. */
const FUSED_ADAMW_WGSL = /* wgsl */ `
${PCG_WGSL}
${KEEP_WGSL}
struct Params { ${wgslFields(UNIFORMS)} };
@group(0) @binding(0) var<storage, read_write> W : array<f32>;
@group(0) @binding(1) var<storage, read_write> M : array<f32>;
@group(0) @binding(2) var<storage, read_write> V : array<f32>;
@group(0) @binding(3) var<storage, read> G : array<f32>;
@group(0) @binding(4) var<storage, read> C : array<f32>;
@group(0) @binding(5) var<uniform> u : Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let i = gid.x + gid.y * u.stride;
  if (i >= u.n) { return; }
  var g = G[i] * C[0];
  if (u.mode != 0u) {
    let keep = kept(u.key, i / u.divisor, u.threshold);
    if (!keep) {
      if (u.mode == 2u) { return; }
      g = 0.0;
    }
    g = g * u.scale;
  }
  let m = u.beta1 * M[i] + (1.0 - u.beta1) * g;
  let v = u.beta2 * V[i] + (1.0 - u.beta2) * g * g;
  M[i] = m;
  V[i] = v;
  let w = W[i];
  W[i] = w - u.lr * ((m / u.bc1) / (sqrt(v / u.bc2) + u.eps) + u.wd * w);
}`;

const pipelines = new WeakMap<GPUDevice, GPUComputePipeline>();

/**
 * Runs the fused update in place on WebGPU. `w`, `m`, `v` must be variables this code owns
 * (not sharing buffers with other tensors); `clip` is a 1-element global-norm clip scale.
 *
 * @example
 * ```ts ignore
 * fusedAdamW(w, m, v, grad, clipScale, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, bc1, bc2, mode: "gradient", mask });
 * ```
 */
export function fusedAdamW(
  w: tf.Variable,
  m: tf.Variable,
  v: tf.Variable,
  g: tf.Tensor,
  clip: tf.Tensor,
  s: AdamWStep,
): void {
  const backend = tf.backend() as WebGPUBackend;
  const device = backend.device;
  let pipeline = pipelines.get(device);
  if (!pipeline) {
    pipeline = device.createComputePipeline({
      label: "FusedAdamW",
      layout: "auto",
      compute: {
        module: device.createShaderModule({ code: FUSED_ADAMW_WGSL, label: "fusedAdamW" }),
        entryPoint: "main",
      },
    });
    pipelines.set(device, pipeline);
  }
  const n = w.size;
  const groups = Math.ceil(n / WORKGROUP);
  const gx = Math.min(groups, MAX_GROUPS_X);
  const gy = Math.ceil(groups / gx);
  recordDispatch(
    backend,
    pipeline,
    [w, m, v, g, clip],
    [w, m, v],
    uniformData(UNIFORMS, { s, mask: kernelMask(s), n, stride: gx * WORKGROUP }),
    [gx, gy],
  );
}

/**
 * The reference: the same update on Float32Arrays, rounding to f32 where the shader does.
 * Mutates `w`, `m`, `v`.
 */
export function referenceAdamW(
  w: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  clip: number,
  s: AdamWStep,
): void {
  const f = Math.fround;
  const mask = s.mask;
  for (let i = 0; i < w.length; i++) {
    let gi = f(g[i] * clip);
    if (s.mode !== "none" && mask) {
      if (!kept(mask.key, Math.floor(i / mask.divisor), mask.threshold)) {
        if (s.mode === "update") continue;
        gi = 0;
      }
      gi = f(gi * mask.scale);
    }
    const mi = f(f(s.beta1 * m[i]) + f(f(1 - s.beta1) * gi));
    const vi = f(f(s.beta2 * v[i]) + f(f(f(1 - s.beta2) * gi) * gi));
    m[i] = mi;
    v[i] = vi;
    const upd = f(f(f(mi / s.bc1) / f(f(Math.sqrt(f(vi / s.bc2))) + s.eps)) + f(s.weightDecay * w[i]));
    w[i] = f(w[i] - f(s.lr * upd));
  }
}
