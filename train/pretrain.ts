/**
 * MLM (+ TLM) pretraining from scratch, data-parallel over worker threads: every step's
 * global batch is split across `workers`, each computes the gradient of its summed loss,
 * the gradients are added here and sent back, and every worker applies the same AdamW update
 * to its own identical copy of the weights. Checkpoints every `checkpointEvery` steps; a
 * rerun resumes from the last one and continues the same curve, because batches, MLM masks
 * and dropout depend only on (seed, step, row). The same resumable state, committed elsewhere
 * (`resume.from`), lets a run span machines whose caches start empty: it is checked against the
 * run's settings fingerprint, copied in, and every such resume is recorded.
 * @module
 */
import type { EncoderConfig } from "../model/config.ts";
import type { HostBatch } from "../model/encoder.ts";
import { mulberry32, seeds } from "../kernels/random.ts";
import { lrAt } from "./optimizer.ts";
import { epochOrder } from "./step.ts";
import type { BackendInfo } from "../model/backend.ts";
import type { BackendChoice } from "../platform/adapter.ts";
import { UserInputError } from "../pipeline/errors.ts";

/** Pretraining settings. */
export interface PretrainOptions {
  steps: number;
  /** Sequences per step, over all workers together. */
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
  /** Worker threads; each takes every `workers`-th row of a step's batch. */
  workers: number;
  backend: BackendChoice;
  /** Weight of the cross-lingual contrastive loss (0: off). */
  xlcoWeight: number;
  /** Translation pairs per step for the contrast, over all workers. */
  xlcoBatch: number;
  /** Pairs that see each other as negatives; `xlcoBatch` is split into such groups, spread over workers. */
  xlcoGroup: number;
  xlcoTemperature: number;
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
 * BERT masking of one row: `maskProb` of its non-special tokens are predicted; of those 80%
 * become `<mask>`, 10% a random token, 10% stay. Returns the positions and their labels and
 * corrupts `ids` in place.
 */
function mlmMaskRow(
  ids: Int32Array,
  v: MlmVocab,
  maskProb: number,
  rand: () => number,
): { at: number[]; labels: number[] } {
  const at: number[] = [], labels: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (v.special.has(ids[i]) || rand() >= maskProb) continue;
    at.push(i);
    labels.push(ids[i]);
    const r = rand();
    if (r < 0.8) ids[i] = v.mask;
    else if (r < 0.9) ids[i] = 4 + Math.floor(rand() * (v.vocabSize - 5));
  }
  return { at, labels };
}

let lastOrder: { key: string; order: number[] } | undefined;

/** The rows (sequence indices) of step `step`'s global batch. */
function batchOf(step: number, n: number, batchSize: number, seed: number): number[] {
  const perEpoch = Math.max(1, Math.floor(n / batchSize));
  const epoch = Math.floor(step / perEpoch);
  const key = `${n}/${seed}/${epoch}`;
  if (lastOrder?.key !== key) lastOrder = { key, order: epochOrder(n, seed, epoch) };
  const k = step % perEpoch;
  return lastOrder.order.slice(k * batchSize, (k + 1) * batchSize);
}

/** Rows padded to their longest, rounded up to a multiple of 8 (fewer shapes to compile). */
export function padRows(rows: Int32Array[], pad: number): HostBatch {
  const T = Math.ceil(Math.max(...rows.map((r) => r.length)) / 8) * 8;
  const ids = new Int32Array(rows.length * T).fill(pad);
  rows.forEach((r, k) => ids.set(r, k * T));
  return { ids, B: rows.length, T };
}

/**
 * A worker's part of a step: its rows, MLM-masked row by row with a stream that depends on
 * the row's place in the global batch, and the number of predicted tokens in the whole
 * global batch (every worker computes it, so each can normalise its loss before the sum).
 */
export function workerBatch(
  seqs: Int32Array[],
  step: number,
  o: Pick<PretrainOptions, "batchSize" | "seed" | "maskProb" | "workers">,
  rank: number,
  v: MlmVocab,
): { batch: HostBatch; at: Int32Array; labels: Int32Array; globalCount: number } {
  const global = batchOf(step, seqs.length, o.batchSize, o.seed);
  const rows: Int32Array[] = [], masks: { at: number[]; labels: number[] }[] = [];
  let globalCount = 0;
  global.forEach((r, i) => {
    const row = seqs[r].slice();
    const m = mlmMaskRow(row, v, o.maskProb, mulberry32(seeds.mlmRow(o.seed, step, i)));
    globalCount += m.at.length;
    if (i % o.workers !== rank) return;
    rows.push(row);
    masks.push(m);
  });
  const batch = padRows(rows, v.pad);
  const at = masks.flatMap((m, k) => m.at.map((a) => k * batch.T + a));
  return {
    batch,
    at: Int32Array.from(at),
    labels: Int32Array.from(masks.flatMap((m) => m.labels)),
    globalCount,
  };
}

/** The translation-pair groups of step `step` that worker `rank` handles (pair indices per group). */
export function workerPairGroups(
  nPairs: number,
  step: number,
  o: Pick<PretrainOptions, "xlcoBatch" | "xlcoGroup" | "seed" | "workers">,
  rank: number,
): number[][] {
  if (nPairs === 0 || o.xlcoBatch === 0) return [];
  const global = batchOf(step, nPairs, o.xlcoBatch, seeds.pairOrder(o.seed));
  const groups: number[][] = [];
  for (let g = 0; g * o.xlcoGroup < global.length; g++) {
    if (g % o.workers === rank) groups.push(global.slice(g * o.xlcoGroup, (g + 1) * o.xlcoGroup));
  }
  return groups;
}

/** Groups per step over all workers. */
export function pairGroupsPerStep(o: Pick<PretrainOptions, "xlcoBatch" | "xlcoGroup">): number {
  return Math.ceil(o.xlcoBatch / o.xlcoGroup);
}

/** One row of the loss curve. */
export interface CurveRow {
  step: number;
  loss: number;
  grad_norm: number;
  lr: number;
  /** Predicted (masked) tokens this step. */
  predicted: number;
  /** MLM part of the loss (nats per predicted token). */
  mlm: number;
  /** Contrastive part (mean over pair groups), when on. */
  xlco?: number;
}

/** Messages between the coordinator and a worker (see `pretrain_worker.ts`). */
export type ToWorker =
  | {
    type: "init";
    cfg: EncoderConfig;
    flat: Int32Array;
    offsets: Int32Array;
    pairs: { a: Int32Array; b: Int32Array }[];
    vocab: { vocabSize: number; mask: number; pad: number; special: number[] };
    opts: PretrainOptions;
    rank: number;
    resume?: string;
    /** A checkpoint to start from instead of random weights (a continued segment). */
    init?: string;
  }
  | { type: "grads"; step: number }
  | { type: "apply"; sum: Float32Array; lr: number }
  | { type: "save"; dir: string; step: number }
  | { type: "close" };

/** Replies from a worker. */
export type FromWorker =
  | { type: "ready"; step: number; backend: BackendInfo }
  | { type: "grads"; flat: Float32Array; mlmSum: number; count: number; xlcoSum: number; groups: number }
  | { type: "applied"; gradNorm: number }
  | { type: "saved" }
  | { type: "error"; message: string };

class WorkerHandle {
  private readonly worker: Worker;
  private waiting: ((m: FromWorker) => void)[] = [];
  private failed?: Error;

  constructor(rank: number) {
    this.worker = new Worker(new URL("./pretrain_worker.ts", import.meta.url), {
      type: "module",
      name: `pretrain-${rank}`,
    });
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const next = this.waiting.shift();
      if (e.data.type === "error") this.failed = new Error(`pretraining worker ${rank}: ${e.data.message}`);
      next?.(e.data);
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failed = new Error(`pretraining worker ${rank}: ${e.message}`);
      for (const w of this.waiting.splice(0)) w({ type: "error", message: e.message });
    };
  }

  async ask<T extends FromWorker["type"]>(
    msg: ToWorker,
    expect: T,
    transfer: Transferable[] = [],
  ): Promise<Extract<FromWorker, { type: T }>> {
    if (this.failed) throw this.failed;
    const reply = new Promise<FromWorker>((resolve) => this.waiting.push(resolve));
    this.worker.postMessage(msg, transfer);
    const m = await reply;
    if (this.failed) throw this.failed;
    if (m.type !== expect) throw new Error(`pretraining worker: expected '${expect}', got '${m.type}'`);
    return m as Extract<FromWorker, { type: T }>;
  }

  terminate(): void {
    this.worker.terminate();
  }
}

/** Where pretraining keeps its resumable state. */
function resumeDir(work: string): string {
  return `${work}/checkpoint`;
}

/** Where a run picked up resumable state that was not its own (a committed copy). */
export interface Resume {
  /** The step it continued from. */
  step: number;
  /** The directory the state came from, relative to the working directory when under it. */
  from: string;
}

interface Resumable {
  step: number;
  curve: CurveRow[];
  settings?: string;
  resumes: Resume[];
}

async function readResumable(dir: string): Promise<Resumable | undefined> {
  let state;
  try {
    state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
  } catch {
    return undefined;
  }
  const curve = (await Deno.readTextFile(`${dir}/curve.jsonl`)).split("\n").filter(Boolean).map((l) =>
    JSON.parse(l)
  );
  return { step: state.step, curve, settings: state.settings, resumes: state.resumes ?? [] };
}

/**
 * Copies committed resumable state into the run's own checkpoint directory, once it is known
 * to come from a run with the same settings; a copy from other settings would continue a
 * different run under this one's name.
 */
async function adopt(from: string, ck: string, settings: string): Promise<Resumable> {
  const state = await readResumable(from);
  if (!state) throw new UserInputError(`${from}/state.json: no resumable pretraining state there`);
  if (state.settings !== settings) {
    throw new UserInputError(
      `${from}/state.json: field 'settings' is ${
        state.settings ?? "missing"
      }, but this run's settings fingerprint is ${settings}: the state comes from another run (params, corpora or tokenizer differ)`,
    );
  }
  // Copied aside and renamed into place: a copy cut off half-way must not pass for the run's own state.
  const tmp = `${ck}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${tmp}/${e.name}`);
  }
  // Relative to the working directory, so state committed on one machine does not name another's paths.
  const resumes = [...state.resumes, { step: state.step, from: from.replace(`${Deno.cwd()}/`, "") }];
  await Deno.writeTextFile(
    `${tmp}/state.json`,
    JSON.stringify({ ...JSON.parse(await Deno.readTextFile(`${tmp}/state.json`)), resumes }),
  );
  await Deno.rename(tmp, ck);
  return { ...state, resumes };
}

/**
 * Runs (or resumes) pretraining, from random weights or from the checkpoint in `dirs.init`;
 * the final weights go to `dirs.out/checkpoint` (HF layout). `resume.settings` fingerprints
 * everything that decides the run; resumable state is saved with it, and state in
 * `resume.from` is used only when the run has none of its own and the fingerprints agree.
 *
 * @example
 * ```ts ignore
 * const { curve } = await pretrain(cfg, seqs, pairs, vocab, opts, { work, out }, { settings }, (row) => console.log(row.loss));
 * ```
 */
export async function pretrain(
  cfg: EncoderConfig,
  seqs: Int32Array[],
  pairs: { a: Int32Array; b: Int32Array }[],
  vocab: MlmVocab,
  o: PretrainOptions,
  dirs: { work: string; out: string; init?: string },
  resume: { settings: string; from?: string },
  report: (row: CurveRow, tokensPerSecond: number) => void,
): Promise<{ curve: CurveRow[]; resumedFrom: number; resumes: Resume[]; backend: BackendInfo }> {
  const ck = resumeDir(dirs.work);
  const own = await readResumable(ck);
  const resumed = own ?? (resume.from ? await adopt(resume.from, ck, resume.settings) : undefined);
  const resumes = resumed?.resumes ?? [];
  const offsets = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => offsets[i + 1] = offsets[i] + s.length);
  const flat = new Int32Array(offsets[seqs.length]);
  seqs.forEach((s, i) => flat.set(s, offsets[i]));
  const workers = Array.from({ length: o.workers }, (_, r) => new WorkerHandle(r));
  try {
    const ready = await Promise.all(workers.map((w, rank) =>
      w.ask({
        type: "init",
        cfg,
        flat,
        offsets,
        pairs,
        vocab: { vocabSize: vocab.vocabSize, mask: vocab.mask, pad: vocab.pad, special: [...vocab.special] },
        opts: o,
        rank,
        resume: resumed ? ck : undefined,
        init: dirs.init,
      }, "ready")
    ));
    const start = resumed?.step ?? 0;
    const curve = resumed?.curve ?? [];
    let t0 = performance.now(), tokens = 0;
    for (let step = start; step < o.steps; step++) {
      const parts = await Promise.all(workers.map((w) => w.ask({ type: "grads", step }, "grads")));
      const sum = parts[0].flat;
      for (const p of parts.slice(1)) for (let i = 0; i < sum.length; i++) sum[i] += p.flat[i];
      const total = (k: "mlmSum" | "count" | "xlcoSum" | "groups") => parts.reduce((a, p) => a + p[k], 0);
      const lr = lrAt(step, o.steps, o.warmup, o.lr);
      const applied = await Promise.all(workers.map((w) => w.ask({ type: "apply", sum, lr }, "applied")));
      const mlm = total("mlmSum") / Math.max(1, total("count"));
      const xlco = total("groups") > 0 ? total("xlcoSum") / total("groups") : undefined;
      const row: CurveRow = {
        step: step + 1,
        loss: Number((mlm + (xlco ?? 0) * o.xlcoWeight).toFixed(5)),
        grad_norm: Number(applied[0].gradNorm.toFixed(4)),
        lr,
        predicted: total("count"),
        mlm: Number(mlm.toFixed(5)),
        ...(xlco !== undefined ? { xlco: Number(xlco.toFixed(5)) } : {}),
      };
      curve.push(row);
      tokens += batchOf(step, seqs.length, o.batchSize, o.seed).reduce((a, r) => a + seqs[r].length, 0);
      report(row, tokens / ((performance.now() - t0) / 1000));
      if ((step + 1) % o.checkpointEvery === 0 && step + 1 < o.steps) {
        await saveResume(workers[0], ck, { step: step + 1, settings: resume.settings, resumes }, curve);
        tokens = 0;
        t0 = performance.now();
      }
    }
    await workers[0].ask({ type: "save", dir: `${dirs.out}/checkpoint`, step: -1 }, "saved");
    await Promise.all(workers.map((w) => w.ask({ type: "close" }, "saved")));
    return { curve, resumedFrom: start, resumes, backend: ready[0].backend };
  } finally {
    for (const w of workers) w.terminate();
  }
}

async function saveResume(
  w: WorkerHandle,
  dir: string,
  at: { step: number; settings: string; resumes: Resume[] },
  curve: CurveRow[],
): Promise<void> {
  const tmp = `${dir}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await w.ask({ type: "save", dir: tmp, step: at.step }, "saved");
  await Deno.writeTextFile(`${tmp}/curve.jsonl`, curve.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const state = JSON.parse(await Deno.readTextFile(`${tmp}/state.json`));
  await Deno.writeTextFile(`${tmp}/state.json`, JSON.stringify({ ...state, ...at }));
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, dir);
}

/**
 * Tokens each language contributed over the steps run, from the sequences' language counts.
 *
 * @example
 * ```ts ignore
 * const seen = tokensSeen(langCounts, steps, batchSize, seed); // Map lang index -> tokens
 * ```
 */
export function tokensSeen(
  langs: Map<number, number>[],
  steps: number,
  batchSize: number,
  seed: number,
): Map<number, number> {
  const out = new Map<number, number>();
  for (let s = 0; s < steps; s++) {
    for (const r of batchOf(s, langs.length, batchSize, seed)) {
      for (const [l, n] of langs[r]) out.set(l, (out.get(l) ?? 0) + n);
    }
  }
  return out;
}
