/**
 * Masked language modelling (and optional TLM on aligned UDHR paragraphs) from scratch,
 * with AdamW, warmup + linear decay, clipping, and resumable checkpoints.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type EncoderConfig } from "./config.ts";
import {
  crossEntropy,
  encode,
  type HostBatch,
  initParams,
  mlmLogits,
  mulberry32,
  type Params,
} from "./encoder.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import { AdamW, lrAt } from "../train/optimizer.ts";
import { epochOrder, trainStep } from "../train/step.ts";

/** Pretraining settings. */
export interface PretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  clipNorm: number;
  maskProb: number;
  seed: number;
  dropout: number;
  checkpointEvery: number;
  fused: boolean;
}

/** Special token ids MLM must know. */
export interface MlmVocab {
  vocabSize: number;
  mask: number;
  pad: number;
  /** Ids never chosen for prediction (<s>, </s>, <pad>). */
  special: Set<number>;
}

/**
 * BERT masking of one batch: `maskProb` of non-special tokens are predicted; of those 80%
 * become `<mask>`, 10% a random token, 10% stay. Returns the corrupted ids, the flat
 * positions and their labels.
 */
export function mlmMask(
  batch: HostBatch,
  v: MlmVocab,
  maskProb: number,
  rand: () => number,
): { ids: Int32Array; at: Int32Array; labels: Int32Array } {
  const ids = batch.ids.slice();
  const at: number[] = [], labels: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (v.special.has(ids[i]) || rand() >= maskProb) continue;
    at.push(i);
    labels.push(ids[i]);
    const r = rand();
    if (r < 0.8) ids[i] = v.mask;
    else if (r < 0.9) ids[i] = 4 + Math.floor(rand() * (v.vocabSize - 5));
  }
  if (at.length === 0) {
    // Always predict at least one token so the loss is defined.
    const i = ids.findIndex((x) => !v.special.has(x));
    at.push(i);
    labels.push(ids[i]);
    ids[i] = v.mask;
  }
  return { ids, at: Int32Array.from(at), labels: Int32Array.from(labels) };
}

/** A tokenised sequence for pretraining. */
export type Sequence = Int32Array;

function makeBatch(seqs: Sequence[], rows: number[], pad: number): HostBatch {
  const longest = Math.max(...rows.map((r) => seqs[r].length));
  const T = Math.ceil(longest / 8) * 8;
  const ids = new Int32Array(rows.length * T).fill(pad);
  rows.forEach((r, i) => ids.set(seqs[r], i * T));
  return { ids, B: rows.length, T };
}

/**
 * Runs (or resumes) pretraining and writes the final checkpoint to `outDir/checkpoint`.
 * Checkpoints go to `workDir` every `checkpointEvery` steps; a rerun after a crash resumes
 * from the last one and reproduces the same curve (batches and masks depend only on seed
 * and step).
 */
export async function pretrain(
  cfg: EncoderConfig,
  seqs: Sequence[],
  vocab: MlmVocab,
  o: PretrainOptions,
  dirs: { work: string; out: string },
  report: (step: number, row: Record<string, number>) => void,
): Promise<{ curve: Record<string, number>[]; resumedFrom: number }> {
  const heads = { mlm: true, numLabels: 0 };
  const ck = `${dirs.work}/checkpoint`;
  const state = await readJson(`${ck}/state.json`);
  const params: Params = state
    ? (await loadCheckpoint(ck, heads, o.seed)).params
    : initParams(cfg, heads, o.seed);
  // RoBERTa's pretraining betas and epsilon.
  const opt = new AdamW(params, {
    beta1: 0.9,
    beta2: 0.98,
    eps: 1e-6,
    weightDecay: o.weightDecay,
    fused: o.fused,
  });
  let start = 0;
  let curve: Record<string, number>[] = [];
  if (state) {
    const moments = await readSafetensors(`${ck}/optimizer.safetensors`);
    for (const [name, t] of moments) {
      const [kind, ...rest] = name.split(":");
      const target = (kind === "m" ? opt.m : opt.v).get(rest.join(":"))!;
      const value = tf.tensor(t.data, t.shape);
      target.assign(value);
      value.dispose();
    }
    for (const [n, s] of Object.entries(state.tensorSteps as Record<string, number>)) opt.steps.set(n, s);
    start = state.step as number;
    curve = (await Deno.readTextFile(`${ck}/curve.jsonl`)).split("\n").filter(Boolean).map((l) =>
      JSON.parse(l)
    );
  }
  const updates = new Map([...params.keys()].map((n) => [n, { mode: "none" as const }]));
  const perEpoch = Math.max(1, Math.floor(seqs.length / o.batchSize));
  let tokens = 0, t0 = performance.now();
  for (let step = start; step < o.steps; step++) {
    const epoch = Math.floor(step / perEpoch);
    const order = epochOrder(seqs.length, o.seed, epoch);
    const rows = order.slice((step % perEpoch) * o.batchSize, (step % perEpoch + 1) * o.batchSize);
    const batch = makeBatch(seqs, rows, vocab.pad);
    const rand = mulberry32(o.seed * 31 + step);
    const m = mlmMask(batch, vocab, o.maskProb, rand);
    const corrupted = { ...batch, ids: m.ids };
    const drop = o.dropout > 0 ? { rate: o.dropout, seed: o.seed * 100003 + step, counter: 0 } : null;
    const lr = lrAt(step, o.steps, o.warmup, o.lr);
    const r = await trainStep(
      params,
      () => crossEntropy(mlmLogits(params, cfg, encode(params, cfg, corrupted, drop), m.at), m.labels),
      opt,
      updates,
      lr,
      o.clipNorm,
    );
    tokens += batch.B * batch.T;
    const row = {
      step: step + 1,
      loss: Number(r.loss.toFixed(5)),
      grad_norm: Number(r.gradNorm.toFixed(4)),
      lr,
    };
    curve.push(row);
    const secs = (performance.now() - t0) / 1000;
    report(step + 1, { ...row, tokens_per_s: tokens / secs });
    if ((step + 1) % o.checkpointEvery === 0 && step + 1 < o.steps) {
      await saveResume(ck, cfg, params, opt, step + 1, curve);
      tokens = 0;
      t0 = performance.now();
    }
  }
  await saveCheckpoint(`${dirs.out}/checkpoint`, cfg, params);
  const resumedFrom = start;
  opt.dispose();
  for (const v of params.values()) v.dispose();
  return { curve, resumedFrom };
}

async function saveResume(
  dir: string,
  cfg: EncoderConfig,
  params: Params,
  opt: AdamW,
  step: number,
  curve: Record<string, number>[],
): Promise<void> {
  const tmp = `${dir}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await saveCheckpoint(tmp, cfg, params);
  const moments = new Map();
  for (const [n, v] of opt.m) moments.set(`m:${n}`, { shape: v.shape, data: await v.data() });
  for (const [n, v] of opt.v) moments.set(`v:${n}`, { shape: v.shape, data: await v.data() });
  await writeSafetensors(`${tmp}/optimizer.safetensors`, moments);
  await Deno.writeTextFile(`${tmp}/curve.jsonl`, curve.map((r) => JSON.stringify(r)).join("\n") + "\n");
  await Deno.writeTextFile(
    `${tmp}/state.json`,
    JSON.stringify({ step, tensorSteps: Object.fromEntries(opt.steps) }),
  );
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, dir);
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
}
