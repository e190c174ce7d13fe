/**
 * LayerNorm over the last axis on WebGPU, with its own gradient: one workgroup per row
 * forward; backward, the rows' statistics once, `dx` one workgroup per row, and `dgamma`,
 * `dbeta` as partial sums over at most 64 chunks of rows, then totalled. The tfjs-ops
 * version takes about nine dispatches forward and twenty-five backward, and the gradient of
 * its `mean` uploads a full-size `ones()` every step; this takes one and five and uploads
 * nothing.
 * The twin is the tfjs-ops LayerNorm in `model/encoder.ts` (used on every other backend).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";

const WG = 256;

/** Threads per row on a software adapter: see {@link useSoftwareRowWorkgroups}. */
const SOFTWARE_WG = 8;
let software = false;

/**
 * Threads per row for a row of `cols`: about four columns each, 32 to 256, and 8 on a software
 * adapter. llvmpipe runs a workgroup's threads as coroutines and pays for every barrier per
 * thread, so a 256-thread workgroup on a 64- or 128-wide row was 2-4x slower there than tfjs's
 * ops; at the shipped model's shapes 8 threads a row (one SIMD group) beat 4, 16 and 32 in
 * `deno task bench --only step`. A GPU keeps 256 on XLM-R's 768.
 *
 * @example
 * ```ts
 * import { rowWorkgroup } from "./layer_norm.ts";
 * if (rowWorkgroup(128) !== 32 || rowWorkgroup(768) !== 256) throw new Error("row workgroups");
 * ```
 */
export function rowWorkgroup(cols: number): number {
  if (software) return SOFTWARE_WG;
  return Math.min(WG, Math.max(32, 2 ** Math.ceil(Math.log2(Math.ceil(cols / 4)))));
}

/**
 * Sizes the row kernels (LayerNorm, attention softmax) for a software adapter (`on`) or a GPU.
 *
 * @example
 * ```ts
 * import { rowWorkgroup, useSoftwareRowWorkgroups } from "./layer_norm.ts";
 * useSoftwareRowWorkgroups(true);
 * const onLlvmpipe = rowWorkgroup(768);
 * useSoftwareRowWorkgroups(false);
 * if (onLlvmpipe !== 8 || rowWorkgroup(768) !== 256) throw new Error("row workgroups");
 * ```
 */
export function useSoftwareRowWorkgroups(on: boolean): void {
  software = on;
}
/** Chunks of rows for the `dgamma`/`dbeta` partial sums: at most this many, of at least as many rows. */
const CHUNKS = 64;

/** Sum over the workgroup (`WG` threads); every thread gets the total. Uniform control flow only. */
const ROW_SUM_WGSL = /* wgsl */ `
var<workgroup> red : array<f32, WG>;
fn rowSum(v : f32, tid : i32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2; s > 0; s = s >> 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;

/**
 * Base of a one-workgroup-per-row program over `[rows, cols]`. Where `cols` is a multiple of 4
 * the row tensors are read and written as vec4 (`V`; `Stats` stays scalar): a quarter of the
 * loads, which llvmpipe makes lane by lane.
 */
abstract class RowProgram implements WebGPUProgram {
  outputShape: number[];
  /** Ends in the component count: tfjs keys its pipeline cache by shapes and names, not components. */
  abstract shaderKey: string;
  abstract variableNames: string[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = "cols : i32, eps : f32,";
  readonly components: number;
  /** A field, not a getter: tfjs assigns it. */
  outputComponent: number;

  constructor(outputShape: number[], rows: number, cols: number) {
    this.outputShape = outputShape;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(outputShape);
    this.dispatch = [rows, 1, 1];
    this.workgroupSize = [rowWorkgroup(cols), 1, 1];
    this.components = cols % 4 === 0 ? 4 : 1;
    this.outputComponent = this.components;
  }
  abstract getUserCode(): string;

  get variableComponents(): number[] {
    return this.variableNames.map((n) => (n === "Stats" ? 1 : this.components));
  }

  /** The shader's constants (`WG`, `C`), `V` sums (`hsum`), then `body`; `V` is the row type. */
  protected code(body: string): string {
    const v = this.components === 4 ? "vec4<f32>" : "f32";
    const sum = this.components === 4 ? "v.x + v.y + v.z + v.w" : "v";
    return `const WG = ${this.workgroupSize[0]};
const C = ${this.components};
fn hsum(v : ${v}) -> f32 { return ${sum}; }
${body}`;
  }
}

/** The mean and 1/sqrt(var + eps) of a row starting at `base` (in `V`s), from X. */
const STATS_WGSL = /* wgsl */ `
fn stats(base : i32, tid : i32) -> vec2<f32> {
  let D = uniforms.cols;
  var s = 0.0;
  for (var c = tid; c < D / C; c += WG) { s += hsum(X[base + c]); }
  let mean = rowSum(s, tid) / f32(D);
  var q = 0.0;
  for (var c = tid; c < D / C; c += WG) { let z = X[base + c] - mean; q += hsum(z * z); }
  return vec2<f32>(mean, inverseSqrt(rowSum(q, tid) / f32(D) + uniforms.eps));
}`;

/** `y = (x - mean) * rstd * gamma + beta`. */
class LayerNormProgram extends RowProgram {
  shaderKey = `graddropLayerNorm${this.components}`;
  variableNames = ["X", "Gamma", "Beta"];
  getUserCode(): string {
    return this.code(`
${ROW_SUM_WGSL}
${STATS_WGSL}
fn main(index : i32) {
  let tid = i32(localId.x);
  let base = (index / WG) * (uniforms.cols / C);
  let st = stats(base, tid);
  for (var c = tid; c < uniforms.cols / C; c += WG) {
    setOutputAtIndex(base + c, (X[base + c] - st.x) * st.y * Gamma[c] + Beta[c]);
  }
}`);
  }
}

/** Per row: `[mean, rstd]`, written by thread 0 of the row's workgroup. */
class RowStatsProgram extends RowProgram {
  shaderKey = `graddropLayerNormStats${this.components}`;
  variableNames = ["X"];
  override outputComponent = 1;
  getUserCode(): string {
    return this.code(`
${ROW_SUM_WGSL}
${STATS_WGSL}
fn main(index : i32) {
  let tid = i32(localId.x);
  let row = index / WG;
  let st = stats(row * (uniforms.cols / C), tid);
  if (tid == 0) {
    setOutputAtIndex(row * 2, st.x);
    setOutputAtIndex(row * 2 + 1, st.y);
  }
}`);
  }
}

/** `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))` with `g = dy * gamma`. */
class LayerNormInputGradProgram extends RowProgram {
  shaderKey = `graddropLayerNormDx${this.components}`;
  variableNames = ["X", "Dy", "Gamma", "Stats"];
  getUserCode(): string {
    return this.code(`
${ROW_SUM_WGSL}
fn main(index : i32) {
  let tid = i32(localId.x);
  let row = index / WG;
  let D = uniforms.cols;
  let base = row * (D / C);
  let mean = Stats[row * 2];
  let rstd = Stats[row * 2 + 1];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = tid; c < D / C; c += WG) {
    let g = Dy[base + c] * Gamma[c];
    sg += hsum(g);
    sgx += hsum(g * (X[base + c] - mean) * rstd);
  }
  let mg = rowSum(sg, tid) / f32(D);
  let mgx = rowSum(sgx, tid) / f32(D);
  for (var c = tid; c < D / C; c += WG) {
    let xhat = (X[base + c] - mean) * rstd;
    setOutputAtIndex(base + c, rstd * (Dy[base + c] * Gamma[c] - mg - xhat * mgx));
  }
}`);
  }
}

/**
 * Partial sums over chunks of rows: `out[0, k, c] = sum dy * xhat`, `out[1, k, c] = sum dy`
 * over the rows of chunk `k`. One thread per (chunk, column).
 */
class LayerNormParamGradProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = "graddropLayerNormDparams";
  variableNames = ["X", "Dy", "Stats"];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  uniforms = "rows : i32, cols : i32, chunks : i32, chunkRows : i32,";

  constructor(chunks: number, cols: number) {
    this.outputShape = [2, chunks, cols];
    this.dispatchLayout = webgpu_util.flatDispatchLayout([chunks * cols]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [chunks * cols], this.workgroupSize);
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  let D = uniforms.cols;
  if (index >= uniforms.chunks * D) { return; }
  let k = index / D;
  let c = index % D;
  let end = min(uniforms.rows, (k + 1) * uniforms.chunkRows);
  var sg = 0.0;
  var sb = 0.0;
  for (var r = k * uniforms.chunkRows; r < end; r++) {
    let dy = Dy[r * D + c];
    sg += dy * (X[r * D + c] - Stats[r * 2]) * Stats[r * 2 + 1];
    sb += dy;
  }
  setOutputAtIndex(index, sg);
  setOutputAtIndex(uniforms.chunks * D + index, sb);
}`;
  }
}

/** `out[c] = sum over k of Parts[which, k, c]`: the partials of one parameter summed. */
class ChunkTotalProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = "graddropLayerNormDparamsTotal";
  variableNames = ["Parts"];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  uniforms = "which : i32, chunks : i32,";
  size = true;

  constructor(cols: number) {
    this.outputShape = [cols];
    this.dispatchLayout = webgpu_util.flatDispatchLayout(this.outputShape);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, this.outputShape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index < uniforms.size) {
    let D = uniforms.size;
    var s = 0.0;
    for (var k = 0; k < uniforms.chunks; k++) { s += Parts[(uniforms.which * uniforms.chunks + k) * D + index]; }
    setOutputAtIndex(index, s);
  }
}`;
  }
}

function run(p: WebGPUProgram, inputs: tf.Tensor[], u: { type: string; data: number[] }[]): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  return tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(p, inputs, "float32", u));
}

/**
 * LayerNorm of `x` over its last axis with weight `gamma` and bias `beta`, on WebGPU, with
 * its gradient to all three.
 *
 * @example
 * ```ts ignore
 * const y = layerNormGpu(x, p.get("...LayerNorm.weight")!, p.get("...LayerNorm.bias")!, 1e-5);
 * ```
 */
export function layerNormGpu(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const D = x.shape[x.shape.length - 1];
  const N = x.size / D;
  const u = [{ type: "int32", data: [D] }, { type: "float32", data: [eps] }];
  const f = tf.customGrad((...args) => {
    const [xi, g, b] = args as tf.Tensor[];
    const save = args[3] as unknown as (ts: tf.Tensor[]) => void;
    // Saved, not closed over: tfjs disposes a custom op's intermediates before the backward pass.
    save([xi, g]);
    const y = run(new LayerNormProgram([N, D], N, D), [xi.reshape([N, D]), g, b], u).reshape(xi.shape);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, gs] = saved;
        const x2 = xs.reshape([N, D]);
        const dy2 = (dy as tf.Tensor).reshape([N, D]);
        const stats = run(new RowStatsProgram([N, 2], N, D), [x2], u);
        const dx = run(new LayerNormInputGradProgram([N, D], N, D), [x2, dy2, gs, stats], u).reshape(
          xs.shape,
        );
        const chunkRows = Math.max(CHUNKS, Math.ceil(N / CHUNKS));
        const chunks = Math.ceil(N / chunkRows);
        const parts = run(new LayerNormParamGradProgram(chunks, D), [x2, dy2, stats], [
          { type: "int32", data: [N] },
          { type: "int32", data: [D] },
          { type: "int32", data: [chunks] },
          { type: "int32", data: [chunkRows] },
        ]);
        const total = (which: number) =>
          run(new ChunkTotalProgram(D), [parts], [{ type: "int32", data: [which] }, {
            type: "int32",
            data: [chunks],
          }]);
        return [dx, total(0), total(1)];
      },
    };
  });
  return f(x, gamma, beta) as tf.Tensor;
}
