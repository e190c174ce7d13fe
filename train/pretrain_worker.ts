/**
 * One data-parallel pretraining worker (a Web Worker): holds a full copy of the weights and
 * AdamW state, computes the gradient of its rows' summed MLM loss, and applies the summed
 * gradient the coordinator sends back. Messages are handled strictly one at a time.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../model/backend.ts";
import {
  crossEntropy,
  encode,
  initParams,
  meanPool,
  mlmLogits,
  pairContrast,
  type Params,
} from "../model/encoder.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import type { EncoderConfig } from "../model/config.ts";
import { AdamW, type TensorUpdate } from "./optimizer.ts";
import { seeds } from "../kernels/random.ts";
import {
  type FromWorker,
  type MlmVocab,
  padRows,
  pairGroupsPerStep,
  type PretrainOptions,
  type ToWorker,
  workerBatch,
  workerPairGroups,
} from "./pretrain.ts";

interface State {
  cfg: EncoderConfig;
  seqs: Int32Array[];
  pairs: { a: Int32Array; b: Int32Array }[];
  vocab: MlmVocab;
  o: PretrainOptions;
  rank: number;
  params: Params;
  opt: AdamW;
  names: string[];
  updates: Map<string, TensorUpdate>;
  pending?: { step: number };
}

let st: State | undefined;

async function init(m: Extract<ToWorker, { type: "init" }>): Promise<FromWorker> {
  const backend = await initBackend(m.opts.backend);
  const heads = { mlm: true, numLabels: 0 };
  const from = m.resume ?? m.init;
  const params = from
    ? (await loadCheckpoint(from, heads, m.opts.seed)).params
    : initParams(m.cfg, heads, m.opts.seed);
  // RoBERTa's pretraining betas and epsilon.
  const opt = new AdamW(params, {
    beta1: 0.9,
    beta2: 0.98,
    eps: 1e-6,
    weightDecay: m.opts.weightDecay,
    fused: m.opts.fused,
  });
  let step = 0;
  if (m.resume) {
    for (const [name, t] of await readSafetensors(`${m.resume}/optimizer.safetensors`)) {
      const [kind, ...rest] = name.split(":");
      const value = tf.tensor(t.data, t.shape);
      (kind === "m" ? opt.m : opt.v).get(rest.join(":"))!.assign(value);
      value.dispose();
    }
    const state = JSON.parse(await Deno.readTextFile(`${m.resume}/state.json`));
    for (const [n, s] of Object.entries(state.tensorSteps as Record<string, number>)) opt.steps.set(n, s);
    step = state.step;
  }
  const seqs = Array.from(
    { length: m.offsets.length - 1 },
    (_, i) => m.flat.subarray(m.offsets[i], m.offsets[i + 1]),
  );
  const names = [...params.keys()];
  st = {
    cfg: m.cfg,
    seqs,
    pairs: m.pairs,
    vocab: { ...m.vocab, special: new Set(m.vocab.special) },
    o: m.opts,
    rank: m.rank,
    params,
    opt,
    names,
    updates: new Map(names.map((n) => [n, { mode: "none" as const }])),
  };
  return { type: "ready", step, backend };
}

/**
 * The gradient of this worker's share of the step's loss, already normalised by the global
 * batch: MLM summed over its rows / predicted tokens in the whole batch, plus
 * `xlcoWeight` x contrast summed over its pair groups / groups in the whole batch. The
 * coordinator only has to add the workers' gradients.
 */
async function grads(step: number): Promise<FromWorker> {
  const s = st!;
  const { batch, at, labels, globalCount } = workerBatch(s.seqs, step, s.o, s.rank, s.vocab);
  const groups = s.o.xlcoWeight > 0 ? workerPairGroups(s.pairs.length, step, s.o, s.rank) : [];
  const drop = s.o.dropout > 0
    ? { rate: s.o.dropout, seed: seeds.dropoutWorker(seeds.dropoutStep(s.o.seed, step), s.rank), counter: 0 }
    : null;
  const vars = s.names.map((n) => s.params.get(n)!);
  const flat = new Float32Array(vars.reduce((a, v) => a + v.size, 0));
  let mlmSum = 0, xlcoSum = 0;
  if (labels.length > 0 || groups.length > 0) {
    const parts: tf.Scalar[] = [];
    const { grads } = tf.variableGrads(() => {
      let loss = tf.scalar(0);
      if (labels.length > 0) {
        const mlm = crossEntropy(mlmLogits(s.params, s.cfg, encode(s.params, s.cfg, batch, drop), at), labels)
          .mul(labels.length) as tf.Scalar;
        parts.push(tf.keep(mlm));
        loss = loss.add(mlm.div(Math.max(1, globalCount)));
      }
      for (const g of groups) {
        // Each side padded on its own: English rows are much shorter than Thai or Khmer ones.
        const side = (which: "a" | "b") => {
          const rows = padRows(g.map((i) => s.pairs[i][which]), s.vocab.pad);
          return meanPool(encode(s.params, s.cfg, rows, drop), rows, s.vocab.pad);
        };
        const c = pairContrast(side("a"), side("b"), s.o.xlcoTemperature);
        parts.push(tf.keep(c));
        loss = loss.add(c.mul(s.o.xlcoWeight / pairGroupsPerStep(s.o)));
      }
      return loss as tf.Scalar;
    }, vars);
    let o = 0;
    for (const v of vars) {
      flat.set((await grads[v.name].data()) as Float32Array, o);
      o += v.size;
    }
    // Async reads: tfjs-webgpu's dataSync needs a 2D OffscreenCanvas, which Deno lacks.
    const values = await Promise.all(parts.map(async (p) => (await p.data())[0]));
    if (labels.length > 0) mlmSum = values.shift()!;
    xlcoSum = values.reduce((a, b) => a + b, 0);
    tf.dispose([...parts, ...Object.values(grads)]);
  }
  return { type: "grads", flat, mlmSum, count: labels.length, xlcoSum, groups: groups.length };
}

async function apply(sum: Float32Array, lr: number): Promise<FromWorker> {
  const s = st!;
  const gradMap = new Map<string, tf.Tensor>();
  let o = 0;
  for (const n of s.names) {
    const v = s.params.get(n)!;
    gradMap.set(n, tf.tensor(sum.subarray(o, o + v.size), v.shape));
    o += v.size;
  }
  const gradNorm = await s.opt.step(gradMap, s.o.clipNorm, lr, s.updates);
  tf.dispose([...gradMap.values()]);
  return { type: "applied", gradNorm };
}

async function save(dir: string, step: number): Promise<FromWorker> {
  const s = st!;
  await saveCheckpoint(dir, s.cfg, s.params);
  if (step >= 0) {
    const moments = new Map();
    for (const [n, v] of s.opt.m) moments.set(`m:${n}`, { shape: v.shape, data: await v.data() });
    for (const [n, v] of s.opt.v) moments.set(`v:${n}`, { shape: v.shape, data: await v.data() });
    await writeSafetensors(`${dir}/optimizer.safetensors`, moments);
    await Deno.writeTextFile(
      `${dir}/state.json`,
      JSON.stringify({ step, tensorSteps: Object.fromEntries(s.opt.steps) }),
    );
  }
  return { type: "saved" };
}

async function handle(m: ToWorker): Promise<[FromWorker, Transferable[]]> {
  switch (m.type) {
    case "init":
      return [await init(m), []];
    case "grads": {
      const r = await grads(m.step);
      return [r, r.type === "grads" ? [r.flat.buffer as ArrayBuffer] : []];
    }
    case "apply":
      return [await apply(m.sum, m.lr), []];
    case "save":
      return [await save(m.dir, m.step), []];
    case "close":
      st?.opt.dispose();
      for (const v of st?.params.values() ?? []) v.dispose();
      return [{ type: "saved" }, []];
  }
}

/** The worker global, typed by hand: this module is also type-checked as part of window programs. */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<ToWorker>) => void;
  postMessage(m: FromWorker, o?: { transfer: Transferable[] }): void;
};

let queue = Promise.resolve();
scope.onmessage = (e) => {
  queue = queue.then(async () => {
    try {
      const [reply, transfer] = await handle(e.data);
      scope.postMessage(reply, { transfer });
    } catch (err) {
      scope.postMessage({ type: "error", message: (err as Error).stack ?? String(err) });
    }
  });
};
