/**
 * Two layout kernels for a software WebGPU adapter (llvmpipe), put in front of tfjs's `Sum` and
 * `Transpose` by `cpu_adapter.ts`. tfjs sums over leading axes by transposing first and then
 * reducing rows (two dispatches for every bias gradient), and transposes one element per
 * thread with the coordinates worked out each time. Here a column sum reads the rows in place,
 * and a permutation that keeps the last axis (attention's head split and merge) moves a vec4
 * per thread.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import { type KernelArgs as Args, reshapeInfo, type StandIn } from "./stand_in.ts";

/** Sums of the columns of `X` [rows, cols], four columns per thread. */
class ColumnSumProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = "graddropColumnSum";
  variableNames = ["X"];
  variableComponents = [4];
  outputComponent = 4;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(cols: number) {
    this.outputShape = [cols];
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [cols / 4], this.workgroupSize);
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  let cols4 = uniforms.xShape.y / 4;
  if (index >= cols4) { return; }
  var acc = vec4<f32>();
  for (var r = 0; r < uniforms.xShape.x; r++) { acc += X[r * cols4 + index]; }
  result[index] = acc;
}`;
  }
}

/** `X` [d0, d1, d2, d3] permuted by `perm` (which keeps axis 3), one vec4 per thread. */
class LastAxisTransposeProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames = ["X"];
  variableComponents = [4];
  outputComponent = 4;
  dispatchLayout = { x: [0, 1, 2, 3] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(shape: number[], readonly perm: number[]) {
    this.outputShape = perm.map((p) => shape[p]);
    this.shaderKey = `graddropLastAxisTranspose_${perm.join("")}`;
    const vec4s = tf.util.sizeFromShape(this.outputShape) / 4;
    this.dispatch = webgpu_util.computeDispatch({ x: [0] }, [vec4s], this.workgroupSize);
  }

  getUserCode(): string {
    const p = this.perm;
    return `
fn main(index : i32) {
  let o = uniforms.outShape;
  let c4 = o.w / 4;
  if (index >= o.x * o.y * o.z * c4) { return; }
  let c = index % c4;
  let o2 = (index / c4) % o.z;
  let o1 = (index / (c4 * o.z)) % o.y;
  let o0 = index / (c4 * o.z * o.y);
  var i = array<i32, 3>(0, 0, 0);
  i[${p[0]}] = o0; i[${p[1]}] = o1; i[${p[2]}] = o2;
  let x = uniforms.xShape;
  result[index] = X[((i[0] * x.y + i[1]) * x.z + i[2]) * (x.w / 4) + c];
}`;
  }
}

function sumTakes(args: Args): boolean {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype !== "float32" || x.shape.length < 2) return false;
  const axes = tf.util.parseAxisParam(args.attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
  const leading = axes.length === x.shape.length - 1 && axes.every((a, i) => a === i);
  return leading && x.shape[x.shape.length - 1] % 4 === 0;
}

function sumRun(args: Args): tf.TensorInfo {
  const backend = args.backend as WebGPUBackend;
  const x = args.inputs.x as tf.TensorInfo;
  const cols = x.shape[x.shape.length - 1];
  const x2 = reshapeInfo(backend, x, [tf.util.sizeFromShape(x.shape.slice(0, -1)), cols]);
  const sums = backend.runWebGPUProgram(new ColumnSumProgram(cols), [x2], "float32");
  backend.disposeData(x2.dataId);
  if (!args.attrs.keepDims) return sums;
  const out = reshapeInfo(backend, sums, [...x.shape.slice(0, -1).map(() => 1), cols]);
  backend.disposeData(sums.dataId);
  return out;
}

function transposeTakes(args: Args): boolean {
  const x = args.inputs.x as tf.TensorInfo;
  const perm = args.attrs.perm as number[];
  const r = x.shape.length;
  return x.dtype === "float32" && r >= 2 && r <= 4 && perm[r - 1] === r - 1 && x.shape[r - 1] % 4 === 0 &&
    perm.some((p, i) => p !== i);
}

function transposeRun(args: Args): tf.TensorInfo {
  const backend = args.backend as WebGPUBackend;
  const x = args.inputs.x as tf.TensorInfo;
  const perm = args.attrs.perm as number[];
  const pad = 4 - x.shape.length;
  const x4 = reshapeInfo(backend, x, [...Array(pad).fill(1), ...x.shape]);
  const perm4 = [...Array(pad).keys(), ...perm.map((p) => p + pad)];
  const out4 = backend.runWebGPUProgram(new LastAxisTransposeProgram(x4.shape, perm4), [x4], "float32");
  const out = reshapeInfo(backend, out4, perm.map((p) => x.shape[p]));
  for (const t of [x4, out4]) backend.disposeData(t.dataId);
  return out;
}

/** Sums over every axis but the last (bias gradients), for tfjs's `Sum`. */
export const columnSumStandIn: StandIn = { kernels: ["Sum"], takes: sumTakes, run: sumRun };

/** Permutations that keep the last axis, for tfjs's `Transpose`. */
export const lastAxisTransposeStandIn: StandIn = {
  kernels: ["Transpose"],
  takes: transposeTakes,
  run: transposeRun,
};
