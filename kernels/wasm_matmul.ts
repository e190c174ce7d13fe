/**
 * A SIMD batched matmul for tfjs's wasm backend, written in WebAssembly text next to its
 * dispatch logic and compiled at start-up with `npm:wabt`.
 *
 * Why: tfjs-backend-wasm 4.22 sends every `BatchMatMul` with a batch dimension, or with
 * either operand transposed, to a scalar loop that runs at ~2 GFLOP/s on this project's
 * machines, while a plain 2-D product reaches ~16-28. Attention is all batched products and
 * every matmul gradient is a transposed one, so a training step spent most of its time
 * there. This kernel blocks 4 rows x 8 columns into eight `f32x4` accumulators and runs at
 * ~35 GFLOP/s for attention-sized products on one core. It reads and writes tfjs's own heap
 * (the module imports the backend's `WebAssembly.Memory`), so no tensor is copied.
 *
 * Summation runs over k in order, so results are deterministic; they differ from XNNPACK's
 * in the last bits.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import wabtInit from "wabt";

/**
 * `bmm` computes C[b] = A[b] @ B[b] with byte strides for A (so a transposed A needs no
 * copy), B rows contiguous in j, and C row-major. `transpose` writes src[b] ([R, C]) as
 * dst[b] ([C, R]) for a transposed B.
 */
const MATMUL_WAT = `
(module
  (import "env" "memory" (memory 1))
  (func $cell (param $pa i32) (param $sAk i32) (param $pb i32) (param $sBk i32) (param $K i32) (result f32)
    (local $s f32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $K)))
      (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $pa)) (f32.load (local.get $pb)))))
      (local.set $pa (i32.add (local.get $pa) (local.get $sAk)))
      (local.set $pb (i32.add (local.get $pb) (local.get $sBk)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br $l)))
    (local.get $s))
  (func (export "bmm")
    (param $a i32) (param $b i32) (param $c i32) (param $batch i32)
    (param $M i32) (param $K i32) (param $N i32)
    (param $sAb i32) (param $sAi i32) (param $sAk i32) (param $sBb i32)
    (local $bi i32) (local $i i32) (local $j i32) (local $k i32) (local $M4 i32) (local $N8 i32)
    (local $pa0 i32) (local $pa1 i32) (local $pa2 i32) (local $pa3 i32) (local $pb i32) (local $pc i32)
    (local $sBk i32) (local $sCi i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $sBk (i32.shl (local.get $N) (i32.const 2)))
    (local.set $sCi (local.get $sBk))
    (local.set $M4 (i32.and (local.get $M) (i32.const -4)))
    (local.set $N8 (i32.and (local.get $N) (i32.const -8)))
    (block $bdone (loop $bl
      (br_if $bdone (i32.ge_u (local.get $bi) (local.get $batch)))
      (local.set $i (i32.const 0))
      (block $idone (loop $il
        (br_if $idone (i32.ge_u (local.get $i) (local.get $M4)))
        (local.set $j (i32.const 0))
        (block $jdone (loop $jl
          (br_if $jdone (i32.ge_u (local.get $j) (local.get $N8)))
          (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))
          (local.set $c10 (v128.const i32x4 0 0 0 0)) (local.set $c11 (v128.const i32x4 0 0 0 0))
          (local.set $c20 (v128.const i32x4 0 0 0 0)) (local.set $c21 (v128.const i32x4 0 0 0 0))
          (local.set $c30 (v128.const i32x4 0 0 0 0)) (local.set $c31 (v128.const i32x4 0 0 0 0))
          (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $sAi))))
          (local.set $pa1 (i32.add (local.get $pa0) (local.get $sAi)))
          (local.set $pa2 (i32.add (local.get $pa1) (local.get $sAi)))
          (local.set $pa3 (i32.add (local.get $pa2) (local.get $sAi)))
          (local.set $pb (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $k (local.get $K))
          (block $kdone (loop $kl
            (br_if $kdone (i32.eqz (local.get $k)))
            (local.set $b0 (v128.load (local.get $pb)))
            (local.set $b1 (v128.load offset=16 (local.get $pb)))
            (local.set $x0 (f32x4.splat (f32.load (local.get $pa0))))
            (local.set $x1 (f32x4.splat (f32.load (local.get $pa1))))
            (local.set $x2 (f32x4.splat (f32.load (local.get $pa2))))
            (local.set $x3 (f32x4.splat (f32.load (local.get $pa3))))
            (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x0) (local.get $b0))))
            (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x0) (local.get $b1))))
            (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x1) (local.get $b0))))
            (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x1) (local.get $b1))))
            (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x2) (local.get $b0))))
            (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x2) (local.get $b1))))
            (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x3) (local.get $b0))))
            (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x3) (local.get $b1))))
            (local.set $pa0 (i32.add (local.get $pa0) (local.get $sAk)))
            (local.set $pa1 (i32.add (local.get $pa1) (local.get $sAk)))
            (local.set $pa2 (i32.add (local.get $pa2) (local.get $sAk)))
            (local.set $pa3 (i32.add (local.get $pa3) (local.get $sAk)))
            (local.set $pb (i32.add (local.get $pb) (local.get $sBk)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br $kl)))
          (local.set $pc (i32.add (local.get $c)
            (i32.add (i32.mul (local.get $i) (local.get $sCi)) (i32.shl (local.get $j) (i32.const 2)))))
          (v128.store (local.get $pc) (local.get $c00))
          (v128.store offset=16 (local.get $pc) (local.get $c01))
          (local.set $pc (i32.add (local.get $pc) (local.get $sCi)))
          (v128.store (local.get $pc) (local.get $c10))
          (v128.store offset=16 (local.get $pc) (local.get $c11))
          (local.set $pc (i32.add (local.get $pc) (local.get $sCi)))
          (v128.store (local.get $pc) (local.get $c20))
          (v128.store offset=16 (local.get $pc) (local.get $c21))
          (local.set $pc (i32.add (local.get $pc) (local.get $sCi)))
          (v128.store (local.get $pc) (local.get $c30))
          (v128.store offset=16 (local.get $pc) (local.get $c31))
          (local.set $j (i32.add (local.get $j) (i32.const 8)))
          (br $jl)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $il)))
      ;; Columns N8..N of the blocked rows, then every column of rows M4..M, one cell at a time.
      (local.set $i (i32.const 0))
      (block $rdone (loop $rl
        (br_if $rdone (i32.ge_u (local.get $i) (local.get $M)))
        (local.set $j (select (local.get $N8) (i32.const 0) (i32.lt_u (local.get $i) (local.get $M4))))
        (block $cdone (loop $cl
          (br_if $cdone (i32.ge_u (local.get $j) (local.get $N)))
          (f32.store
            (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $sCi)) (i32.shl (local.get $j) (i32.const 2))))
            (call $cell
              (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $sAi))) (local.get $sAk)
              (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $sBk)
              (local.get $K)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $cl)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rl)))
      (local.set $a (i32.add (local.get $a) (local.get $sAb)))
      (local.set $b (i32.add (local.get $b) (local.get $sBb)))
      (local.set $c (i32.add (local.get $c) (i32.mul (local.get $M) (local.get $sCi))))
      (local.set $bi (i32.add (local.get $bi) (i32.const 1)))
      (br $bl))))
  (func (export "transpose") (param $src i32) (param $dst i32) (param $batch i32) (param $R i32) (param $C i32)
    (local $bi i32) (local $r i32) (local $col i32) (local $ps i32)
    (block $bdone (loop $bl
      (br_if $bdone (i32.ge_u (local.get $bi) (local.get $batch)))
      (local.set $r (i32.const 0))
      (block $rdone (loop $rl
        (br_if $rdone (i32.ge_u (local.get $r) (local.get $R)))
        (local.set $col (i32.const 0))
        (local.set $ps (i32.add (local.get $src) (i32.shl (i32.mul (local.get $r) (local.get $C)) (i32.const 2))))
        (block $cdone (loop $cl
          (br_if $cdone (i32.ge_u (local.get $col) (local.get $C)))
          (f32.store
            (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $col) (local.get $R)) (local.get $r)) (i32.const 2)))
            (f32.load (local.get $ps)))
          (local.set $ps (i32.add (local.get $ps) (i32.const 4)))
          (local.set $col (i32.add (local.get $col) (i32.const 1)))
          (br $cl)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rl)))
      (local.set $src (i32.add (local.get $src) (i32.shl (i32.mul (local.get $R) (local.get $C)) (i32.const 2))))
      (local.set $dst (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $R) (local.get $C)) (i32.const 2))))
      (local.set $bi (i32.add (local.get $bi) (i32.const 1)))
      (br $bl)))))
`;

interface MatmulExports {
  bmm(
    a: number,
    b: number,
    c: number,
    batch: number,
    M: number,
    K: number,
    N: number,
    sAb: number,
    sAi: number,
    sAk: number,
    sBb: number,
  ): void;
  transpose(src: number, dst: number, batch: number, R: number, C: number): void;
}

/** The parts of tfjs-backend-wasm 4.22's backend object this kernel touches (not public API). */
interface WasmBackendInternals {
  wasm: {
    asm: { memory: WebAssembly.Memory };
    _malloc(bytes: number): number;
    _free(ptr: number): void;
  };
  dataIdMap: { get(id: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
}

let installed = false;

/**
 * Compiles the kernel against the wasm backend's memory and registers it as that backend's
 * `BatchMatMul` (replacing tfjs's). Call after `tf.setBackend("wasm")`; later calls do nothing.
 *
 * @example
 * ```ts ignore
 * await tf.setBackend("wasm");
 * await installWasmMatmul();
 * tf.matMul(a, b, false, true); // runs the SIMD kernel
 * ```
 */
export async function installWasmMatmul(): Promise<void> {
  if (installed) return;
  const backend = tf.backend() as unknown as WasmBackendInternals;
  const wabt = await wabtInit();
  const parsed = wabt.parseWat("matmul.wat", MATMUL_WAT, { simd: true });
  const { buffer } = parsed.toBinary({});
  parsed.destroy();
  const module = await WebAssembly.compile(buffer as Uint8Array<ArrayBuffer>);
  const instance = await WebAssembly.instantiate(module, { env: { memory: backend.wasm.asm.memory } });
  const k = instance.exports as unknown as MatmulExports;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({
    kernelName: "BatchMatMul",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      return batchMatMul(k, be as unknown as WasmBackendInternals, a, b, transposeA, transposeB);
    },
  });
  installed = true;
}

function batchMatMul(
  k: MatmulExports,
  be: WasmBackendInternals,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  if (a.dtype !== "float32" || b.dtype !== "float32") throw new Error("BatchMatMul: float32 only");
  const ra = a.shape.length, rb = b.shape.length;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== Kb) throw new Error(`BatchMatMul: inner sizes ${K} and ${Kb} differ (${a.shape} x ${b.shape})`);
  const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) {
    throw new Error(`BatchMatMul: batch sizes ${batchA} and ${batchB} do not broadcast`);
  }
  const batch = Math.max(batchA, batchB);
  const outerDims = (batchA >= batchB ? a : b).shape.slice(0, -2);
  const out = be.makeOutput([...outerDims, M, N], "float32");
  const pa = be.dataIdMap.get(a.dataId).memoryOffset;
  let pb = be.dataIdMap.get(b.dataId).memoryOffset;
  const pc = be.dataIdMap.get(out.dataId).memoryOffset;
  let scratch = 0;
  if (transposeB) {
    scratch = be.wasm._malloc(batchB * K * N * 4);
    k.transpose(pb, scratch, batchB, N, K);
    pb = scratch;
  }
  const sAb = batchA === 1 ? 0 : M * K * 4, sBb = batchB === 1 ? 0 : K * N * 4;
  k.bmm(pa, pb, pc, batch, M, K, N, sAb, transposeA ? 4 : K * 4, transposeA ? M * 4 : 4, sBb);
  if (scratch) be.wasm._free(scratch);
  return out;
}
