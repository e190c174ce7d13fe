/**
 * Embedding lookup on WebGPU whose gradient is one scatter-add into the rows the batch used.
 * tfjs's gradient of `gather` is `UnsortedSegmentSum`, which at XLM-R's 250,002 x 768 goes
 * through a fill, two transposes and a copy of the whole table (610 of 846 ms of GPU time in a
 * lavapipe profile). Here the host, which has the ids anyway, sorts them into rows: one int32
 * upload holds the ids, the distinct rows and, per row, the positions that read it. Backward
 * is a fill of zeros and one pass with a workgroup per distinct row summing its positions'
 * gradients in a fixed order (deterministic, no atomics).
 * The twin is `tf.gather` with tfjs's gradient.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import { recordDispatch } from "./tfjs_webgpu_internals.ts";

const WG = 256;

/**
 * The int32 layout of one lookup: `[ids (n) | rows (u) | starts (u + 1) | positions (n)]`,
 * rows ascending and positions ascending within a row.
 *
 * @example
 * ```ts
 * import { lookupIndex } from "./embedding_grad.ts";
 * const { data, rows } = lookupIndex(Int32Array.of(5, 2, 5));
 * if (rows !== 2 || data.join() !== "5,2,5,2,5,0,1,3,1,0,2") throw new Error(data.join());
 * ```
 */
export function lookupIndex(ids: Int32Array): { data: Int32Array; rows: number } {
  const n = ids.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ids[a] - ids[b] || a - b);
  const rows: number[] = [], starts: number[] = [];
  order.forEach((p, k) => {
    if (k === 0 || ids[p] !== ids[order[k - 1]]) {
      rows.push(ids[p]);
      starts.push(k);
    }
  });
  starts.push(n);
  const data = new Int32Array(2 * n + 2 * rows.length + 1);
  data.set(ids, 0);
  data.set(rows, n);
  data.set(starts, n + rows.length);
  data.set(order, n + 2 * rows.length + 1);
  return { data, rows: rows.length };
}

/** `out[i, d] = Table[Index[i], d]`: the ids are the first `n` entries of the index. */
class LookupProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = "graddropLookup";
  variableNames = ["Table", "Index"];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  uniforms = "cols : i32,";
  size = true;

  constructor(n: number, cols: number) {
    this.outputShape = [n, cols];
    this.dispatchLayout = webgpu_util.flatDispatchLayout(this.outputShape);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, this.outputShape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index < uniforms.size) {
    let row = Index[index / uniforms.cols];
    setOutputAtIndex(index, Table[row * uniforms.cols + index % uniforms.cols]);
  }
}`;
  }
}

/** Workgroup `r` adds the gradients of the positions reading distinct row `r` into that row. */
const SCATTER_WGSL = /* wgsl */ `
struct Params { n : u32, rows : u32, cols : u32, stride : u32, };
@group(0) @binding(0) var<storage, read_write> Out : array<f32>;
@group(0) @binding(1) var<storage, read> Dy : array<f32>;
@group(0) @binding(2) var<storage, read> Index : array<i32>;
@group(0) @binding(3) var<uniform> u : Params;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_id) lid : vec3<u32>) {
  let r = wg.x + wg.y * u.stride;
  if (r >= u.rows) { return; }
  let row = u32(Index[u.n + r]);
  let first = u32(Index[u.n + u.rows + r]);
  let last = u32(Index[u.n + u.rows + r + 1u]);
  let positions = u.n + 2u * u.rows + 1u;
  for (var c = lid.x; c < u.cols; c += ${WG}u) {
    var s = 0.0;
    for (var k = first; k < last; k++) {
      s += Dy[u32(Index[positions + k]) * u.cols + c];
    }
    Out[row * u.cols + c] = s;
  }
}`;

const pipelines = new WeakMap<GPUDevice, GPUComputePipeline>();

function scatterPipeline(device: GPUDevice): GPUComputePipeline {
  let p = pipelines.get(device);
  if (!p) {
    p = device.createComputePipeline({
      label: "EmbeddingScatterAdd",
      layout: "auto",
      compute: {
        module: device.createShaderModule({ code: SCATTER_WGSL, label: "embeddingScatterAdd" }),
        entryPoint: "main",
      },
    });
    pipelines.set(device, p);
  }
  return p;
}

/**
 * Rows `ids` of `table` (`[V, D]`) as `[...shape, D]` on WebGPU; the gradient to `table` is
 * dense `[V, D]`, zero outside the rows read.
 *
 * @example
 * ```ts ignore
 * const x = lookupRows(wordEmbeddings, batch.ids, [batch.B, batch.T]);
 * ```
 */
export function lookupRows(table: tf.Tensor, ids: Int32Array, shape: number[]): tf.Tensor {
  const [V, D] = table.shape;
  const n = ids.length;
  const { data, rows } = lookupIndex(ids);
  const index = tf.tensor1d(data, "int32");
  const f = tf.customGrad((...args) => {
    const [t, idx] = args as tf.Tensor[];
    (args[2] as unknown as (ts: tf.Tensor[]) => void)([idx]);
    const backend = tf.backend() as WebGPUBackend;
    const info = backend.runWebGPUProgram(new LookupProgram(n, D), [t, idx], "float32", [
      { type: "int32", data: [D] },
    ]);
    return {
      value: tf.engine().makeTensorFromTensorInfo(info).reshape([...shape, D]),
      gradFunc: (dy, [idxs]) => {
        const out = tf.fill([V, D], 0);
        const gx = Math.min(rows, 65535);
        recordDispatch(
          tf.backend() as WebGPUBackend,
          scatterPipeline(backend.device),
          [out, (dy as tf.Tensor).reshape([n, D]), idxs],
          [out],
          [n, rows, D, gx].map((v) => ({ type: "uint32", data: [v] })),
          [gx, Math.ceil(rows / gx)],
        );
        return [out, tf.zerosLike(idxs)];
      },
    };
  });
  return f(table, index) as tf.Tensor;
}
