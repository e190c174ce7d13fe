/**
 * Times fine-tuning steps of an XLM-R-shaped sequence classifier (random init, HF names)
 * with the project's encoder, AdamW and methods, and prints one JSON line. The GPU check runs
 * it at XLM-R base size (250,002 x 768, 12 layers) at batch 32 x 128; `deno task bench --only
 * xlmr_base_step` runs it small enough for a CPU; `--config tiny` checks the script itself.
 *
 *     deno run -A platform/gpu_check/step_bench.ts [--config base|tiny|small|large] [--vocab N]
 *       [--batch 32] [--seq 128] [--steps 3] [--methods full,graddrop] [--backend webgpu] [--trace]
 *
 * After every phase (a method's first step, its timed steps) it prints the figures so far as a
 * JSON line with `complete: false`, so a run stopped by a time limit still reports them.
 * @module
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import { type EncoderConfig, NAMED_CONFIGS, namedConfig } from "../../model/config.ts";
import {
  classifierLogits,
  crossEntropy,
  encode,
  initParams,
  layerOf,
  type Params,
} from "../../model/encoder.ts";
import { WORD_EMBEDDINGS } from "../../model/row_shards.ts";
import { AdamW, type TensorUpdate } from "../../train/optimizer.ts";
import { trainStep } from "../../train/step.ts";
import { fateOf, type Method, resolveGradDrop } from "../../train/methods.ts";
import type { BackendChoice } from "../adapter.ts";
import { gpuEnv } from "../gpu_env.ts";
import { type CountingDevice, countingDevice, type Counts } from "../webgpu_census/counting_device.ts";
import {
  registerTrainingBackend,
  type TrainingDeviceInfo,
  trainingDeviceInfo,
} from "../../model/webgpu_device.ts";

/** What to time. */
export interface StepBenchOptions {
  config: keyof typeof NAMED_CONFIGS;
  vocab: number;
  batch: number;
  seq: number;
  /** Timed steps per method, after one untimed warm-up step (shader compilation). */
  steps: number;
  methods: Method[];
  backend: BackendChoice;
  labels: number;
  /**
   * Count WebGPU traffic per phase (the census's counting device) and split each timed step
   * into GPU time (timestamp queries), time in WebGPU calls, waiting, and JS.
   */
  trace?: boolean;
  /** Called with the figures so far after every phase. */
  onPhase?: (partial: StepBenchResult) => void;
}

/** The figures, in one flat object. */
export interface StepBenchResult {
  config: string;
  vocab: number;
  batch: number;
  seq: number;
  backend: string;
  adapter: string | null;
  binding_limit: number | null;
  embedding_blocks: number;
  params: number;
  init_s: number;
  /** Per method: the warm-up step (compiles shaders) and the mean of the timed steps. */
  first_step_s: Record<string, number>;
  step_ms: Record<string, number>;
  loss: number;
  /** Norm of the clipped gradient reaching the word embedding in the first step. */
  embedding_grad_norm: number;
  /** Per phase (`full:first`, `full:timed`, ...), the census counts when traced, with `gpu_ms`. */
  webgpu_calls: Record<string, Counts & { gpu_ms: number | null }>;
  /**
   * Per method, one timed step's milliseconds split (when traced): `gpu_ms` from timestamp
   * queries (null without `timestamp-query`), `driver_ms` inside WebGPU calls (on a software
   * adapter this holds the shaders too), `wait_ms` awaiting the GPU, `js_ms` the rest.
   */
  split_ms: Record<
    string,
    { wall_ms: number; gpu_ms: number | null; driver_ms: number; wait_ms: number; js_ms: number }
  >;
  /** The adapter, limits and features of the device tfjs runs on (not a second adapter). */
  tfjs_device: TrainingDeviceInfo | null;
  /** False in the lines printed after each phase, true in the last. */
  complete: boolean;
  peak_rss_mb: number;
}

/** The batch every bench uses: `<s>`, random ids, `</s>`; no padding (same as torch_step.py). */
export function benchBatch(
  cfg: EncoderConfig,
  B: number,
  T: number,
): { ids: Int32Array; labels: Int32Array } {
  let x = 12345;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const ids = Int32Array.from({ length: B * T }, (_, i) => {
    const t = i % T;
    return t === 0 ? cfg.bos_token_id : t === T - 1 ? cfg.eos_token_id : 3 + (next() % (cfg.vocab_size - 3));
  });
  return { ids, labels: Int32Array.from({ length: B }, (_, i) => i % 7) };
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) / 1024 : Deno.memoryUsage().rss / 2 ** 20;
}

/** What each parameter does in the first step of `method` (as the fine-tuning loop decides it). */
export function updatesFor(method: Method, params: Params, cfg: EncoderConfig): Map<string, TensorUpdate> {
  const L = cfg.num_hidden_layers;
  const mcfg = {
    method,
    graddrop: resolveGradDrop(method, {}),
    unfreeze_every: 1 as const,
    childtuning_pf: 0.3,
    childtuning_pd: 0.3,
    childtuning_mask_head: true,
    lr_match_rate: 0.5,
  };
  const s = { step: 0, epoch: 0, totalSteps: 100, epochs: 1, stepsPerEpoch: 100, seed: 1 };
  const updates = new Map<string, TensorUpdate>();
  [...params.keys()].forEach((n, i) => {
    const fate = fateOf(mcfg, n, layerOf(n, L), L, params.get(n)!.shape, i, s);
    if (fate) updates.set(n, { mode: fate.mode, mask: fate.mask });
  });
  return updates;
}

/**
 * Builds the model and times `steps` steps per method.
 *
 * @example
 * ```ts ignore
 * const r = await stepBench({ config: "tiny", vocab: 1000, batch: 2, seq: 16, steps: 1, methods: ["full"], backend: "webgpu", labels: 7 });
 * ```
 */
export async function stepBench(o: StepBenchOptions): Promise<StepBenchResult> {
  let counting: CountingDevice | null = null;
  if (o.trace) registerTrainingBackend((d) => (counting = countingDevice(d, { timestamps: true })).device);
  const info = await initBackend(o.backend);
  const cfg = { ...namedConfig(o.config, o.vocab), max_position_embeddings: Math.max(514, o.seq + 2) };
  const log = (s: string) => console.error(`step_bench: ${s}`);
  let t0 = performance.now();
  const params = initParams(cfg, { mlm: false, numLabels: o.labels }, 1);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: true });
  const initS = (performance.now() - t0) / 1000;
  const blocks = [...params.keys()].filter((n) =>
    n === WORD_EMBEDDINGS || n.startsWith(`${WORD_EMBEDDINGS}#`)
  );
  const nParams = [...params.values()].reduce((a, v) => a + v.size, 0);
  log(
    `${o.config} (${nParams} parameters, embedding in ${blocks.length} block(s)) on ${info.backend}: ${info.reason}`,
  );
  const { ids, labels } = benchBatch(cfg, o.batch, o.seq);
  const batch = { ids, B: o.batch, T: o.seq };
  let step = 0, loss = NaN, embNorm = NaN;
  const first: Record<string, number> = {}, ms: Record<string, number> = {};
  const calls: StepBenchResult["webgpu_calls"] = {};
  const split: StepBenchResult["split_ms"] = {};
  const take = async () => {
    const c = counting as CountingDevice | null;
    return c ? { ...c.take(), gpu_ms: await c.gpuMs() } : null;
  };
  await take();
  const result = (complete: boolean): StepBenchResult => ({
    config: o.config,
    vocab: o.vocab,
    batch: o.batch,
    seq: o.seq,
    backend: info.backend,
    adapter: trainingDeviceInfo()?.description ?? info.adapter ?? null,
    binding_limit: info.bindingLimit ?? null,
    embedding_blocks: blocks.length,
    params: nParams,
    init_s: initS,
    first_step_s: first,
    step_ms: ms,
    loss,
    embedding_grad_norm: embNorm,
    peak_rss_mb: peakRssMb(),
    webgpu_calls: calls,
    split_ms: split,
    tfjs_device: trainingDeviceInfo(),
    complete,
  });
  const phase = async (name: string, steps = 1, wall = 0) => {
    const c = await take();
    if (c) {
      calls[name] = c;
      if (wall > 0) {
        const per = (x: number) => x / steps;
        split[name.split(":")[0]] = {
          wall_ms: per(wall),
          gpu_ms: c.gpu_ms === null ? null : per(c.gpu_ms),
          driver_ms: per(c.driver_ms),
          wait_ms: per(c.wait_ms),
          js_ms: per(wall - c.driver_ms - c.wait_ms),
        };
      }
    }
    o.onPhase?.(result(false));
  };
  for (const method of o.methods) {
    const updates = updatesFor(method, params, cfg);
    const one = async () => {
      const drop = { rate: 0.1, seed: 7 + step++, counter: 0 };
      const r = await trainStep(
        params,
        () => crossEntropy(classifierLogits(params, encode(params, cfg, batch, drop), drop), labels),
        opt,
        updates,
        2e-5,
        1,
      );
      if (!Number.isFinite(r.loss)) throw new Error(`${method}: loss is ${r.loss}`);
      return r.loss;
    };
    t0 = performance.now();
    const l = await one();
    first[method] = (performance.now() - t0) / 1000;
    if (Number.isNaN(loss)) {
      loss = l;
      // After one AdamW step m = (1 - beta1) * clipped gradient: the embedding's gradient, read back cheaply.
      const sq = tf.tidy(() => blocks.map((n) => opt.m.get(n)!.square().sum()).reduce((a, b) => a.add(b)));
      embNorm = Math.sqrt((await sq.data())[0]) / 0.1;
      sq.dispose();
    }
    log(`${method}: first step ${first[method].toFixed(2)} s, loss ${l.toFixed(4)}`);
    await phase(`${method}:first`);
    t0 = performance.now();
    for (let i = 0; i < o.steps; i++) await one();
    ms[method] = o.steps > 0 ? (performance.now() - t0) / o.steps : NaN;
    log(`${method}: ${ms[method].toFixed(1)} ms/step over ${o.steps} step(s)`);
    await phase(`${method}:timed`, o.steps, o.steps > 0 ? ms[method] * o.steps : 0);
  }
  opt.dispose();
  tf.dispose([...params.values()]);
  return result(true);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      config: { type: "string", default: "base" },
      vocab: { type: "string", default: "250002" },
      batch: { type: "string", default: "32" },
      seq: { type: "string", default: "128" },
      steps: { type: "string", default: "3" },
      methods: { type: "string", default: "full,graddrop" },
      backend: { type: "string", default: "webgpu" },
      trace: { type: "boolean", default: false },
    },
  });
  const home = Deno.env.get("GRADDROP_HOME") ?? `${Deno.cwd()}/.graddrop`;
  for (const [k, v] of Object.entries(gpuEnv(home))) if (!Deno.env.get(k)) Deno.env.set(k, v);
  const r = await stepBench({
    config: values.config as StepBenchOptions["config"],
    vocab: Number(values.vocab),
    batch: Number(values.batch),
    seq: Number(values.seq),
    steps: Number(values.steps),
    methods: values.methods.split(",") as Method[],
    backend: values.backend as BackendChoice,
    labels: 7,
    trace: values.trace,
    onPhase: (partial) => console.log(JSON.stringify(partial)),
  });
  console.log(JSON.stringify(r));
}
