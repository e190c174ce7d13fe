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
/** Most tensors one dispatch updates: 4 bindings each plus the clip scale, within 32 storage buffers. */
export const MAX_TENSORS_PER_DISPATCH = 7;

/** A dispatch's view of one tensor's step: the step, its mask, size and first workgroup. */
interface Item {
  s: AdamWStep;
  mask: KernelMask;
  n: number;
  start: number;
}

const FIELDS: UniformField<Item>[] = [
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
  { name: "start", type: "u32", value: (d) => d.start },
];

/** Tensor `k`'s fields, suffixed with `k`. */
const fieldsOf = (k: number): UniformField<Item>[] => FIELDS.map((f) => ({ ...f, name: `${f.name}${k}` }));

/**
 * WGSL of the fused kernel over `count` tensors: workgroup `w` updates a block of the tensor
 * whose range of workgroups holds it (bindings W, M, V, G per tensor, then the clip scale).
 */
function fusedAdamWWgsl(count: number): string {
  const ks = Array.from({ length: count }, (_, k) => k);
  const bindings = ks.map((k) => `
@group(0) @binding(${4 * k}) var<storage, read_write> W${k} : array<f32>;
@group(0) @binding(${4 * k + 1}) var<storage, read_write> M${k} : array<f32>;
@group(0) @binding(${4 * k + 2}) var<storage, read_write> V${k} : array<f32>;
@group(0) @binding(${4 * k + 3}) var<storage, read> G${k} : array<f32>;`).join("");
  const branch = (k: number) => `
  ${k ? "else " : ""}if (${k + 1 < count ? `w < u.start${k + 1}` : "true"}) {
    let i = (w - u.start${k}) * ${WORKGROUP}u + lid;
    if (i >= u.n${k}) { return; }
    var g = G${k}[i] * C[0];
    if (u.mode${k} != 0u) {
      if (!kept(u.key${k}, i / u.divisor${k}, u.threshold${k})) {
        if (u.mode${k} == 2u) { return; }
        g = 0.0;
      }
      g = g * u.scale${k};
    }
    let m = u.beta1${k} * M${k}[i] + (1.0 - u.beta1${k}) * g;
    let v = u.beta2${k} * V${k}[i] + (1.0 - u.beta2${k}) * g * g;
    M${k}[i] = m;
    V${k}[i] = v;
    let wi = W${k}[i];
    W${k}[i] = wi - u.lr${k} * ((m / u.bc1${k}) / (sqrt(v / u.bc2${k}) + u.eps${k}) + u.wd${k} * wi);
  }`;
  return `
${PCG_WGSL}
${KEEP_WGSL}
struct Params { ${ks.map((k) => wgslFields(fieldsOf(k))).join(" ")} stride : u32, };
${bindings}
@group(0) @binding(${4 * count}) var<storage, read> C : array<f32>;
@group(0) @binding(${4 * count + 1}) var<uniform> u : Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let w = wg.x + wg.y * u.stride;
  ${ks.map(branch).join("")}
}`;
}

const pipelines = new WeakMap<GPUDevice, Map<number, GPUComputePipeline>>();

function pipelineFor(device: GPUDevice, count: number): GPUComputePipeline {
  let byCount = pipelines.get(device);
  if (!byCount) pipelines.set(device, byCount = new Map());
  let p = byCount.get(count);
  if (!p) {
    p = device.createComputePipeline({
      label: "FusedAdamW",
      layout: "auto",
      compute: {
        module: device.createShaderModule({ code: fusedAdamWWgsl(count), label: `fusedAdamW${count}` }),
        entryPoint: "main",
      },
    });
    byCount.set(count, p);
  }
  return p;
}

/** One tensor's update for {@link fusedAdamWMany}. */
export interface FusedUpdate {
  w: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  g: tf.Tensor;
  s: AdamWStep;
}

/**
 * How many tensors one dispatch may update on `device`: as many as its storage-buffer limit
 * binds (tfjs's default device allows 8, so one), at most {@link MAX_TENSORS_PER_DISPATCH}.
 */
export function tensorsPerDispatch(device: GPUDevice): number {
  return Math.max(
    1,
    Math.min(MAX_TENSORS_PER_DISPATCH, Math.floor((device.limits.maxStorageBuffersPerShaderStage - 1) / 4)),
  );
}

/**
 * Runs the fused update in place on WebGPU for several tensors, as many per dispatch as the
 * device binds. `w`, `m`, `v` must be variables this code owns (not sharing buffers with other
 * tensors); `clip` holds the global-norm clip scale in element 0.
 *
 * @example
 * ```ts ignore
 * fusedAdamWMany([{ w, m, v, g, s: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, bc1, bc2, mode: "none" } }], clip);
 * ```
 */
export function fusedAdamWMany(items: FusedUpdate[], clip: tf.Tensor): void {
  const backend = tf.backend() as WebGPUBackend;
  const per = tensorsPerDispatch(backend.device);
  for (let i = 0; i < items.length; i += per) {
    const group = items.slice(i, i + per);
    const views: Item[] = [];
    let start = 0;
    for (const it of group) {
      views.push({ s: it.s, mask: kernelMask(it.s), n: it.w.size, start });
      start += Math.ceil(it.w.size / WORKGROUP);
    }
    const gx = Math.min(start, MAX_GROUPS_X);
    recordDispatch(
      backend,
      pipelineFor(backend.device, group.length),
      [...group.flatMap((it) => [it.w, it.m, it.v, it.g]), clip],
      group.flatMap((it) => [it.w, it.m, it.v]),
      [
        ...views.flatMap((d, k) => uniformData(fieldsOf(k), d)),
        { type: "uint32", data: [gx] },
      ],
      [gx, Math.ceil(start / gx)],
    );
  }
}

/**
 * The fused update of one tensor ({@link fusedAdamWMany} with one item).
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
  fusedAdamWMany([{ w, m, v, g, s }], clip);
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
