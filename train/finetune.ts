/**
 * The fine-tuning loop shared by every method: the method decides, per step and tensor,
 * frozen / updated / masked ({@link fateOf}); this loop computes gradients, clips, applies
 * AdamW with the masks, logs kept fractions per layer, and selects the last or best-dev epoch.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { EncoderConfig } from "../model/config.ts";
import {
  classifierLogits,
  crossEntropy,
  encode,
  headPooling,
  layerOf,
  type Params,
} from "../model/encoder.ts";
import { maskTensor } from "../kernels/graddrop_mask.ts";
import { batchRows, type Shard } from "../data/shards.ts";
import { AdamW, lrAt, type TensorUpdate } from "./optimizer.ts";
import { accumulatedStep, epochOrder, trainStep } from "./step.ts";
import { seeds, shuffled } from "../kernels/random.ts";
import { childTuningDMasks, fateOf, inChildTuningDPool, type MethodConfig, type StepCtx } from "./methods.ts";
import { loadResume, type ResumeOptions, saveResume } from "./finetune_resume.ts";

/** Fine-tuning hyper-parameters. */
export interface FinetuneOptions {
  lr: number;
  epochs: number;
  batchSize: number;
  warmup: number;
  weightDecay: number;
  clipNorm: number;
  seed: number;
  dropout: number;
  select: "last" | "best-dev";
  logKeptEvery: number;
  fused: boolean;
  /**
   * Batch rows of similar length (within pools of 8 batches of a shuffled epoch), in a
   * shuffled batch order: less padding, the same rows per epoch.
   */
  bucketByLength: boolean;
  /** Micro-batches per update (gradient accumulation); 1 (the default) computes the batch at once. */
  accumulate?: number;
  /**
   * Discriminative fine-tuning (ULMFiT; layer-wise decay as in ELECTRA): a tensor `d` layers
   * below the head learns at `lr * layerLrDecay^d` (the top encoder layer d = 1, the
   * embeddings d = L + 1). 1 (the default) gives every layer `lr`.
   */
  layerLrDecay?: number;
}

/**
 * The learning-rate factor of a tensor in layer `layer` (-1 the embeddings, `L` the head)
 * under discriminative fine-tuning.
 *
 * @example
 * ```ts
 * import { layerLrScale } from "./finetune.ts";
 * // Four encoder layers: the embeddings sit five below the head, which keeps the full rate.
 * if (layerLrScale(-1, 4, { layerLrDecay: 0.5 }) !== 0.5 ** 5) throw new Error("embeddings");
 * if (layerLrScale(4, 4, { layerLrDecay: 0.5 }) !== 1) throw new Error("head");
 * ```
 */
export function layerLrScale(layer: number, L: number, o: Pick<FinetuneOptions, "layerLrDecay">): number {
  return (o.layerLrDecay ?? 1) ** Math.max(0, L - layer);
}

/**
 * The batches (row indices) of one epoch: the seeded epoch order cut into batches, or with
 * `bucketByLength`, pools of 8 batches' rows sorted by length, cut, and the batches shuffled.
 */
export function epochBatches(
  train: Shard,
  o: Pick<FinetuneOptions, "batchSize" | "seed" | "bucketByLength">,
  epoch: number,
): number[][] {
  const order = epochOrder(train.index.n, o.seed, epoch);
  const cut = (rows: number[]) =>
    Array.from(
      { length: Math.ceil(rows.length / o.batchSize) },
      (_, k) => rows.slice(k * o.batchSize, (k + 1) * o.batchSize),
    );
  if (!o.bucketByLength) return cut(order);
  const pool = o.batchSize * 8;
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += pool) {
    batches.push(
      ...cut(order.slice(i, i + pool).sort((a, b) => train.lengths[a] - train.lengths[b] || a - b)),
    );
  }
  return shuffled(batches, seeds.bucketOrder(o.seed, epoch));
}

/** A batch's rows cut into `n` micro-batches as even as possible (empty ones dropped). */
export function microBatches(rows: number[], n: number): number[][] {
  const size = Math.ceil(rows.length / Math.max(1, n));
  const out: number[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** One line of the training log. */
export interface LogRow {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  /** Fraction of gradient elements kept per layer ("emb", "0".."L-1", "head"); frozen counts as 0. */
  kept?: Record<string, number>;
  dev_accuracy?: number;
}

/** Accuracy of the classifier on a shard (no dropout). */
export async function accuracy(
  params: Params,
  cfg: EncoderConfig,
  s: Shard,
  batchSize = 64,
): Promise<number> {
  let correct = 0;
  for (let i = 0; i < s.index.n; i += batchSize) {
    const rows = Array.from({ length: Math.min(batchSize, s.index.n - i) }, (_, k) => i + k);
    const b = batchRows(s, rows);
    const pred = tf.tidy(() =>
      classifierLogits(params, encode(params, cfg, b, null), null, headPooling(cfg, b)).argMax(-1)
    );
    const p = await pred.data();
    pred.dispose();
    for (let k = 0; k < rows.length; k++) if (p[k] === b.labels[k]) correct++;
  }
  return s.index.n ? correct / s.index.n : 0;
}

function layerKey(layer: number, L: number): string {
  return layer < 0 ? "emb" : layer >= L ? "head" : String(layer);
}

/**
 * Child-Tuning-D's Fisher information, as the reference code computes it: one pass over the
 * training set in shuffled batches with dropout on (train mode), each pool tensor's gradient
 * clipped to `clipNorm` on its own, then squared and averaged over batches.
 */
export async function fisherInformation(
  params: Params,
  cfg: EncoderConfig,
  train: Shard,
  o: { batchSize: number; clipNorm: number; dropout: number; seed: number },
): Promise<Map<string, Float32Array>> {
  const names = [...params.keys()].filter(inChildTuningDPool);
  const fisher = new Map<string, tf.Tensor>(names.map((n) => [n, tf.zerosLike(params.get(n)!)]));
  const order = shuffled(Array.from({ length: train.index.n }, (_, i) => i), seeds.fisherOrder(o.seed));
  const batches = Math.ceil(train.index.n / o.batchSize);
  for (let k = 0; k < batches; k++) {
    const b = batchRows(train, order.slice(k * o.batchSize, (k + 1) * o.batchSize));
    const drop = o.dropout > 0 ? { rate: o.dropout, seed: seeds.fisherDropout(o.seed, k), counter: 0 } : null;
    const { grads } = tf.variableGrads(
      () =>
        crossEntropy(
          classifierLogits(params, encode(params, cfg, b, drop), drop, headPooling(cfg, b)),
          b.labels,
        ),
      names.map((n) => params.get(n)!),
    );
    for (const n of names) {
      const next = tf.tidy(() => {
        const g = grads[params.get(n)!.name];
        const norm = g.square().sum().sqrt();
        const clipped = o.clipNorm > 0 ? g.mul(tf.minimum(1, tf.div(o.clipNorm, norm.add(1e-6)))) : g;
        return fisher.get(n)!.add(clipped.square().div(batches));
      });
      fisher.get(n)!.dispose();
      fisher.set(n, next);
    }
    tf.dispose(Object.values(grads));
  }
  const out = new Map<string, Float32Array>();
  for (const n of names) {
    out.set(n, (await fisher.get(n)!.data()) as Float32Array);
    fisher.get(n)!.dispose();
  }
  return out;
}

/**
 * Fine-tunes `params` in place on `train`, evaluating `dev` each epoch.
 * Returns the log, dev accuracy per epoch and the selected epoch (params hold its weights).
 * With `resume`, checkpoints there at epoch ends (and every `everyMs` within one) and
 * continues from the checkpoint it finds, bit-identically; `resumedAt` is that step.
 */
export async function finetune(
  params: Params,
  cfg: EncoderConfig,
  method: MethodConfig,
  train: Shard,
  dev: Shard,
  o: FinetuneOptions,
  report: (row: LogRow, total: number) => void,
  resume?: ResumeOptions,
): Promise<{ log: LogRow[]; dev: number[]; selected: number; resumedAt?: number }> {
  const L = cfg.num_hidden_layers;
  const names = [...params.keys()];
  const layers = new Map(names.map((n) => [n, layerOf(n, L)]));
  const opt = new AdamW(params, {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: o.weightDecay,
    fused: o.fused,
  });
  const fixed = new Map<string, tf.Tensor>();
  if (method.method === "childtuning-d") {
    const fisher = await fisherInformation(params, cfg, train, o);
    for (const [n, m] of childTuningDMasks(fisher, method.childtuning_pd)) {
      fixed.set(n, tf.tensor(m, params.get(n)!.shape));
    }
  }
  const perEpoch = Math.ceil(train.index.n / o.batchSize);
  const total = perEpoch * o.epochs;
  const log: LogRow[] = [];
  const devAcc: number[] = [];
  let best = -1, bestEpoch = -1;
  let bestSnapshot: Map<string, Float32Array> | null = null;
  // The Fisher pass above saw the initial weights, as in an uninterrupted run.
  const resumed = resume ? await loadResume<LogRow>(resume.dir, params, opt) : undefined;
  if (resumed) {
    log.push(...resumed.log);
    devAcc.push(...resumed.dev);
    ({ best, bestEpoch, bestSnapshot } = resumed);
  }
  const first = resumed?.step ?? 0;
  let saved = performance.now();
  const checkpoint = async (next: number) => {
    await saveResume(resume!.dir, params, opt, bestSnapshot, {
      step: next,
      log,
      dev: devAcc,
      best,
      bestEpoch,
    });
    saved = performance.now();
  };
  for (let epoch = Math.floor(first / perEpoch); epoch < o.epochs; epoch++) {
    const batches = epochBatches(train, o, epoch);
    for (let k = epoch * perEpoch < first ? first - epoch * perEpoch : 0; k < perEpoch; k++) {
      const step = epoch * perEpoch + k;
      const s: StepCtx = {
        step,
        epoch,
        totalSteps: total,
        epochs: o.epochs,
        stepsPerEpoch: perEpoch,
        seed: o.seed,
      };
      const updates = new Map<string, TensorUpdate>();
      const rates = new Map<string, number>();
      names.forEach((n, i) => {
        const fate = fateOf(method, n, layers.get(n)!, L, params.get(n)!.shape, i, s);
        if (!fate) return;
        updates.set(n, {
          mode: fate.mode,
          mask: fate.mask,
          fixedMask: fixed.get(n),
          lrScale: fate.lrScale * layerLrScale(layers.get(n)!, L, o),
        });
        rates.set(n, fate.rate);
      });
      const lr = lrAt(step, total, o.warmup, o.lr);
      // Micro-batch j draws its dropout from its own range of sites (< 1000 per forward).
      const lossOf = (rows: number[], j: number) => {
        const b = batchRows(train, rows);
        const drop = o.dropout > 0
          ? { rate: o.dropout, seed: seeds.dropoutStep(o.seed, step), counter: 1000 * j }
          : null;
        return () =>
          crossEntropy(
            classifierLogits(params, encode(params, cfg, b, drop), drop, headPooling(cfg, b)),
            b.labels,
          );
      };
      const micro = microBatches(batches[k], o.accumulate ?? 1);
      const r = micro.length > 1
        ? await accumulatedStep(
          params,
          micro.map((rows, j) => ({ loss: lossOf(rows, j), weight: rows.length / batches[k].length })),
          opt,
          updates,
          lr,
          o.clipNorm,
        )
        : await trainStep(params, lossOf(batches[k], 0), opt, updates, lr, o.clipNorm);
      const row: LogRow = {
        step: step + 1,
        epoch,
        loss: Number(r.loss.toFixed(5)),
        lr,
        grad_norm: Number(r.gradNorm.toFixed(4)),
      };
      if (o.logKeptEvery > 0 && step % o.logKeptEvery === 0) {
        row.kept = await keptByLayer(params, updates, layers, L);
      }
      log.push(row);
      report(row, total);
      if (resume && k < perEpoch - 1 && performance.now() - saved >= (resume.everyMs ?? 600e3)) {
        await checkpoint(step + 1);
      }
    }
    const acc = await accuracy(params, cfg, dev);
    devAcc.push(acc);
    log[log.length - 1].dev_accuracy = acc;
    report(log[log.length - 1], total);
    if (o.select === "best-dev" && acc > best) {
      best = acc;
      bestEpoch = epoch;
      bestSnapshot = new Map();
      for (const [n, v] of params) bestSnapshot.set(n, (await v.data()) as Float32Array);
    }
    if (resume && epoch + 1 < o.epochs) await checkpoint((epoch + 1) * perEpoch);
  }
  if (o.select === "best-dev" && bestSnapshot) {
    for (const [n, data] of bestSnapshot) {
      const t = tf.tensor(data, params.get(n)!.shape);
      params.get(n)!.assign(t);
      t.dispose();
    }
  }
  opt.dispose();
  tf.dispose([...fixed.values()]);
  return {
    log,
    dev: devAcc,
    selected: o.select === "best-dev" ? bestEpoch : o.epochs - 1,
    ...(resumed ? { resumedAt: first } : {}),
  };
}

/** Kept fraction of gradient elements per layer, counted from the masks the kernels apply. */
async function keptByLayer(
  params: Params,
  updates: Map<string, TensorUpdate>,
  layers: Map<string, number>,
  L: number,
): Promise<Record<string, number>> {
  const kept = new Map<string, number>(), total = new Map<string, number>();
  const pending: [string, tf.Tensor][] = [];
  for (const [n, v] of params) {
    const key = layerKey(layers.get(n)!, L);
    total.set(key, (total.get(key) ?? 0) + v.size);
    const u = updates.get(n);
    if (!u) continue;
    if (u.fixedMask) pending.push([key, u.fixedMask.sum()]);
    else if (u.mode !== "none" && u.mask) {
      pending.push([
        key,
        tf.tidy(() => maskTensor(v.shape, u.mask!).sum()),
      ]);
    } else kept.set(key, (kept.get(key) ?? 0) + v.size);
  }
  for (const [key, t] of pending) {
    kept.set(key, (kept.get(key) ?? 0) + (await t.data())[0]);
    t.dispose();
  }
  return Object.fromEntries([...total].map(([k, n]) => [k, Number(((kept.get(k) ?? 0) / n).toFixed(5))]));
}
