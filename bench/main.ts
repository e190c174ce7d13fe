/**
 * `deno task bench [--json] [--only SECTION,...]`: the figures issues ask for, measured in one
 * run so they compare as ratios. Sections: engine, tokenizer, pretrain, wasm_matmul, webgpu_matmul,
 * shader_cache, graddrop_kernel, step, webgpu_census (`--adapter`: on the machine's adapter, not
 * the recording device), xlmr_base_step (only when named: minutes and ~9 GB on a CPU).
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { prepareGpuEnv } from "../tests/gpu.ts";
import { initBackend } from "../model/backend.ts";
import { namedConfig } from "../model/config.ts";
import { classifierLogits, crossEntropy, encode, initParams, ownedVariable } from "../model/encoder.ts";
import { AdamW, type TensorUpdate } from "../train/optimizer.ts";
import { trainStep } from "../train/step.ts";
import { fateOf, type Method, resolveGradDrop } from "../train/methods.ts";
import { maskSpec } from "../kernels/mask_spec.ts";
import { CopyProgram } from "./copy_program.ts";
import type { CensusResult } from "../platform/webgpu_census/census.ts";
import { CENSUS_TARGETS, censusLines } from "../platform/webgpu_census/targets.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean", default: false },
    only: { type: "string" },
    adapter: { type: "boolean", default: false },
  },
});
const only = values.only?.split(",");
const want = (s: string) => !only || only.includes(s);
/** Sections too slow for a default run on a CPU. */
const onRequest = (s: string) => !!only?.includes(s);
const results: Record<string, unknown> = {};
const say = (line: string) => {
  if (!values.json) console.log(line);
};

async function timeIt(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - t0) / reps / 1000;
}

/** The middle value of `xs` (the upper one of an even count); sorts `xs`. */
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wall and CPU seconds of one call of `fn`. */
async function sampleOnce(fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const t0 = performance.now();
  const u0 = process.cpuUsage();
  await fn();
  const u = process.cpuUsage(u0);
  return { wall: (performance.now() - t0) / 1000, cpu: (u.user + u.system) / 1e6 };
}

/**
 * Seconds per call, of wall time and of this process's CPU time (all threads: lavapipe runs
 * shaders on its own): the medians over `reps` calls, so that one call slowed by another
 * tenant of a shared machine does not move the figure. On a shared machine wall time also
 * counts the wait for a core.
 */
async function timeWithCpu(fn: () => Promise<void>, reps: number): Promise<{ wall: number; cpu: number }> {
  // Two warm-up calls: the second step still compiled pipelines and grew heaps, which made
  // whichever method was timed first look slower.
  await fn();
  await fn();
  const walls: number[] = [], cpus: number[] = [];
  for (let i = 0; i < reps; i++) {
    const { wall, cpu } = await sampleOnce(fn);
    walls.push(wall);
    cpus.push(cpu);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

async function cli(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/main.ts`, ...args],
    env,
    stdout: "null",
    stderr: "null",
  }).output();
  if (!r.success) throw new Error(`main.ts ${args.join(" ")} failed`);
  return (performance.now() - t0) / 1000;
}

if (want("engine")) {
  const dir = Deno.makeTempDirSync({ prefix: "graddrop-bench-" });
  const stages = Array.from(
    { length: 50 },
    (_, i) =>
      `      s${i}:\n        uses: test/write\n${
        i ? `        needs: [s${i - 1}${i > 5 ? `, s${i - 5}` : ""}]\n` : ""
      }        with: {text: t${i}}\n`,
  ).join("");
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `stage_types:\n  test/write: ${ROOT}/tests/fixtures/test_stages.ts\npipelines:\n  fifty:\n    stages:\n${stages}`,
  );
  const env = { GRADDROP_HOME: `${dir}/home` };
  const cold = await cli(["run", "--config", `${dir}/pipelines.yaml`], env);
  const cached = await cli(["run", "--config", `${dir}/pipelines.yaml`], env);
  const cached2 = await cli(["run", "--config", `${dir}/pipelines.yaml`], env);
  results.engine = { stages: 50, cold_s: cold, cached_rerun_s: Math.min(cached, cached2), target_s: 1 };
  say(
    `engine: 50-stage pipeline cold ${cold.toFixed(2)} s; fully cached rerun ${
      Math.min(cached, cached2).toFixed(3)
    } s (target < 1 s)`,
  );
}

if (want("tokenizer")) {
  const { udhrIndex, readDeclaration } = await import("../data/udhr.ts");
  const { trainBpe } = await import("../data/bpe_trainer.ts");
  const { loadTokenizer, encodeExample } = await import("../data/encoding.ts");
  const { buildShard, writeShard } = await import("../data/shards.ts");
  const texts = new Map<string, string[]>();
  for (const u of udhrIndex()) {
    const ps = await readDeclaration(u.code);
    if (ps.length >= 20) texts.set(u.code, ps.map((p) => p.text));
  }
  const t0 = performance.now();
  const json = trainBpe(texts, { vocabSize: 8000, alpha: 0.3, characterCoverage: 0.9995, seed: 0 });
  const trainS = (performance.now() - t0) / 1000;
  const dir = Deno.makeTempDirSync({ prefix: "graddrop-bench-" });
  Deno.writeTextFileSync(`${dir}/tokenizer.json`, JSON.stringify(json));
  const tok = await loadTokenizer(dir);
  const all = [...texts.values()].flat();
  const t1 = performance.now();
  let tokens = 0;
  const rows = all.map((t) => {
    const ids = encodeExample(tok, t, null, 128);
    tokens += ids.length;
    return { ids, label: 0, lang: 0 };
  });
  const encS = (performance.now() - t1) / 1000;
  await writeShard(dir, buildShard("all", rows, 128, tok.pad, ["all"], ["x"]));
  const bytes = ["ids.i32", "len.u16", "label.i16", "lang.u16", "json"].reduce(
    (a, e) => a + Deno.statSync(`${dir}/all.${e}`).size,
    0,
  );
  results.tokenizer = {
    languages: texts.size,
    paragraphs: all.length,
    train_s: trainS,
    target_s: 60,
    encode_tokens_per_s: tokens / encS,
    tokens,
    shard_bytes: bytes,
    shard_bytes_per_token: bytes / tokens,
  };
  say(
    `tokenizer: BPE 8000 on ${texts.size} languages / ${all.length} paragraphs in ${
      trainS.toFixed(1)
    } s (target < 60 s)`,
  );
  say(
    `tokenizer: encoding ${(tokens / encS).toFixed(0)} tokens/s; shard of ${all.length} rows x 128: ${
      (bytes / 1e6).toFixed(1)
    } MB`,
  );
}

/** The shipped checkpoint's shape (models/sib24-mini), with its 8,000-token vocabulary. */
const MINI = {
  ...namedConfig("small", 8000),
  hidden_size: 128,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  intermediate_size: 512,
  max_position_embeddings: 130,
};

function syntheticBatch(B: number, T: number) {
  return {
    ids: Int32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 0 : 5 + ((i * 7919) % 7000))),
    labels: Int32Array.from({ length: B }, (_, i) => i % 6),
    B,
    T,
  };
}

if (want("pretrain")) {
  // The shipped checkpoint's configuration and step (B32 x T128 packed, MLM + TLM + contrast on
  // 16 pairs), through the real data-parallel loop with one worker and with two.
  const { pretrain } = await import("../train/pretrain.ts");
  const { mulberry32 } = await import("../kernels/random.ts");
  const rand = mulberry32(3);
  const seq = (n: number) =>
    Int32Array.from({ length: n }, (_, i) => (i === 0 ? 0 : i === n - 1 ? 2 : 5 + Math.floor(rand() * 7990)));
  const seqs = Array.from({ length: 256 }, () => seq(96 + Math.floor(rand() * 33)));
  const pairs = Array.from(
    { length: 64 },
    () => ({ a: seq(30 + Math.floor(rand() * 20)), b: seq(30 + Math.floor(rand() * 60)) }),
  );
  const cfg = MINI;
  const out: Record<string, number> = {};
  for (const workers of [1, 2]) {
    const times: number[] = [];
    const dir = Deno.makeTempDirSync({ prefix: "graddrop-bench-" });
    await pretrain(
      cfg,
      seqs,
      pairs,
      { vocabSize: 8000, mask: 7999, pad: 1, special: new Set([0, 1, 2]) },
      {
        steps: 8,
        batchSize: 32,
        lr: 7e-4,
        warmup: 2,
        weightDecay: 0.01,
        clipNorm: 1,
        maskProb: 0.15,
        seed: 0,
        dropout: 0.1,
        checkpointEvery: 1000,
        fused: true,
        workers,
        backend: "wasm",
        xlcoWeight: 1,
        xlcoBatch: 16,
        xlcoGroup: 8,
        xlcoTemperature: 0.05,
      },
      { work: `${dir}/work`, out: dir },
      { settings: "bench" },
      () => times.push(performance.now()),
    );
    // Steps 3..8: the first two compile kernels and fill caches.
    const s = (times[7] - times[1]) / 6 / 1000;
    const perStep = seqs.slice(0, 32).reduce((a, q) => a + q.length, 0);
    out[`workers_${workers}_step_s`] = s;
    out[`workers_${workers}_tokens_per_s`] = perStep / s;
    say(
      `pretrain (L4 H128, B32 x T128 + 16 pairs): ${workers} worker(s) ${
        (perStep / s).toFixed(0)
      } packed tokens/s (${(s * 1000).toFixed(0)} ms/step)`,
    );
  }
  out.speedup = out.workers_2_tokens_per_s / out.workers_1_tokens_per_s;
  say(`pretrain: two workers / one = ${out.speedup.toFixed(2)}x`);
  results.pretrain = out;
}

// The products a training step is made of: batched attention and the transposed ones of every
// gradient. Both matmul sections time the same cases, so the backends compare in one run.
const MATMUL_CASES: [string, number[], number[], boolean, boolean][] = [
  ["attention q k^T [64,128,32]x[64,32,128]", [64, 128, 32], [64, 128, 32], false, true],
  ["attention p v [64,128,128]x[64,128,32]", [64, 128, 128], [64, 128, 32], false, false],
  ["linear x W^T [2048,128]x[512,128]^T", [2048, 128], [512, 128], false, true],
  ["weight grad dy^T x [2048,512]^T x [2048,128]", [2048, 512], [2048, 128], true, false],
];

/** GFLOP/s of every case in {@link MATMUL_CASES} on the current backend, as it is set up now. */
async function matmulGflops(tensors: tf.Tensor[][]): Promise<number[]> {
  const out = [];
  for (const [i, [, a, b, ta, tb]] of MATMUL_CASES.entries()) {
    const batch = a.length === 3 ? a[0] : 1;
    const M = ta ? a.at(-1)! : a.at(-2)!, K = ta ? a.at(-2)! : a.at(-1)!, N = tb ? b.at(-2)! : b.at(-1)!;
    const s = await timeIt(async () => {
      const y = tf.matMul(tensors[i][0], tensors[i][1], ta, tb);
      await y.data();
      y.dispose();
    }, 10);
    out.push(2 * batch * M * K * N / 1e9 / s);
  }
  return out;
}

/** Times tfjs's own matmul, then `install`'s, on the current backend; one row per case. */
async function compareMatmul(name: string, ours: string, key: string, install: () => Promise<void>) {
  const tensors = MATMUL_CASES.map(([, a, b]) => [tf.randomNormal(a), tf.randomNormal(b)]);
  const before = await matmulGflops(tensors);
  await install();
  const after = await matmulGflops(tensors);
  tf.dispose(tensors.flat());
  return MATMUL_CASES.map(([c], i) => {
    say(
      `${name}: ${c}: tfjs ${before[i].toFixed(1)} GFLOP/s, ${ours} ${after[i].toFixed(1)} GFLOP/s (${
        (after[i] / before[i]).toFixed(1)
      }x)`,
    );
    return {
      case: c,
      tfjs_gflops: before[i],
      [key]: after[i],
      speedup: after[i] / before[i],
    };
  });
}

if (want("wasm_matmul")) {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const { installWasmMatmul } = await import("../kernels/wasm_matmul.ts");
  wasm.setWasmPaths(new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url).href);
  await tf.setBackend("wasm");
  await tf.ready();
  results.wasm_matmul = await compareMatmul("wasm matmul", "SIMD kernel", "simd_gflops", installWasmMatmul);
}

if (want("webgpu_matmul")) {
  // On this machine's adapter: tfjs-backend-webgpu's programs against the llvmpipe matmul,
  // which training uses on a software adapter only.
  prepareGpuEnv();
  const info = await initBackend("webgpu");
  const { useCpuAdapterKernels } = await import("../kernels/cpu_adapter.ts");
  useCpuAdapterKernels(false);
  const rows = await compareMatmul(
    `webgpu matmul (${info.adapter})`,
    "llvmpipe kernel",
    "llvmpipe_gflops",
    () => Promise.resolve(useCpuAdapterKernels(true)),
  );
  useCpuAdapterKernels(info.fallback === true);
  results.webgpu_matmul = { adapter: info.adapter, software: info.fallback, cases: rows };
}

if (want("shader_cache")) {
  const cache = Deno.makeTempDirSync({ prefix: "graddrop-mesa-" });
  const env = { ...Deno.env.toObject(), MESA_SHADER_CACHE_DIR: cache };
  const run = async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/bench/first_step.ts`],
      env,
      stdout: "piped",
      stderr: "null",
    }).output();
    return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!).first_step_s as number;
  };
  prepareGpuEnv();
  const cold = await run(), warm = await run();
  results.shader_cache = {
    cold_first_step_s: cold,
    warm_first_step_s: warm,
    mesa_path: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
  };
  say(
    `first small training step from process start (webgpu, ${
      Deno.env.get("DENO_WEBGPU_BACKEND")
    }): cold shader cache ${cold.toFixed(2)} s, warm ${warm.toFixed(2)} s`,
  );
}

if (want("graddrop_kernel")) {
  prepareGpuEnv();
  await initBackend("webgpu");
  const n = 1 << 22;
  const rnd = () => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.01);
  const params = new Map([["w", ownedVariable(rnd(), [n], "w")]]);
  const grads = new Map([["w", tf.tensor(rnd())]]);
  const clip = tf.scalar(1);
  const mask = maskSpec({ seed: 1, step: 1, stream: 0, keep: 0.5, divisor: 1, rescale: false });
  const updates = new Map<string, TensorUpdate>([["w", { mode: "gradient", mask }]]);
  const sync = async () => void (await params.get("w")!.slice([0], [1]).data());
  const fused = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: true });
  const ops = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: false });
  const reps = 10;
  const fusedS = await timeIt(async () => {
    fused.apply(grads, clip, 1e-4, updates);
    await sync();
  }, reps);
  const opsS = await timeIt(async () => {
    ops.apply(grads, clip, 1e-4, updates);
    await sync();
  }, reps);
  const x = grads.get("w")!;
  const copyS = await timeIt(async () => {
    const backend = tf.backend() as WebGPUBackend;
    const out = tf.engine().makeTensorFromTensorInfo(
      backend.runWebGPUProgram(new CopyProgram([n]), [x], "float32"),
    );
    await out.slice([0], [1]).data();
    out.dispose();
  }, reps);
  // The update's essential traffic: read g, w, m, v and write w, m, v (4 bytes each).
  const updateBytes = 7 * 4 * n;
  const r = {
    elements: n,
    fused_gbps: updateBytes / fusedS / 1e9,
    ops_gbps: updateBytes / opsS / 1e9,
    copy_gbps: (2 * 4 * n) / copyS / 1e9,
    fused_over_ops: opsS / fusedS,
    fused_over_copy: (updateBytes / fusedS) / ((2 * 4 * n) / copyS),
  };
  results.graddrop_kernel = r;
  say(
    `graddrop kernel (${n} elements, webgpu): fused ${r.fused_gbps.toFixed(2)} GB/s, ops ${
      r.ops_gbps.toFixed(2)
    } GB/s, copy ${r.copy_gbps.toFixed(2)} GB/s`,
  );
  say(
    `  fused/ops ${r.fused_over_ops.toFixed(2)}x (target >= 3x); fused/copy ${
      (100 * r.fused_over_copy).toFixed(0)
    }% (target >= 70%)`,
  );
  fused.dispose();
  ops.dispose();
}

/** One fine-tuning step of the shipped model by `method` on batch `b`, and what to free after. */
function stepRunner(method: Method, b: ReturnType<typeof syntheticBatch>) {
  const cfg = MINI;
  const L = cfg.num_hidden_layers;
  const params = initParams(cfg, { mlm: false, numLabels: 6 }, 1);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: true });
  const mcfg = {
    method,
    graddrop: resolveGradDrop(method, {}),
    unfreeze_every: 1,
    childtuning_pf: 0.3,
    childtuning_pd: 0.3,
    childtuning_mask_head: true,
    lr_match_rate: 0.5,
  };
  // Gradual unfreezing measured half-way: the top half of the layers unfrozen.
  const s0 = { step: Math.floor(L / 2), epoch: 0, totalSteps: 100, epochs: 1, stepsPerEpoch: 100, seed: 1 };
  const updates = new Map<string, TensorUpdate>();
  [...params.keys()].forEach((n, i) => {
    const m = /layer\.(\d+)\./.exec(n);
    const layer = m ? Number(m[1]) : n.startsWith("roberta.") ? -1 : L;
    const fate = fateOf(mcfg, n, layer, L, params.get(n)!.shape, i, s0);
    if (fate) updates.set(n, { mode: fate.mode, mask: fate.mask });
  });
  const drop = { rate: 0.1, seed: 1, counter: 0 };
  return {
    step: () =>
      trainStep(
        params,
        () => crossEntropy(classifierLogits(params, encode(params, cfg, b, drop), drop), b.labels),
        opt,
        updates,
        1e-4,
        1,
      ).then(() => {}),
    dispose: () => {
      opt.dispose();
      tf.dispose([...params.values()]);
    },
  };
}

/**
 * GPU time of one steady step by program class, from tfjs's timestamp queries (each program
 * then runs in a pass of its own, so the step itself is slower while timed). Dispatches the
 * project records outside tfjs's program path (fused AdamW, clipping sums) are not in it.
 */
async function gpuTimeByProgram(run: ReturnType<typeof stepRunner>) {
  await run.step();
  await run.step();
  const backend = tf.backend() as WebGPUBackend;
  let pending: Promise<void> | undefined;
  const timed = await backend.time(() => {
    pending = run.step();
  });
  await pending;
  run.dispose();
  const by: Record<string, { ms: number; dispatches: number }> = {};
  for (
    const part of (timed as unknown as { getExtraProfileInfo(): string }).getExtraProfileInfo().split(", ")
  ) {
    const cut = part.lastIndexOf(": ");
    const e = by[part.slice(0, cut)] ??= { ms: 0, dispatches: 0 };
    e.ms += Number(part.slice(cut + 2));
    e.dispatches++;
  }
  return Object.fromEntries(Object.entries(by).sort((x, y) => y[1].ms - x[1].ms));
}

/**
 * Milliseconds of a steady WebGPU step (median of 5) and of those spent inside
 * `GPUQueue.submit`. On lavapipe the queue runs a command buffer before `submit` returns, so
 * the rest is the JavaScript that records the step, which cannot overlap the shaders there.
 */
async function submitShare(run: ReturnType<typeof stepRunner>): Promise<{ wall: number; submit: number }> {
  await run.step();
  const queue = (tf.backend() as WebGPUBackend).device.queue;
  let inSubmit = 0;
  const submit = queue.submit.bind(queue);
  queue.submit = (buffers: GPUCommandBuffer[]) => {
    const t = performance.now();
    submit(buffers);
    inSubmit += performance.now() - t;
  };
  const samples: { wall: number; submit: number }[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      inSubmit = 0;
      const t = performance.now();
      await run.step();
      samples.push({ wall: performance.now() - t, submit: inSubmit });
    }
  } finally {
    delete (queue as Partial<GPUQueue>).submit;
    run.dispose();
  }
  samples.sort((a, b) => a.wall - b.wall);
  return samples[2];
}

/**
 * Median wall and CPU seconds of a step on each backend, the backends' steps alternating one by
 * one (after two warm-up steps each), so that a shared machine's slow spells fall on both sides
 * of a ratio alike.
 */
async function alternateSteps(
  runs: Record<"webgpu" | "wasm", ReturnType<typeof stepRunner>>,
  reps: number,
): Promise<Record<"webgpu" | "wasm", { wall: number; cpu: number }>> {
  const order = ["webgpu", "wasm"] as const;
  for (const be of order) {
    await tf.setBackend(be);
    await runs[be].step();
    await runs[be].step();
  }
  const samples: Record<"webgpu" | "wasm", { wall: number[]; cpu: number[] }> = {
    webgpu: { wall: [], cpu: [] },
    wasm: { wall: [], cpu: [] },
  };
  for (let i = 0; i < reps; i++) {
    for (const be of order) {
      await tf.setBackend(be);
      const { wall, cpu } = await sampleOnce(runs[be].step);
      samples[be].wall.push(wall);
      samples[be].cpu.push(cpu);
    }
  }
  return {
    webgpu: { wall: median(samples.webgpu.wall), cpu: median(samples.webgpu.cpu) },
    wasm: { wall: median(samples.wasm.wall), cpu: median(samples.wasm.cpu) },
  };
}

if (want("step")) {
  prepareGpuEnv();
  const { useCpuAdapterKernels } = await import("../kernels/cpu_adapter.ts");
  const info = await initBackend("webgpu");
  await initBackend("wasm");
  const b = syntheticBatch(16, 64);
  const out: Record<"webgpu" | "wasm", Record<string, number>> = { webgpu: {}, wasm: {} };
  const methods: [string, Method][] = [["full", "full"], ["graddrop", "graddrop"], ["frozen", "frozen"], [
    "gradual",
    "gradual-unfreezing",
  ]];
  for (const [key, method] of methods) {
    await tf.setBackend("webgpu");
    const webgpu = stepRunner(method, b);
    await tf.setBackend("wasm");
    const wasm = stepRunner(method, b);
    const t = await alternateSteps({ webgpu, wasm }, 7);
    for (const be of ["webgpu", "wasm"] as const) {
      out[be][`${key}_ms`] = t[be].wall * 1000;
      out[be][`${key}_cpu_ms`] = t[be].cpu * 1000;
    }
    wasm.dispose();
    await tf.setBackend("webgpu");
    webgpu.dispose();
  }
  if (info.fallback) {
    // The same `full` step with tfjs's own programs where the software-adapter kernels stand in.
    const run = stepRunner("full", b);
    useCpuAdapterKernels(false);
    const { wall: s, cpu } = await timeWithCpu(run.step, 7);
    useCpuAdapterKernels(true);
    out.webgpu.full_tfjs_kernels_ms = s * 1000;
    out.webgpu.full_tfjs_kernels_cpu_ms = cpu * 1000;
    run.dispose();
    say(
      `step on webgpu with tfjs's kernels instead of the software-adapter ones: full ${
        (s * 1000).toFixed(0)
      } ms`,
    );
  }
  const share = await submitShare(stepRunner("full", b));
  out.webgpu.full_submit_ms = share.submit;
  say(
    `step on webgpu, one full step: ${share.wall.toFixed(0)} ms, of which ${
      share.submit.toFixed(0)
    } ms inside GPUQueue.submit (${(100 * share.submit / share.wall).toFixed(0)}%)`,
  );
  const profile = await gpuTimeByProgram(stepRunner("full", b));
  say(
    `step on webgpu, GPU time by program (timestamp queries, one full step): ${
      Object.entries(profile).slice(0, 8).map(([n, p]) => `${n} ${p.ms.toFixed(0)} ms / ${p.dispatches}`)
        .join(", ")
    }`,
  );
  for (const be of ["webgpu", "wasm"] as const) {
    const o = out[be];
    say(
      `step (shipped model L4 H128, B16 T64) on ${be}: full ${o.full_ms.toFixed(0)} ms, graddrop ${
        o.graddrop_ms.toFixed(0)
      } ms (${(o.graddrop_ms / o.full_ms).toFixed(3)}x, target <= 1.05x), frozen ${
        o.frozen_ms.toFixed(0)
      } ms, gradual ${o.gradual_ms.toFixed(0)} ms; CPU time of full ${o.full_cpu_ms.toFixed(0)} ms`,
    );
  }
  say(`step: webgpu / wasm, full ${(out.webgpu.full_ms / out.wasm.full_ms).toFixed(2)}x (target <= 1.5x)`);
  results.step = { ...out.webgpu, wasm: out.wasm, webgpu_gpu_ms_by_program: profile };
}

if (want("webgpu_census")) {
  // A subprocess of its own: the census replaces tfjs's WebGPU device, which other sections use.
  const args = values.adapter ? ["--adapter"] : [];
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/platform/webgpu_census/census.ts`, ...args],
    stdout: "piped",
    stderr: values.json ? "null" : "inherit",
  }).output();
  if (!r.success) throw new Error("webgpu_census: census.ts failed");
  const j: CensusResult = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  results.webgpu_census = { ...j, targets: CENSUS_TARGETS };
  const s = j.shape;
  say(
    `webgpu_census (L${s.layers} H${s.hidden} A${s.heads} F${s.intermediate} V${s.vocab}, B${s.batch} x T${s.seq}, ${s.method}) on ${j.device}, one steady step:`,
  );
  for (const line of censusLines(j.per_step)) say(`  ${line}`);
}

if (onRequest("xlmr_base_step")) {
  // A subprocess of its own: its peak RSS is the step's alone, and the bench's memory stays small.
  const args = ["--config", "base", "--batch", "2", "--seq", "32", "--steps", "1", "--methods", "full"];
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/platform/gpu_check/step_bench.ts`, ...args],
    stdout: "piped",
    stderr: values.json ? "null" : "inherit",
  }).output();
  if (!r.success) throw new Error("xlmr_base_step: step_bench.ts failed");
  const j = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  results.xlmr_base_step = j;
  say(
    `xlmr_base_step (250,002 x 768, 12 layers, B2 T32, ${j.backend}, embedding in ${j.embedding_blocks} block(s)): init ${
      j.init_s.toFixed(1)
    } s, first step ${j.first_step_s.full.toFixed(1)} s, next step ${
      (j.step_ms.full / 1000).toFixed(1)
    } s, loss ${j.loss.toFixed(4)}, embedding gradient norm ${
      j.embedding_grad_norm.toExponential(2)
    }, peak RSS ${(j.peak_rss_mb / 1024).toFixed(2)} GiB`,
  );
}

results.machine = {
  deno: Deno.version.deno,
  cores: navigator.hardwareConcurrency,
  webgpu_backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
};
if (values.json) console.log(JSON.stringify(results, null, 2));
