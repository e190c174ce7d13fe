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

const WORKGROUP = 256;
const MAX_GROUPS_X = 65535;

/** WGSL source of the fused kernel. */
export const FUSED_ADAMW_WGSL = /* wgsl */ `
${PCG_WGSL}
${KEEP_WGSL}
struct Params {
  key : u32, divisor : u32, threshold : u32, scale : f32,
  lr : f32, beta1 : f32, beta2 : f32, eps : f32,
  wd : f32, bc1 : f32, bc2 : f32, n : u32,
  mode : u32, stride : u32,
};
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

function modeCode(mode: MaskMode): number {
  return mode === "none" ? 0 : mode === "gradient" ? 1 : 2;
}

/**
 * Runs the fused update in place on WebGPU. `w`, `m`, `v` must be variables this code owns
 * (not sharing buffers with other tensors); `clip` is a 1-element global-norm clip scale.
 *
 * @example
 * ```ts
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
  const mask = s.mask ?? { key: 0, divisor: 1, threshold: 0, scale: 1 };
  const tensors = [w, m, v, g, clip];
  // deno-lint-ignore no-explicit-any
  const be = backend as any;
  for (const t of tensors) be.uploadToGPU(t.dataId);
  const uniform = be.makeUniforms([
    { type: "uint32", data: [mask.key >>> 0] },
    { type: "uint32", data: [mask.divisor >>> 0] },
    { type: "uint32", data: [mask.threshold >>> 0] },
    { type: "float32", data: [mask.scale] },
    { type: "float32", data: [s.lr] },
    { type: "float32", data: [s.beta1] },
    { type: "float32", data: [s.beta2] },
    { type: "float32", data: [s.eps] },
    { type: "float32", data: [s.weightDecay] },
    { type: "float32", data: [s.bc1] },
    { type: "float32", data: [s.bc2] },
    { type: "uint32", data: [n] },
    { type: "uint32", data: [modeCode(s.mode)] },
    { type: "uint32", data: [gx * WORKGROUP] },
  ]);
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [...tensors.map((t, i) => ({ binding: i, resource: be.tensorToBinding(t) })), {
      binding: 5,
      resource: uniform,
    }],
  });
  be.ensureCommandEncoderReady();
  if (!be.computePassEncoder) be.computePassEncoder = be.commandEncoder.beginComputePass({});
  be.computePassEncoder.setPipeline(pipeline);
  be.computePassEncoder.setBindGroup(0, bindGroup);
  be.computePassEncoder.dispatchWorkgroups(gx, gy, 1);
  be.dispatchCountInPass++;
  for (const t of tensors) be.commandQueueOwnedIds.add(t.dataId);
  // The buffers changed under tfjs: drop any CPU copy it cached when they were last read.
  for (const t of [w, m, v]) be.tensorMap.get(t.dataId).values = null;
  if (tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") as number <= be.dispatchCountInPass) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
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
