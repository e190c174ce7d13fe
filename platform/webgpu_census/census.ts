/**
 * The WebGPU census of one steady training step: tfjs's WebGPU backend is built on a counting
 * proxy of a device (the recording device, which runs no shaders, or with `--adapter` the
 * real one), two warm-up steps run (pipelines compile, buffer pools fill), and the third is
 * counted. At XLM-R base shape on the recording device the step costs host time only, so it
 * runs on a CPU-only machine and says what a GPU would be asked to do.
 *
 *     deno run -A platform/webgpu_census/census.ts [--adapter] [--config base] [--vocab 250002]
 *       [--batch 32] [--seq 128] [--method full]
 *
 * Prints one JSON line: `{ shape, device, per_step }`.
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import * as tf from "@tensorflow/tfjs";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { type EncoderConfig, NAMED_CONFIGS, namedConfig } from "../../model/config.ts";
import {
  classifierLogits,
  crossEntropy,
  encode,
  type Heads,
  initParams,
  type Params,
  paramShapes,
} from "../../model/encoder.ts";
import { guardDevice } from "../../model/device_guard.ts";
import { requestTrainingDevice } from "../../model/webgpu_device.ts";
import { AdamW } from "../../train/optimizer.ts";
import { trainStep } from "../../train/step.ts";
import type { Method } from "../../train/methods.ts";
import { benchBatch, updatesFor } from "../gpu_check/step_bench.ts";
import { countingDevice, type Counts } from "./counting_device.ts";
import { recordingDevice } from "./recording_device.ts";

/** What to count. */
export interface CensusOptions {
  /** Count on the machine's WebGPU adapter instead of the recording device. */
  adapter: boolean;
  config: keyof typeof NAMED_CONFIGS;
  vocab: number;
  batch: number;
  seq: number;
  method: Method;
}

/** One steady step's counts, with the time the host spent on it. */
export interface PerStep extends Omit<Counts, "by_kernel" | "small_by_kernel"> {
  /** Kernels tfjs ran on the CPU (its small-input handoff) instead of the device. */
  cpu_kernels: number;
  /** Wall time of the step less the time spent waiting on the GPU (the least of three steady steps). */
  host_ms: number;
  /**
   * CPU time of this process over the step (user + system, all threads; the least of three):
   * what `host_ms` would be on an idle machine, less time the step spent waiting for a core.
   */
  host_cpu_ms: number;
  /** The part of `host_ms` outside WebGPU calls. */
  js_ms: number;
  /** GPU time of the step's compute passes from timestamp queries; null without them (the recording device). */
  gpu_ms: number | null;
  /** Wall time of the step. */
  wall_ms: number;
  by_kernel: Record<string, number>;
  small_by_kernel: Record<string, number>;
}

/** The census: the shape counted, the device, and one steady step's counts. */
export interface CensusResult {
  shape: {
    layers: number;
    hidden: number;
    heads: number;
    intermediate: number;
    vocab: number;
    batch: number;
    seq: number;
    method: Method;
  };
  device: string;
  per_step: PerStep;
}

/** The device behind tfjs's "webgpu" backend, replaced before the backend is first made. */
async function installDevice(adapter: boolean): Promise<{ device: GPUDevice; label: string }> {
  if (!adapter) return { device: recordingDevice(), label: "recording (runs no shaders)" };
  const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!a) throw new Error("--adapter: this machine has no WebGPU adapter");
  const device = await requestTrainingDevice(a);
  const i = a.info;
  return {
    device,
    label: `${i.vendor} ${i.architecture} ${i.device} ${i.description}`.replace(/\s+/g, " ").trim(),
  };
}

/**
 * Parameters made on the device (a fill per tensor, no host copy), for the recording device:
 * their values never matter there, and host copies of an XLM-R embedding would cost gigabytes.
 */
function deviceParams(cfg: EncoderConfig, heads: Heads): Params {
  const params: Params = new Map();
  for (const [name, shape] of paramShapes(cfg, heads)) {
    const t = tf.fill(shape, 0.02);
    params.set(name, tf.variable(t, true, `${name}#census`));
    t.dispose();
  }
  return params;
}

/**
 * Runs the census.
 *
 * @example
 * ```ts ignore
 * const r = await census({ adapter: false, config: "base", vocab: 250002, batch: 32, seq: 128, method: "full" });
 * r.per_step.dispatches; // 2802 before this project's kernels
 * ```
 */
export async function census(o: CensusOptions): Promise<CensusResult> {
  const { device, label } = await installDevice(o.adapter);
  const counting = countingDevice(device, { timestamps: true });
  tf.removeBackend("webgpu");
  tf.registerBackend(
    "webgpu",
    () => new WebGPUBackend(counting.device, { vendor: label, architecture: "" } as GPUAdapterInfo),
    3,
  );
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs webgpu backend failed to initialise");
  const backend = tf.backend() as WebGPUBackend;
  if (o.adapter) guardDevice(backend);
  let cpuKernels = 0;
  const onCpu = backend.shouldExecuteOnCPU.bind(backend);
  backend.shouldExecuteOnCPU = (inputs, threshold) => {
    const yes = onCpu(inputs, threshold);
    if (yes) cpuKernels++;
    return yes;
  };

  const cfg = { ...namedConfig(o.config, o.vocab), max_position_embeddings: Math.max(514, o.seq + 2) };
  const heads = { mlm: false, numLabels: 7 };
  const params = o.adapter ? initParams(cfg, heads, 1) : deviceParams(cfg, heads);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: true });
  const updates = updatesFor(o.method, params, cfg);
  const { ids, labels } = benchBatch(cfg, o.batch, o.seq);
  const batch = { ids, B: o.batch, T: o.seq };
  let step = 0;
  const one = () =>
    trainStep(
      params,
      () => {
        const drop = { rate: 0.1, seed: 7 + step++, counter: 0 };
        return crossEntropy(classifierLogits(params, encode(params, cfg, batch, drop), drop), labels);
      },
      opt,
      updates,
      2e-5,
      1,
    );
  for (let i = 0; i < 2; i++) await one();
  counting.take();
  await counting.gpuMs();
  cpuKernels = 0;
  const cpuMs = (u: { user: number; system: number }) => (u.user + u.system) / 1000;
  let t0 = performance.now();
  let u0 = process.cpuUsage();
  await one();
  let wall = performance.now() - t0;
  let cpu = cpuMs(process.cpuUsage(u0));
  const c = counting.take();
  const gpu = await counting.gpuMs();
  // Host time is noisy on a shared machine: the least of this step and two more like it.
  for (let i = 0; i < 2; i++) {
    t0 = performance.now();
    u0 = process.cpuUsage();
    await one();
    const w = performance.now() - t0;
    cpu = Math.min(cpu, cpuMs(process.cpuUsage(u0)));
    const more = counting.take();
    await counting.gpuMs();
    if (w - more.wait_ms < wall - c.wait_ms) {
      [wall, c.wait_ms, c.driver_ms] = [w, more.wait_ms, more.driver_ms];
    }
  }
  opt.dispose();
  tf.dispose([...params.values()]);
  return {
    shape: {
      layers: cfg.num_hidden_layers,
      hidden: cfg.hidden_size,
      heads: cfg.num_attention_heads,
      intermediate: cfg.intermediate_size,
      vocab: cfg.vocab_size,
      batch: o.batch,
      seq: o.seq,
      method: o.method,
    },
    device: label,
    per_step: {
      ...c,
      cpu_kernels: cpuKernels,
      host_ms: wall - c.wait_ms,
      host_cpu_ms: cpu,
      js_ms: wall - c.wait_ms - c.driver_ms,
      gpu_ms: gpu,
      wall_ms: wall,
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      adapter: { type: "boolean", default: false },
      config: { type: "string", default: "base" },
      vocab: { type: "string", default: "250002" },
      batch: { type: "string", default: "32" },
      seq: { type: "string", default: "128" },
      method: { type: "string", default: "full" },
    },
  });
  const r = await census({
    adapter: values.adapter,
    config: values.config as CensusOptions["config"],
    vocab: Number(values.vocab),
    batch: Number(values.batch),
    seq: Number(values.seq),
    method: values.method as Method,
  });
  console.log(JSON.stringify(r));
}
