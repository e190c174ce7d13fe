/**
 * AdamW (decoupled weight decay) with GradDrop masks applied inside the update.
 * With `fused`, one kernel pass per tensor: WGSL on WebGPU ({@link fusedAdamWMany}, several
 * tensors per dispatch), a wasm kernel on tfjs-wasm ({@link wasmAdamW}); otherwise the same
 * math composed from tfjs ops, with the mask from the WGSL mask program (WebGPU) or the
 * TypeScript reference.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AdamWStep, fusedAdamWMany, type FusedUpdate, type MaskMode } from "../kernels/fused_adamw.ts";
import { wasmAdamW, wasmAdamWReady, wasmSumOfSquares } from "../kernels/wasm_adamw.ts";
import { applyMask, maskTensor } from "../kernels/graddrop_mask.ts";
import { clipStatsGpu } from "../kernels/global_norm.ts";
import { deviceScalar } from "../kernels/device_constants.ts";
import type { MaskSpec } from "../kernels/mask_spec.ts";
import { kept } from "../kernels/rng.ts";
import type { Params } from "../model/encoder.ts";

/** What happens to one tensor this step. */
export interface TensorUpdate {
  mode: MaskMode;
  mask?: MaskSpec;
  /** A stored 0/1 mask (Child-Tuning-D), multiplied into the gradient before the update. */
  fixedMask?: tf.Tensor;
  /** Multiplies the learning rate for this tensor (default 1). */
  lrScale?: number;
}

/** AdamW hyper-parameters. */
export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  fused: boolean;
}

/**
 * Whether the update mask drops this whole tensor this step (layer granularity, update
 * target): then nothing moves and the step is not one of the tensor's own updates.
 */
function skippedWhole(u: TensorUpdate, size: number): boolean {
  return u.mode === "update" && !!u.mask && u.mask.divisor >= size && !kept(u.mask.key, 0, u.mask.threshold);
}

/** Biases and LayerNorm weights get no weight decay, as in HF fine-tuning scripts. */
function decays(name: string): boolean {
  return !/(\.bias$|LayerNorm\.weight$|layer_norm\.weight$)/.test(name);
}

/**
 * A zero-filled variable made on the device (a fill kernel): no host array and no upload,
 * which for an XLM-R embedding's moments would be 768 MB each. It owns its buffer alone.
 */
function zerosVariable(shape: number[], name: string): tf.Variable {
  const t = tf.fill(shape, 0);
  const v = tf.variable(t, false, `${name}#${crypto.randomUUID().slice(0, 8)}`);
  t.dispose();
  return v;
}

/** AdamW state and step. */
export class AdamW {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  /** Updates applied per tensor: bias correction counts a tensor's own updates, not steps it sat out whole. */
  readonly steps = new Map<string, number>();

  constructor(readonly params: Params, readonly opts: AdamWOptions) {
    for (const [name, p] of params) {
      this.m.set(name, zerosVariable(p.shape, `${name}.m`));
      this.v.set(name, zerosVariable(p.shape, `${name}.v`));
      this.steps.set(name, 0);
    }
  }

  /**
   * One optimisation step: the global-norm clip of `grads` to `clipNorm` (0: none), then the
   * update of the tensors in `updates`. Returns the norm before clipping. On wasm with
   * `fused`, both run as wasm kernels, one call per tensor; elsewhere as tfjs ops (with the
   * fused WGSL pass on WebGPU).
   */
  async step(
    grads: Map<string, tf.Tensor>,
    clipNorm: number,
    lr: number,
    updates: Map<string, TensorUpdate>,
  ): Promise<number> {
    return (await this.stepAndRead(grads, clipNorm, lr, updates)).gradNorm;
  }

  /**
   * {@link step}, reading back the gradient norm and `loss` (when given) together: on WebGPU
   * with `fused`, the clip statistics come from {@link clipStatsGpu} and the whole step needs
   * one GPU->CPU read.
   */
  async stepAndRead(
    grads: Map<string, tf.Tensor>,
    clipNorm: number,
    lr: number,
    updates: Map<string, TensorUpdate>,
    loss?: tf.Tensor,
  ): Promise<{ gradNorm: number; loss: number }> {
    const readLoss = async () => (loss ? (await loss.data())[0] : NaN);
    if (this.opts.fused && wasmAdamWReady()) {
      const norm = Math.sqrt(wasmSumOfSquares([...grads.values()]));
      const clip = clipNorm > 0 ? Math.min(1, clipNorm / (norm + 1e-6)) : 1;
      for (const [name, u] of updates) {
        const g = grads.get(name);
        if (!g || skippedWhole(u, g.size)) continue;
        const s = this.next(name, u, lr);
        wasmAdamW(this.params.get(name)!, this.m.get(name)!, this.v.get(name)!, g, clip, s, u.fixedMask);
      }
      return { gradNorm: norm, loss: await readLoss() };
    }
    if (this.opts.fused && tf.getBackend() === "webgpu") {
      const stats = clipStatsGpu([...grads.values()], clipNorm, loss ?? deviceScalar(0));
      this.apply(grads, stats, lr, updates);
      const [, gradNorm, l] = await stats.data();
      stats.dispose();
      return { gradNorm, loss: loss ? l : NaN };
    }
    const { scale, norm } = clipScale([...grads.values()], clipNorm);
    this.apply(grads, scale, lr, updates);
    const n = (await norm.data())[0];
    tf.dispose([scale, norm]);
    return { gradNorm: n, loss: await readLoss() };
  }

  /** Counts the tensor's update and returns this step's hyper-parameters for it. */
  private next(name: string, u: TensorUpdate, lr: number): AdamWStep {
    const t = this.steps.get(name)! + 1;
    this.steps.set(name, t);
    return {
      lr: lr * (u.lrScale ?? 1),
      beta1: this.opts.beta1,
      beta2: this.opts.beta2,
      eps: this.opts.eps,
      weightDecay: decays(name) ? this.opts.weightDecay : 0,
      bc1: 1 - this.opts.beta1 ** t,
      bc2: 1 - this.opts.beta2 ** t,
      mode: u.mode,
      mask: u.mask,
    };
  }

  /**
   * Applies one step to the tensors in `updates` (others are frozen: no update at all) with
   * tfjs ops (the fused WGSL pass on WebGPU). `clip` holds the global-norm clip scale in
   * its first element (a scalar, or {@link clipStatsGpu}'s statistics): no GPU->CPU sync.
   */
  apply(
    grads: Map<string, tf.Tensor>,
    clip: tf.Tensor,
    lr: number,
    updates: Map<string, TensorUpdate>,
  ): void {
    const useFused = this.opts.fused && tf.getBackend() === "webgpu";
    // The fused pass reads element 0 itself; the ops need a 1-element tensor.
    const clip1 = useFused ? clip : clip.size === 1 ? clip.reshape([1]) : clip.slice([0], [1]);
    const fused: FusedUpdate[] = [];
    const masked: tf.Tensor[] = [];
    for (const [name, u] of updates) {
      const g0 = grads.get(name);
      if (!g0 || skippedWhole(u, g0.size)) continue;
      const step = this.next(name, u, lr);
      const g = u.fixedMask ? g0.mul(u.fixedMask) : g0;
      const w = this.params.get(name)!, m = this.m.get(name)!, v = this.v.get(name)!;
      if (g !== g0) masked.push(g);
      if (useFused) fused.push({ w, m, v, g, s: step });
      else {
        tf.tidy(() => {
          let gg = g.mul(clip1);
          const masked = u.mode !== "none" && u.mask;
          // The whole-update target needs the 0/1 mask itself; the gradient target only the masked gradient.
          const keep = masked && u.mode === "update" ? maskTensor(g.shape, u.mask!) : null;
          if (masked) gg = applyMask(gg, u.mask!);
          let mNew = m.mul(step.beta1).add(gg.mul(1 - step.beta1));
          let vNew = v.mul(step.beta2).add(gg.square().mul(1 - step.beta2));
          const upd = mNew.div(step.bc1).div(vNew.div(step.bc2).sqrt().add(step.eps)).add(
            w.mul(step.weightDecay),
          );
          let wNew = w.sub(upd.mul(step.lr));
          if (keep && u.mode === "update") {
            const k = keep.cast("bool");
            wNew = tf.where(k, wNew, w);
            mNew = tf.where(k, mNew, m);
            vNew = tf.where(k, vNew, v);
          }
          m.assign(mNew);
          v.assign(vNew);
          w.assign(wNew);
        });
      }
    }
    // Several tensors per dispatch where the device binds them.
    if (fused.length) fusedAdamWMany(fused, clip1);
    tf.dispose(masked);
    if (clip1 !== clip) clip1.dispose();
  }

  /** Disposes the moment variables. */
  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

/** Global-norm clip scale `min(1, maxNorm / (norm + 1e-6))` and the norm, as tensors. */
export function clipScale(grads: tf.Tensor[], maxNorm: number): { scale: tf.Scalar; norm: tf.Scalar } {
  return tf.tidy(() => {
    // Pairwise adds, not tf.addN: tfjs-backend-webgpu 4.22's AddN returns 0 for many inputs.
    const norm = grads.map((g) => g.square().sum()).reduce((a, b) => a.add(b)).sqrt() as tf.Scalar;
    const scale = maxNorm > 0 ? tf.minimum(1, tf.div(maxNorm, norm.add(1e-6))) as tf.Scalar : tf.scalar(1);
    return { scale, norm };
  });
}

/**
 * Linear warmup then linear decay to zero. Step `step` (from 0) of the warmup takes
 * (step + 1) / warmup of the peak, so no step is wasted at rate 0 (HF's scheduler gives its first
 * step 0); the decay is HF's.
 *
 * @example
 * ```ts
 * import { lrAt } from "./optimizer.ts";
 * const lrs = [0, 1, 2, 3, 4, 5].map((s) => lrAt(s, 6, 2, 1));
 * if (lrs.join() !== "0.5,1,1,0.75,0.5,0.25") throw new Error(lrs.join());
 * ```
 */
export function lrAt(step: number, total: number, warmup: number, peak: number): number {
  if (warmup > 0 && step < warmup) return peak * (step + 1) / warmup;
  return peak * Math.max(0, (total - step) / Math.max(1, total - warmup));
}
