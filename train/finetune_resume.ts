/**
 * Fine-tuning checkpoints for resuming after a kill (a Slurm time limit, preemption,
 * `scancel`): the weights, AdamW's moments and per-tensor step counts, the best-dev snapshot
 * and the log so far. Every other input of a step (batch order, dropout, GradDrop masks) is a
 * function of the seed and the step, so a resumed run continues bit-identically.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Params } from "../model/encoder.ts";
import { type NamedTensor, readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import type { AdamW } from "./optimizer.ts";

/** Where to checkpoint (a stage's `ctx.work`) and how often besides each epoch's end. */
export interface ResumeOptions {
  dir: string;
  /** Milliseconds between mid-epoch checkpoints (default 10 minutes; 0: after every step). */
  everyMs?: number;
}

/** The loop's own state at a checkpoint; `step` is the next step to run. */
export interface LoopState<Row> {
  step: number;
  log: Row[];
  dev: number[];
  best: number;
  bestEpoch: number;
}

/**
 * Saves a checkpoint atomically (a sibling temp dir renamed over the last one), so a kill
 * while saving leaves the previous checkpoint whole.
 *
 * @example
 * ```ts ignore
 * await saveResume(`${ctx.work}/finetune`, params, opt, best, { step, log, dev, best: acc, bestEpoch });
 * ```
 */
export async function saveResume<Row>(
  dir: string,
  params: Params,
  opt: AdamW,
  bestSnapshot: Map<string, Float32Array> | null,
  state: LoopState<Row>,
): Promise<void> {
  const tensors = new Map<string, NamedTensor>();
  for (const [n, v] of params) {
    tensors.set(`p:${n}`, { shape: v.shape, data: (await v.data()) as Float32Array });
    tensors.set(`m:${n}`, { shape: v.shape, data: (await opt.m.get(n)!.data()) as Float32Array });
    tensors.set(`v:${n}`, { shape: v.shape, data: (await opt.v.get(n)!.data()) as Float32Array });
    const b = bestSnapshot?.get(n);
    if (b) tensors.set(`best:${n}`, { shape: v.shape, data: b });
  }
  const tmp = `${dir}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  await writeSafetensors(`${tmp}/state.safetensors`, tensors);
  await Deno.writeTextFile(
    `${tmp}/state.json`,
    JSON.stringify({ ...state, tensorSteps: Object.fromEntries(opt.steps) }),
  );
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, dir);
}

/**
 * Restores `params` and `opt` from the checkpoint in `dir` and returns the loop's state, or
 * undefined when there is none.
 *
 * @example
 * ```ts ignore
 * const resumed = await loadResume<LogRow>(`${ctx.work}/finetune`, params, opt);
 * ```
 */
export async function loadResume<Row>(
  dir: string,
  params: Params,
  opt: AdamW,
): Promise<(LoopState<Row> & { bestSnapshot: Map<string, Float32Array> | null }) | undefined> {
  let state: LoopState<Row> & { tensorSteps: Record<string, number> };
  try {
    state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
  } catch {
    return undefined;
  }
  const best = new Map<string, Float32Array>();
  for (const [name, t] of await readSafetensors(`${dir}/state.safetensors`)) {
    const [kind, ...rest] = name.split(":");
    const n = rest.join(":");
    if (kind === "best") {
      best.set(n, t.data);
      continue;
    }
    const target = kind === "p" ? params.get(n) : kind === "m" ? opt.m.get(n) : opt.v.get(n);
    if (!target) throw new Error(`${dir}: checkpoint tensor ${name} is not in this model`);
    const value = tf.tensor(t.data, t.shape);
    target.assign(value);
    value.dispose();
  }
  for (const [n, s] of Object.entries(state.tensorSteps)) opt.steps.set(n, s);
  const { tensorSteps: _, ...loop } = state;
  return { ...loop, bestSnapshot: best.size > 0 ? best : null };
}
