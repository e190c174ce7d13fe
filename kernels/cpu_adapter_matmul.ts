/**
 * A matmul for software WebGPU adapters (Mesa's llvmpipe), put in front of tfjs's
 * `BatchMatMul` and `_FusedMatMul` by `cpu_adapter.ts`. tfjs's matmul programs are written
 * for GPUs: tiles in workgroup memory with a barrier per step of K, which llvmpipe runs as a
 * coroutine switch per thread. There they reach 1-4 GFLOP/s at the shipped model's shapes
 * (`deno task bench --only webgpu_matmul`). Here each invocation computes one block of the
 * output (up to 32 x 16) from vec4 loads along the contiguous axis of each operand, with no
 * workgroup memory and no barrier. On a hardware adapter tfjs's own programs run, unchanged.
 *
 * It takes shapes whose M, N and K are multiples of 4 (float32, no activation but a bias);
 * every other call goes to tfjs's kernel.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import { reshapeInfo, type StandIn } from "./stand_in.ts";

/** 0 .. n-1, for unrolling WGSL. */
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The WGSL that accumulates one R x 4C block over k..k+3: x_i is row m0+i of op(A) at
 * k..k+3; with B transposed y_j is column n0+j of op(B) at k..k+3, else b<t>_<c> is row k+t
 * of B at columns n0+4c..n0+4c+3.
 */
function blockStep(transposeA: boolean, transposeB: boolean, rows: number, cols: number): string {
  const lines: string[] = [];
  if (transposeA) {
    for (const t of range(4)) {
      for (const q of range(rows / 4)) {
        lines.push(`let a${t}_${q} = A[aOff + (k + ${t}) * M4 + m0 / 4 + ${q}];`);
      }
    }
    const lane = ["x", "y", "z", "w"];
    for (const i of range(rows)) {
      const e = (t: number) => `a${t}_${Math.floor(i / 4)}.${lane[i % 4]}`;
      lines.push(`let x${i} = vec4<f32>(${range(4).map(e).join(", ")});`);
    }
  } else {
    for (const i of range(rows)) lines.push(`let x${i} = A[aOff + (m0 + ${i}) * K4 + k / 4];`);
  }
  if (transposeB) {
    for (const j of range(4 * cols)) lines.push(`let y${j} = B[bOff + (n0 + ${j}) * K4 + k / 4];`);
    for (const i of range(rows)) {
      for (const c of range(cols)) {
        const dots = range(4).map((q) => `dot(x${i}, y${4 * c + q})`).join(", ");
        lines.push(`acc${i}_${c} += vec4<f32>(${dots});`);
      }
    }
  } else {
    for (const t of range(4)) {
      for (const c of range(cols)) lines.push(`let b${t}_${c} = B[bOff + (k + ${t}) * N4 + n0 / 4 + ${c}];`);
    }
    for (const i of range(rows)) {
      for (const c of range(cols)) {
        lines.push(
          `acc${i}_${c} += x${i}.x * b0_${c} + x${i}.y * b1_${c} + x${i}.z * b2_${c} + x${i}.w * b3_${c};`,
        );
      }
    }
  }
  return lines.join("\n    ");
}

/**
 * Output blocks (rows x 4*cols) from largest to smallest; a call takes the first that divides
 * its M and N. Mesa's llvmpipe loads a storage buffer lane by lane and component
 * by component, so what counts is multiply-adds per loaded float: 32 x 16 blocks (about 11 a float)
 * beat 16 x 8 (5.3) by about 10% on the linear layer and 15% on the weight gradient
 * (`deno task bench --only webgpu_matmul`, alternated twice: 7.9-8.0 and 9.0-9.3 against
 * 6.7-7.6 and 8.1-8.2 GFLOP/s), though their 128 vec4 accumulators spill; 64 x 8 and 16 x 16
 * were no better. Earlier, on a quiet machine, 16 x 8 reached 11-16 GFLOP/s and 4 x 4 7-8.
 */
const BLOCKS: [number, number][] = [[32, 4], [16, 2], [8, 2], [8, 1], [4, 1]];

/** `op(A) op(B) (+ bias)` on rank-3 operands, one `rows x 4*cols` output block per invocation. */
class CpuAdapterMatMulProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  variableComponents: number[];
  outputComponent = 4;
  dispatchLayout = { x: [0, 1, 2] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(
    outputShape: [number, number, number],
    readonly transposeA: boolean,
    readonly transposeB: boolean,
    readonly bias: boolean,
    readonly block: [number, number],
  ) {
    this.outputShape = outputShape;
    this.variableNames = bias ? ["A", "B", "Bias"] : ["A", "B"];
    this.variableComponents = this.variableNames.map(() => 4);
    this.shaderKey = `graddropCpuAdapterMatMul_${transposeA}_${transposeB}_${bias}_${block.join("x")}`;
    const [batch, m, n] = outputShape;
    const blocks = batch * (m / block[0]) * (n / (4 * block[1]));
    this.dispatch = webgpu_util.computeDispatch({ x: [0] }, [blocks], this.workgroupSize);
  }

  getUserCode(): string {
    const [rows, cols] = this.block;
    const accs = range(rows).flatMap((i) => range(cols).map((c) => `acc${i}_${c}`));
    // The operands' shapes come as tfjs's uniforms: aShape/bShape [batch, rows, cols].
    const kOf = this.transposeA ? "uniforms.aShape.y" : "uniforms.aShape.z";
    return `
fn main(index : i32) {
  let M = uniforms.outShape.y; let N = uniforms.outShape.z; let K = ${kOf};
  let M4 = M / 4; let N4 = N / 4; let K4 = K / 4;
  let rowBlocks = M / ${rows}; let colBlocks = N / ${4 * cols};
  if (index >= uniforms.outShape.x * rowBlocks * colBlocks) { return; }
  let b = index / (rowBlocks * colBlocks);
  let m0 = ((index % (rowBlocks * colBlocks)) / colBlocks) * ${rows};
  let n0 = (index % colBlocks) * ${4 * cols};
  let aOff = select(b, 0, uniforms.aShape.x == 1) * M * K4;
  let bOff = select(b, 0, uniforms.bShape.x == 1) * N * K4;
  ${accs.map((a) => `var ${a} = vec4<f32>();`).join(" ")}
  for (var k = 0; k < K; k += 4) {
    ${blockStep(this.transposeA, this.transposeB, rows, cols)}
  }
  let out = b * M * N4 + m0 * N4 + n0 / 4;
  ${
      range(rows).flatMap((i) =>
        range(cols).map((c) =>
          `result[out + ${i} * N4 + ${c}] = acc${i}_${c}${this.bias ? ` + Bias[n0 / 4 + ${c}]` : ""};`
        )
      ).join("\n  ")
    }
}`;
  }
}

interface MatMulArgs {
  inputs: {
    a: tf.TensorInfo;
    b: tf.TensorInfo;
    bias?: tf.TensorInfo;
    preluActivationWeights?: tf.TensorInfo;
  };
  backend: WebGPUBackend;
  attrs: { transposeA: boolean; transposeB: boolean; activation?: string };
}

/** [batch, rows, cols] of an operand: its batch dimensions as one. */
function as3d(t: tf.TensorInfo): [number, number, number] {
  const s = t.shape;
  return [tf.util.sizeFromShape(s.slice(0, -2)), s[s.length - 2], s[s.length - 1]];
}

/** Whether the program takes this call: multiples of 4, float32, plain batches, a bias at most. */
function takes({ inputs, attrs }: MatMulArgs): boolean {
  const { a, b, bias, preluActivationWeights } = inputs;
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) {
    return false;
  }
  if (preluActivationWeights || (attrs.activation && attrs.activation !== "linear")) return false;
  const [ba, ra, ca] = as3d(a), [bb, rb, cb] = as3d(b);
  const [m, k] = attrs.transposeA ? [ca, ra] : [ra, ca];
  const n = attrs.transposeB ? rb : cb;
  if (m % 4 || n % 4 || k % 4) return false;
  if (ba !== bb && Math.min(ba, bb) !== 1) return false;
  return !bias || (bias.shape.length === 1 && bias.shape[0] === n);
}

function run({ inputs, backend, attrs }: MatMulArgs): tf.TensorInfo {
  const { a, b, bias } = inputs;
  const a3 = reshapeInfo(backend, a, as3d(a)), b3 = reshapeInfo(backend, b, as3d(b));
  const [ba, ra, ca] = a3.shape, [bb, rb, cb] = b3.shape;
  const m = attrs.transposeA ? ca : ra, n = attrs.transposeB ? rb : cb;
  const batchShape = (ba >= bb ? a : b).shape.slice(0, -2);
  const block = BLOCKS.find(([r, c]) => m % r === 0 && n % (4 * c) === 0)!;
  const program = new CpuAdapterMatMulProgram(
    [Math.max(ba, bb), m, n],
    attrs.transposeA,
    attrs.transposeB,
    bias !== undefined,
    block,
  );
  const out3 = backend.runWebGPUProgram(program, bias ? [a3, b3, bias] : [a3, b3], "float32");
  const out = reshapeInfo(backend, out3, [...batchShape, m, n]);
  for (const t of [a3, b3, out3]) backend.disposeData(t.dataId);
  return out;
}

/** The llvmpipe matmul for tfjs's `BatchMatMul` and `_FusedMatMul`. */
export const matMulStandIn: StandIn = {
  kernels: ["BatchMatMul", "_FusedMatMul"],
  takes: (args) => takes(args as unknown as MatMulArgs),
  run: (args) => run(args as unknown as MatMulArgs),
};
