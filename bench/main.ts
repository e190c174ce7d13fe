/**
 * `deno task bench [--json] [--only SECTION,...]`: the figures issues ask for, measured in one
 * run so they compare as ratios. Sections: engine, tokenizer, pretrain, shader_cache,
 * graddrop_kernel, step, xlmr_base_step (only when named: minutes and ~9 GB on a CPU).
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { prepareGpuEnv } from "../tests/gpu.ts";
import { initBackend } from "../model/backend.ts";
import type { BackendChoice } from "../platform/adapter.ts";
import { namedConfig } from "../model/config.ts";
import {
  classifierLogits,
  crossEntropy,
  encode,
  initParams,
  mlmLogits,
  ownedVariable,
} from "../model/encoder.ts";
import { AdamW, type TensorUpdate } from "../train/optimizer.ts";
import { trainStep } from "../train/step.ts";
import { fateOf, type Method, resolveGradDrop } from "../train/methods.ts";
import { maskSpec } from "../kernels/mask_spec.ts";
import { CopyProgram } from "./copy_program.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  args: Deno.args,
  options: { json: { type: "boolean", default: false }, only: { type: "string" } },
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

function syntheticBatch(B: number, T: number) {
  return {
    ids: Int32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 0 : 5 + ((i * 7919) % 7000))),
    labels: Int32Array.from({ length: B }, (_, i) => i % 6),
    B,
    T,
  };
}

if (want("pretrain")) {
  prepareGpuEnv();
  const out: Record<string, number> = {};
  for (const backend of ["webgpu", "wasm", "cpu"] as BackendChoice[]) {
    await initBackend(backend);
    const cfg = namedConfig("small", 8000);
    const params = initParams(cfg, { mlm: true, numLabels: 0 }, 1);
    const opt = new AdamW(params, { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.01, fused: true });
    const b = syntheticBatch(32, 64);
    const at = Int32Array.from({ length: Math.round(b.ids.length * 0.15) }, (_, i) => Math.floor(i / 0.15));
    const targets = Int32Array.from(at, (i) => b.ids[i]);
    const updates = new Map([...params.keys()].map((n) => [n, { mode: "none" as const } as TensorUpdate]));
    const drop = { rate: 0.1, seed: 1, counter: 0 };
    const s = await timeIt(async () => {
      await trainStep(
        params,
        () => crossEntropy(mlmLogits(params, cfg, encode(params, cfg, b, drop), at), targets),
        opt,
        updates,
        1e-4,
        1,
      );
    }, backend === "cpu" ? 1 : 3);
    out[`${backend}_tokens_per_s`] = (b.B * b.T) / s;
    out[`${backend}_step_s`] = s;
    say(
      `pretrain (small, B32 T64, MLM): ${backend} ${(b.B * b.T / s).toFixed(0)} tokens/s (${
        (s * 1000).toFixed(0)
      } ms/step)`,
    );
    opt.dispose();
    tf.dispose([...params.values()]);
  }
  results.pretrain = out;
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

if (want("step")) {
  prepareGpuEnv();
  const out: Record<string, Record<string, number>> = {};
  for (const backend of ["webgpu", "wasm"] as BackendChoice[]) {
    await initBackend(backend);
    const cfg = namedConfig("small", 8000);
    const L = cfg.num_hidden_layers;
    const b = syntheticBatch(32, 64);
    out[backend] = {};
    const methods: [string, Method][] = [["full", "full"], ["graddrop", "graddrop"], ["frozen", "frozen"], [
      "gradual",
      "gradual-unfreezing",
    ]];
    for (const [key, method] of methods) {
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
      const s0 = {
        step: Math.floor(L / 2),
        epoch: 0,
        totalSteps: 100,
        epochs: 1,
        stepsPerEpoch: 100,
        seed: 1,
      };
      const updates = new Map<string, TensorUpdate>();
      [...params.keys()].forEach((n, i) => {
        const layer = /layer\.(\d+)\./.exec(n)
          ? Number(/layer\.(\d+)\./.exec(n)![1])
          : n.startsWith("roberta.")
          ? -1
          : L;
        const fate = fateOf(mcfg, n, layer, L, params.get(n)!.shape, i, s0);
        if (fate) updates.set(n, { mode: fate.mode, mask: fate.mask });
      });
      const drop = { rate: 0.1, seed: 1, counter: 0 };
      const s = await timeIt(async () => {
        await trainStep(
          params,
          () => crossEntropy(classifierLogits(params, encode(params, cfg, b, drop), drop), b.labels),
          opt,
          updates,
          1e-4,
          1,
        );
      }, 3);
      out[backend][`${key}_ms`] = s * 1000;
      opt.dispose();
      tf.dispose([...params.values()]);
    }
    const o = out[backend];
    say(
      `step (small, B32 T64) on ${backend}: full ${o.full_ms.toFixed(0)} ms, graddrop ${
        o.graddrop_ms.toFixed(0)
      } ms (${(o.graddrop_ms / o.full_ms).toFixed(3)}x, target <= 1.05x), frozen ${
        o.frozen_ms.toFixed(0)
      } ms, gradual ${o.gradual_ms.toFixed(0)} ms`,
    );
  }
  results.step = { ...out.webgpu, wasm: out.wasm };
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
