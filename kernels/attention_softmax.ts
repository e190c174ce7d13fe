/**
 * `softmax(scores * scale + keyMask)` over the last axis on WebGPU, one workgroup per row,
 * with its gradient `scale * y * (dy - sum(dy * y))` as one kernel too. From tfjs ops the
 * scale, the mask and the softmax are three dispatches forward and five backward per layer.
 * The twin is `tf.softmax(scores.mul(scale).add(keyMask))`.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import { rowWorkgroup } from "./layer_norm.ts";

const GROUP_WGSL = /* wgsl */ `
var<workgroup> red : array<f32, WG>;
fn groupMax(v : f32, tid : i32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2; s > 0; s = s >> 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn groupSum(v : f32, tid : i32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2; s > 0; s = s >> 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/**
 * Forward (inputs scores and the key mask) or backward (inputs y and dy) over `rows` rows of
 * `cols`. Rows past the end (a dispatch tfjs reshaped) compute on row 0 and write nothing, so
 * that every thread reaches every barrier.
 */
class AttentionSoftmaxProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = "rows : i32, cols : i32, rowsPerMask : i32, scale : f32,";

  constructor(shape: number[], readonly grad: boolean) {
    this.outputShape = shape;
    this.variableNames = grad ? ["Y", "Dy"] : ["S", "Mask"];
    this.shaderKey = grad ? "graddropAttentionSoftmaxGrad" : "graddropAttentionSoftmax";
    this.dispatchLayout = webgpu_util.flatDispatchLayout(shape);
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    this.dispatch = [rows, 1, 1];
    this.workgroupSize = [rowWorkgroup(shape[shape.length - 1]), 1, 1];
  }

  getUserCode(): string {
    const body = this.grad
      ? `
  var d = 0.0;
  for (var c = tid; c < T; c += WG) { d += Dy[base + c] * Y[base + c]; }
  let dot = groupSum(d, tid);
  if (live) {
    for (var c = tid; c < T; c += WG) {
      setOutputAtIndex(base + c, uniforms.scale * Y[base + c] * (Dy[base + c] - dot));
    }
  }`
      : `
  let m = (row / uniforms.rowsPerMask) * T;
  var mx = -3.402823e+38;
  for (var c = tid; c < T; c += WG) { mx = max(mx, S[base + c] * uniforms.scale + Mask[m + c]); }
  let rowMax = groupMax(mx, tid);
  var sum = 0.0;
  for (var c = tid; c < T; c += WG) { sum += exp(S[base + c] * uniforms.scale + Mask[m + c] - rowMax); }
  let total = groupSum(sum, tid);
  if (live) {
    for (var c = tid; c < T; c += WG) {
      setOutputAtIndex(base + c, exp(S[base + c] * uniforms.scale + Mask[m + c] - rowMax) / total);
    }
  }`;
    return `
const WG = ${this.workgroupSize[0]};
${GROUP_WGSL}
fn main(index : i32) {
  let tid = i32(localId.x);
  let T = uniforms.cols;
  let live = index / WG < uniforms.rows;
  let row = select(0, index / WG, live);
  let base = row * T;
  ${body}
}`;
  }
}

function run(p: AttentionSoftmaxProgram, inputs: tf.Tensor[], u: number[], scale: number): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  const uniforms = [...u.map((v) => ({ type: "int32", data: [v] })), { type: "float32", data: [scale] }];
  return tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(p, inputs, "float32", uniforms));
}

/**
 * Attention probabilities from raw scores `[B, H, Tq, Tk]`, a scale and an additive key mask
 * `[B, 1, 1, Tk]`, on WebGPU; the gradient flows to `scores` only.
 *
 * @example
 * ```ts ignore
 * const probs = attentionSoftmax(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh), keyMask);
 * ```
 */
export function attentionSoftmax(scores: tf.Tensor4D, scale: number, keyMask: tf.Tensor): tf.Tensor4D {
  const [B, H, Tq, Tk] = scores.shape;
  const rows = B * H * Tq;
  const u = [rows, Tk, H * Tq];
  const f = tf.customGrad((...args) => {
    const s = args[0] as tf.Tensor;
    const y = run(new AttentionSoftmaxProgram(s.shape, false), [s, keyMask], u, scale);
    (args[1] as unknown as (ts: tf.Tensor[]) => void)([y]);
    return {
      value: y,
      gradFunc: (dy, [ys]) =>
        run(new AttentionSoftmaxProgram(ys.shape, true), [ys, dy as tf.Tensor], u, scale),
    };
  });
  return f(scores) as tf.Tensor4D;
}
