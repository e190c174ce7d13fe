/**
 * The global gradient norm and clip scale on WebGPU with the whole device at work. tfjs's
 * `sum` gives each output one workgroup, so `g.square().sum()` over a 192M-element embedding
 * gradient runs on one SM, and a norm over 201 tensors takes about 600 dispatches. Here each
 * dispatch reads up to seven tensors, every workgroup sums the squares of one 4,096-element
 * chunk into a partial, partials are summed the same way until one chunk is left, and a last
 * one-workgroup pass writes `[clip scale, norm, loss]`, which the fused AdamW pass reads
 * (element 0) and the host reads back once.
 * The twin is {@link clipScale} in `train/optimizer.ts` (tfjs ops).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";

const WG = 256;
/** Elements one workgroup sums. */
const CHUNK = WG * 16;
/** tfjs asks for the default limit of 8 storage buffers per stage: the output and seven inputs. */
const MAX_INPUTS = 7;

const TREE_WGSL = /* wgsl */ `
var<workgroup> red : array<f32, ${WG}>;
fn groupSum(v : f32, tid : i32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}; s > 0; s = s >> 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  return red[0];
}`;

/**
 * Sums (of squares, with `square`) of consecutive chunks of up to seven tensors: workgroup `w`
 * sums one chunk of the tensor whose range of workgroups holds `w`.
 */
class ChunkSumProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  uniforms: string;
  readonly starts: number[];

  constructor(readonly sizes: number[], readonly square: boolean) {
    this.variableNames = sizes.map((_, k) => `G${k}`);
    this.starts = [0];
    for (const n of sizes) this.starts.push(this.starts.at(-1)! + Math.ceil(n / CHUNK));
    const groups = this.starts.at(-1)!;
    this.outputShape = [groups];
    this.shaderKey = `graddropChunkSum_${sizes.length}_${square}`;
    this.uniforms = sizes.map((_, k) => `n${k} : i32, s${k} : i32,`).join(" ") + ` groups : i32,`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout([groups * WG]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [groups * WG], this.workgroupSize);
  }

  uniformData(): { type: string; data: number[] }[] {
    return [
      ...this.sizes.flatMap((
        n,
        k,
      ) => [{ type: "int32", data: [n] }, { type: "int32", data: [this.starts[k]] }]),
      { type: "int32", data: [this.starts.at(-1)!] },
    ];
  }

  getUserCode(): string {
    const term = (k: number) => (this.square ? `G${k}[i] * G${k}[i]` : `G${k}[i]`);
    const branches = this.variableNames.map((_, k) => `
    ${k ? "else " : ""}if (w < ${k + 1 < this.sizes.length ? `uniforms.s${k + 1}` : "uniforms.groups"}) {
      let end = min(uniforms.n${k}, (w - uniforms.s${k} + 1) * ${CHUNK});
      for (var i = (w - uniforms.s${k}) * ${CHUNK} + tid; i < end; i += ${WG}) { acc += ${term(k)}; }
    }`).join("");
    return `
${TREE_WGSL}
fn main(index : i32) {
  let w = index / ${WG};
  let tid = i32(localId.x);
  var acc = 0.0;
  ${branches}
  let total = groupSum(acc, tid);
  if (tid == 0 && w < uniforms.groups) { setOutputAtIndex(w, total); }
}`;
  }
}

/** One workgroup: `[min(1, maxNorm / (norm + 1e-6)), norm, loss]` from the last partials. */
class ClipStatsProgram implements WebGPUProgram {
  outputShape = [3];
  shaderKey = "graddropClipStats";
  variableNames = ["P", "Loss"];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  uniforms = "n : i32, maxNorm : f32,";

  constructor() {
    this.dispatchLayout = webgpu_util.flatDispatchLayout([WG]);
  }

  getUserCode(): string {
    return `
${TREE_WGSL}
fn main(index : i32) {
  let tid = i32(localId.x);
  var acc = 0.0;
  for (var i = tid; i < uniforms.n; i += ${WG}) { acc += P[i]; }
  let norm = sqrt(groupSum(acc, tid));
  if (tid == 0) {
    setOutputAtIndex(0, select(1.0, min(1.0, uniforms.maxNorm / (norm + 1e-6)), uniforms.maxNorm > 0.0));
    setOutputAtIndex(1, norm);
    setOutputAtIndex(2, Loss[0]);
  }
}`;
  }
}

function run(p: WebGPUProgram, inputs: tf.Tensor[], u: { type: string; data: number[] }[]): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  return tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(p, inputs, "float32", u));
}

/**
 * `[clip scale, global norm, loss]` as one 3-element tensor on WebGPU: the scale is
 * `min(1, maxNorm / (norm + 1e-6))` (1 when `maxNorm` is 0), the norm that of all `grads`
 * together; `loss` (a scalar) is carried along so that one read brings the step's figures.
 *
 * @example
 * ```ts ignore
 * const stats = clipStatsGpu(grads, 1.0, loss); // fusedAdamW(..., stats, ...) reads stats[0]
 * const [scale, norm, l] = await stats.data();
 * ```
 */
export function clipStatsGpu(grads: tf.Tensor[], maxNorm: number, loss: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    let level = grads;
    let square = true;
    while (square || level.length > 1 || level[0].size > CHUNK) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += MAX_INPUTS) {
        const group = level.slice(i, i + MAX_INPUTS);
        const p = new ChunkSumProgram(group.map((t) => t.size), square);
        next.push(run(p, group, p.uniformData()));
      }
      level = next;
      square = false;
    }
    return run(new ClipStatsProgram(), [level[0], loss], [
      { type: "int32", data: [level[0].size] },
      { type: "float32", data: [maxNorm] },
    ]);
  });
}
