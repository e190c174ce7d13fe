import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { namedConfig } from "../model/config.ts";
import { classifierLogits, encode, initParams } from "../model/encoder.ts";
import { exportClassifier } from "../eval/onnx_export.ts";
import { mean, pairedPermutation, scores, spearman, std } from "../eval/stats.ts";
import { compare, type MetricRow } from "../eval/compare.ts";
import { prepareGpuEnv, useBackend } from "./gpu.ts";
import { logits, session } from "../eval/classify.ts";
import { tempDir } from "./helpers.ts";
import type { TaskInfo } from "../data/task.ts";

Deno.test("ONNX export: onnxruntime-web logits match tfjs within 1e-4", async () => {
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 300);
  const params = initParams(cfg, { mlm: false, numLabels: 4 }, 3);
  // Larger weights than the init so the check is not trivially near zero.
  for (const v of params.values()) v.assign(v.mul(10));
  const weights = new Map();
  for (const [n, v] of params) weights.set(n, { shape: v.shape, data: await v.data() });
  const sess = await ort.InferenceSession.create(exportClassifier(cfg, weights, 4));
  const B = 3, T = 9;
  const ids = Int32Array.from([
    0,
    5,
    6,
    7,
    8,
    9,
    10,
    2,
    1,
    0,
    50,
    60,
    2,
    1,
    1,
    1,
    1,
    1,
    0,
    299,
    298,
    4,
    3,
    2,
    2,
    100,
    2,
  ]);
  const out = await sess.run({
    input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), [B, T]),
    attention_mask: new ort.Tensor("int64", BigInt64Array.from(ids, (v) => (v === 1 ? 0n : 1n)), [B, T]),
  });
  const ref = await classifierLogits(params, encode(params, cfg, { ids, B, T }, null), null).data();
  const got = out.logits.data as Float32Array;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
  assert.ok(Math.max(...Array.from(ref, Math.abs)) > 0.1, "logits are not trivially small");
  assert.ok(maxDiff <= 1e-4, `max |diff| ${maxDiff}`);
});

Deno.test("evaluation: onnxruntime-web's WebGPU EP (forced, on this machine's adapter) matches the wasm EP within 1e-4", async () => {
  prepareGpuEnv();
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 300);
  const params = initParams(cfg, { mlm: false, numLabels: 4 }, 5);
  for (const v of params.values()) v.assign(v.mul(10));
  const weights = new Map();
  for (const [n, v] of params) weights.set(n, { shape: v.shape, data: await v.data() });
  const path = `${tempDir()}/model.onnx`;
  await Deno.writeFile(path, exportClassifier(cfg, weights, 4));
  const ids = Int32Array.from(
    { length: 4 * 12 },
    (_, i) => (i % 12 === 0 ? 0 : i % 12 > 9 - (i % 3) ? 1 : 4 + (i * 37) % 290),
  );
  const batch = { ids, B: 4, T: 12 };
  const [gpu, wasm] = [await session(path, "webgpu"), await session(path, "wasm")];
  assert.equal(gpu.provider, "webgpu");
  assert.equal(wasm.provider, "wasm");
  const [a, b] = [await logits(gpu, batch, 1), await logits(wasm, batch, 1)];
  assert.equal(a.length, 16);
  assert.ok(Math.max(...Array.from(b, Math.abs)) > 0.1, "logits are not trivially small");
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  assert.ok(maxDiff <= 1e-4, `max |diff| ${maxDiff}`);
});

Deno.test("scores: accuracy and macro-F1 on a known case", () => {
  const s = scores([0, 0, 1, 1], [0, 1, 1, 1]);
  assert.equal(s.accuracy, 0.75);
  // F1(0) = 2/3, F1(1) = 0.8.
  assert.ok(Math.abs(s.f1 - (2 / 3 + 0.8) / 2) < 1e-12);
});

Deno.test("stats: mean, std, exact paired permutation, Spearman", () => {
  assert.equal(mean([1, 2, 3]), 2);
  assert.equal(std([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7));
  const all = pairedPermutation([0.1, 0.2, 0.3], 1000, 0);
  assert.equal(all.p, 2 / 8, "all positive: only the two all-same-sign patterns are as extreme");
  assert.equal(all.resamples, 8);
  assert.equal(pairedPermutation([0.1, -0.1, 0.1, -0.1], 1000, 0).p, 1);
  const big = pairedPermutation(Array.from({ length: 40 }, () => 0.05), 2000, 1);
  assert.ok(big.p < 0.001);
  const r = spearman([1, 2, 3, 4, 5, 6, 7, 8], [10, 20, 30, 40, 50, 60, 70, 80], 5000, 0);
  assert.equal(r.rho, 1);
  assert.ok(r.p < 0.001);
  assert.ok(Math.abs(spearman([1, 2, 3, 4], [4, 3, 2, 1], 100, 0).rho + 1) < 1e-12);
  assert.ok(
    Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4], 100, 0).rho - 0.9486832980505138) < 1e-9,
    "ties take average ranks",
  );
});

Deno.test("compare: gains, wins/ties/losses and covariate correlation on synthetic rows", () => {
  const langs = ["a", "b", "c", "d", "e"];
  const task = {
    languages: Object.fromEntries(
      langs.map((
        l,
        i,
      ) => [l, {
        script: "Latin",
        fertility: 1 + i,
        unk_rate: 0,
        pretrain_share: 0.5 / (i + 1),
        resource_size: null,
        examples: { train: 0, dev: 0, test: 10 },
      }]),
    ),
  } as unknown as TaskInfo;
  const rows: MetricRow[] = [];
  for (const seed of [1, 2]) {
    for (const [i, l] of langs.entries()) {
      rows.push({ method: "full", seed, language: l, split: "test", accuracy: 0.5, f1: 0.5 });
      rows.push({ method: "graddrop", seed, language: l, split: "test", accuracy: 0.5 + 0.02 * i, f1: 0.5 });
    }
    rows.push({ method: "full", seed, language: "src", split: "source", accuracy: 0.9, f1: 0.9 });
    rows.push({ method: "graddrop", seed, language: "src", split: "source", accuracy: 0.88, f1: 0.9 });
  }
  const c = compare(rows, task, { baseline: "full", resamples: 2000, seed: 0, tie: 0.005 });
  const v = c.vs_baseline.find((x) => x.method === "graddrop")!;
  assert.ok(Math.abs(v.mean_gain - 0.04) < 1e-12);
  assert.deepEqual([v.wins, v.ties, v.losses], [4, 1, 0]);
  assert.equal(v.gains[0].language, "e");
  assert.ok(Math.abs(v.correlations.pretrain_share.rho + 1) < 1e-12, "gain grows as the share shrinks");
  assert.equal(v.pairs, 10);
  const s = c.summary.find((x) => x.method === "graddrop")!;
  assert.ok(Math.abs(s.source_mean - 0.88) < 1e-12);
  assert.ok(Math.abs(s.zero_shot_mean - 0.54) < 1e-12);
});
