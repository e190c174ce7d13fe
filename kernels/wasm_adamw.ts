/**
 * Fused GradDrop + AdamW for tfjs's wasm backend: the wasm twin of `fused_adamw.ts`, in
 * WebAssembly text beside its dispatch logic. One call per tensor reads the gradient (and a
 * Child-Tuning-D mask), applies the clip scale and the GradDrop keep test (the same PCG hash
 * as `rng.ts`, in i32 arithmetic), and updates weights and both moments in place on tfjs's
 * heap; one more call per tensor gives the squared norm for clipping.
 *
 * Why: composed from tfjs ops, the update costs ~15 kernel calls per tensor and the clip
 * ~3, about 1,300 calls a step for a 4-layer model, each ~70 us of engine overhead in Deno;
 * and on wasm a GradDrop mask was a JS loop plus tensor uploads per tensor per step. The
 * arithmetic is f32 in `referenceAdamW`'s order (the hyper-parameters as f32, as the WGSL
 * kernel gets them), so it matches the reference to float rounding; the keep decisions are
 * bit-identical.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import wabtInit from "wabt";
import { type AdamWStep, kernelMask } from "./fused_adamw.ts";

const ADAMW_WAT = `
(module
  (import "env" "memory" (memory 1))
  (func $pcg (param $v i32) (result i32)
    (local $s i32) (local $w i32)
    (local.set $s (i32.add (i32.mul (local.get $v) (i32.const 747796405)) (i32.const -1403630843)))
    (local.set $w (i32.mul
      (i32.xor (i32.shr_u (local.get $s) (i32.add (i32.shr_u (local.get $s) (i32.const 28)) (i32.const 4))) (local.get $s))
      (i32.const 277803737)))
    (i32.xor (i32.shr_u (local.get $w) (i32.const 22)) (local.get $w)))
  (func (export "sumsq") (param $p i32) (param $n i32) (result f64)
    (local $s f64) (local $x f64)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $x (f64.promote_f32 (f32.load (local.get $p))))
      (local.set $s (f64.add (local.get $s) (f64.mul (local.get $x) (local.get $x))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $s))
  (func (export "adamw")
    (param $w i32) (param $m i32) (param $v i32) (param $g i32) (param $fmask i32) (param $n i32)
    (param $clip f32) (param $lr f32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
    (param $eps f32) (param $wd f32) (param $bc1 f32) (param $bc2 f32)
    (param $mode i32) (param $key i32) (param $divisor i32) (param $threshold i32) (param $scale f32)
    (local $i i32) (local $o i32) (local $gi f32) (local $mi f32) (local $vi f32) (local $wi f32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (block $next
        (local.set $gi (f32.mul (f32.load (i32.add (local.get $g) (local.get $o))) (local.get $clip)))
        (if (local.get $fmask)
          (then (local.set $gi (f32.mul (local.get $gi) (f32.load (i32.add (local.get $fmask) (local.get $o)))))))
        (if (local.get $mode)
          (then
            (if (i32.ge_u
                  (i32.shr_u
                    (call $pcg (i32.xor (call $pcg (i32.div_u (local.get $i) (local.get $divisor))) (local.get $key)))
                    (i32.const 8))
                  (local.get $threshold))
              (then
                (br_if $next (i32.eq (local.get $mode) (i32.const 2)))
                (local.set $gi (f32.const 0))))
            (local.set $gi (f32.mul (local.get $gi) (local.get $scale)))))
        (local.set $mi (f32.add
          (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (local.get $o))))
          (f32.mul (local.get $c1) (local.get $gi))))
        (local.set $vi (f32.add
          (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (local.get $o))))
          (f32.mul (f32.mul (local.get $c2) (local.get $gi)) (local.get $gi))))
        (f32.store (i32.add (local.get $m) (local.get $o)) (local.get $mi))
        (f32.store (i32.add (local.get $v) (local.get $o)) (local.get $vi))
        (local.set $wi (f32.load (i32.add (local.get $w) (local.get $o))))
        (f32.store (i32.add (local.get $w) (local.get $o))
          (f32.sub (local.get $wi) (f32.mul (local.get $lr)
            (f32.add
              (f32.div (f32.div (local.get $mi) (local.get $bc1))
                       (f32.add (f32.sqrt (f32.div (local.get $vi) (local.get $bc2))) (local.get $eps)))
              (f32.mul (local.get $wd) (local.get $wi)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))))
`;

interface AdamwExports {
  sumsq(p: number, n: number): number;
  adamw(
    w: number,
    m: number,
    v: number,
    g: number,
    fmask: number,
    n: number,
    clip: number,
    lr: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
    mode: number,
    key: number,
    divisor: number,
    threshold: number,
    scale: number,
  ): void;
}

/** The parts of tfjs-backend-wasm 4.22's backend object this kernel touches (not public API). */
interface WasmBackendInternals {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: object): { memoryOffset: number } };
}

let kernel: AdamwExports | undefined;

/** Compiles the kernel against the wasm backend's memory. Call after `tf.setBackend("wasm")`. */
export async function installWasmAdamW(): Promise<void> {
  if (kernel) return;
  const be = tf.backend() as unknown as WasmBackendInternals;
  const wabt = await wabtInit();
  const parsed = wabt.parseWat("adamw.wat", ADAMW_WAT, {});
  const { buffer } = parsed.toBinary({});
  parsed.destroy();
  const module = await WebAssembly.compile(buffer as Uint8Array<ArrayBuffer>);
  kernel = (await WebAssembly.instantiate(module, { env: { memory: be.wasm.asm.memory } }))
    .exports as unknown as AdamwExports;
}

/** Whether the fused wasm update can run now (wasm backend active, kernel installed). */
export function wasmAdamWReady(): boolean {
  return kernel !== undefined && tf.getBackend() === "wasm";
}

function offset(t: tf.Tensor): number {
  return (tf.backend() as unknown as WasmBackendInternals).dataIdMap.get(t.dataId).memoryOffset;
}

/** Sum of squares of tensors' elements (f64 accumulation), for the global clip norm. */
export function wasmSumOfSquares(tensors: tf.Tensor[]): number {
  return tensors.reduce((a, t) => a + kernel!.sumsq(offset(t), t.size), 0);
}

/**
 * Updates `w`, `m`, `v` in place from gradient `g` scaled by `clip` (and multiplied by the
 * 0/1 `fixedMask` when given), under the step's GradDrop mask. The variables must own
 * their buffers (no tensor shares them).
 *
 * @example
 * ```ts ignore
 * await installWasmAdamW();
 * wasmAdamW(w, m, v, grad, 0.5, step);
 * ```
 */
export function wasmAdamW(
  w: tf.Variable,
  m: tf.Variable,
  v: tf.Variable,
  g: tf.Tensor,
  clip: number,
  s: AdamWStep,
  fixedMask?: tf.Tensor,
): void {
  const mask = kernelMask(s);
  const f = Math.fround;
  kernel!.adamw(
    offset(w),
    offset(m),
    offset(v),
    offset(g),
    fixedMask ? offset(fixedMask) : 0,
    w.size,
    clip,
    s.lr,
    s.beta1,
    f(1 - s.beta1),
    s.beta2,
    f(1 - s.beta2),
    s.eps,
    s.weightDecay,
    s.bc1,
    s.bc2,
    mask.mode,
    mask.key | 0,
    mask.divisor,
    mask.threshold,
    mask.scale,
  );
}
