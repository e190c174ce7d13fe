import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { classifierLogits, encode } from "../model/encoder.ts";
import { exportClassifier, exportHead } from "../eval/onnx_export.ts";
import { holm, mean, quantile, scores, signFlipTest, spearman, std } from "../eval/stats.ts";
import { analyze, majorityFloor } from "../eval/compare.ts";
import { comparePair } from "../eval/pairs.ts";
import { type MetricRow, parseMetrics, type ReportTask } from "../eval/contracts.ts";
import { analyzeCommand } from "../eval/analyze_command.ts";
import { mulberry32 } from "../kernels/random.ts";
import { prepareGpuEnv, useBackend } from "./gpu.ts";
import { headLabels, infer, logits, session } from "../eval/classify.ts";
import { evaluateTask } from "../eval/evaluate.ts";
import { retrieval } from "../eval/retrieval.ts";
import { shardRetrieval } from "../eval/shard_retrieval.ts";
import { buildShard, type Shard } from "../data/shards.ts";
import { tempDir, tinyClassifier } from "./helpers.ts";

Deno.test("ONNX export: onnxruntime-web logits match tfjs within 1e-4", async () => {
  await useBackend("cpu");
  const { cfg, params, weights } = await tinyClassifier(3);
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
  // The head alone, fed the graph's own features, gives the graph's logits: centring moves
  // features and scores them with this graph, so it must be the same head.
  const head = await ort.InferenceSession.create(exportHead(cfg, weights, 4));
  const features = out.features as ort.Tensor;
  assert.deepEqual(features.dims, [B, cfg.hidden_size]);
  const again = (await head.run({ features })).logits.data as Float32Array;
  assert.deepEqual(Array.from(again), Array.from(got));
});

Deno.test("evaluation: onnxruntime-web's WebGPU EP (forced, on this machine's adapter) matches the wasm EP within 1e-4", async () => {
  prepareGpuEnv();
  await useBackend("cpu");
  const { cfg, weights } = await tinyClassifier(5);
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

Deno.test("scores: accuracy, macro-F1 and predicted-label shares on a known case", () => {
  const s = scores([0, 0, 1, 1], [0, 1, 1, 1], 4);
  assert.equal(s.accuracy, 0.75);
  assert.deepEqual(s.pred_share, [0.25, 0.75, 0, 0], "one share per label, unpredicted labels 0");
  // F1(0) = 2/3, F1(1) = 0.8.
  assert.ok(Math.abs(s.f1 - (2 / 3 + 0.8) / 2) < 1e-12);
});

Deno.test("stats: mean, std, exact sign-flip test, Spearman with n/a", () => {
  assert.equal(mean([1, 2, 3]), 2);
  assert.equal(std([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7));
  const all = signFlipTest([0.1, 0.2, 0.3], 1000, 0);
  assert.deepEqual(all, { p: 2 / 8, exact: true, min_p: 2 / 8 }, "only the two all-same-sign patterns");
  assert.equal(signFlipTest([0.1, -0.1, 0.1, -0.1], 1000, 0).p, 1);
  assert.equal(signFlipTest(Array(6).fill(3), 1000, 0).p, 2 / 64);
  const big = signFlipTest(Array.from({ length: 30 }, () => 0.05), 2000, 1);
  assert.ok(!big.exact && big.p < 0.001);
  assert.equal(spearman([1, 2, 3, 4, 5, 6, 7, 8], [10, 20, 30, 40, 50, 60, 70, 80]), 1);
  assert.equal(spearman([1, 2, 3, 4], [1, 4, 9, 16]), 1, "ranks, not values");
  assert.ok(Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4])! - 0.9486832980505138) < 1e-9, "ties");
  assert.equal(spearman([1, 2], [1, 2]), null, "too few points");
  assert.equal(spearman([1, 1, 1, 1], [1, 2, 3, 4]), null, "a constant has no rank correlation");
  assert.equal(quantile([0, 10], 0.975), 9.75);
});

Deno.test("Holm never lowers a p, keeps nulls out of the family and preserves the order (random families)", () => {
  const rand = mulberry32(11);
  for (let t = 0; t < 500; t++) {
    const ps = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => rand() < 0.15 ? null : rand() ** 3);
    const adj = holm(ps);
    const m = ps.filter((p) => p !== null).length;
    ps.forEach((p, i) => {
      if (p === null) return assert.equal(adj[i], null);
      assert.ok(adj[i]! >= p && adj[i]! <= 1, `p ${p} -> ${adj[i]}`);
      assert.ok(adj[i]! <= Math.min(1, m * p) + 1e-15, "never above Bonferroni");
      ps.forEach((q, j) => {
        if (q !== null && q <= p) assert.ok(adj[j]! <= adj[i]!, "monotone in p");
      });
    });
  }
  assert.deepEqual(holm([0.01, 0.04]), [0.02, 0.04]);
  // Where Holm (step-down) and Hochberg (step-up) part: Hochberg would give 0.04 to all three.
  assert.deepEqual(holm([0.02, 0.03, 0.04]).map((p) => +p!.toFixed(12)), [0.06, 0.06, 0.06]);
  assert.deepEqual(holm([0.04, 0.001, 0.03]).map((p) => +p!.toFixed(12)), [0.06, 0.003, 0.06]);
});

type Accuracy = (seed: number, language: number) => number;

/** Test-split rows of each method over seeds × languages, with n items per language. */
function grid(
  methods: Record<string, Accuracy>,
  seeds: number[],
  languages: number,
  n?: number,
): MetricRow[] {
  return Object.entries(methods).flatMap(([method, acc]) =>
    seeds.flatMap((seed) =>
      Array.from({ length: languages }, (_, l) => ({
        method,
        seed,
        language: `l${String(l).padStart(3, "0")}`,
        split: "test" as const,
        accuracy: acc(seed, l),
        ...(n === undefined ? {} : { n }),
      }))
    )
  );
}

/** A base accuracy that varies by language and seed, as real results do. */
const base: Accuracy = (seed, l) => 0.45 + 0.3 * ((l * 37) % 11) / 11 + 0.01 * ((seed * 7) % 3);

Deno.test("a gain from one lucky seed is not significant, though every language in it gained", () => {
  const rows = grid({ full: base, graddrop: (s, l) => base(s, l) + (s === 1 ? 0.1 : 0) }, [1, 2, 3], 50, 60);
  const c = comparePair(rows, "graddrop", "full", { resamples: 2000, seed: 0 });
  assert.ok(typeof c !== "string");
  assert.ok(Math.abs(c.gain - 10 / 3) < 1e-9, "gain in points");
  assert.ok(c.p >= 0.05, `p ${c.p}`);
  assert.equal(c.p, 1, "every sign pattern of (10, 0, 0) is as extreme");
  assert.equal(c.min_p, 0.25, "three seeds cannot go below 2/8");
  assert.equal(c.n_seeds, 3);
  assert.equal(c.n_languages, 50);
});

Deno.test("runs pair by seed number: seeds one method lacks drop out, the rest keep their partner", () => {
  // graddrop beats full by 5 points at every seed both ran (2 and 3); paired by position instead
  // (1-2, 2-3, 3-4 across the two lists), every gain would be 5 points the other way.
  const value = (m: string, s: number) => 0.1 * s + (m === "graddrop" ? 0.05 : 0);
  const rows = [
    ...[1, 2, 3].map((seed) => ({
      method: "graddrop",
      seed,
      language: "x",
      split: "test" as const,
      accuracy: value("graddrop", seed),
    })),
    ...[2, 3, 4].map((seed) => ({
      method: "full",
      seed,
      language: "x",
      split: "test" as const,
      accuracy: value("full", seed),
    })),
  ];
  const c = comparePair(rows, "graddrop", "full", { resamples: 100, seed: 0 });
  assert.ok(typeof c !== "string");
  assert.deepEqual(c.seeds, [2, 3]);
  assert.deepEqual(c.per_seed.map((g) => +g.toFixed(9)), [5, 5]);
});

Deno.test("a steady +3 points in each of 6 seeds over 50 languages is significant and its CI excludes 0", () => {
  const rand = mulberry32(5);
  const noise = new Map<string, number>();
  const jitter = (s: number, l: number) =>
    noise.get(`${s},${l}`) ?? noise.set(`${s},${l}`, (rand() - 0.5) * 0.02).get(`${s},${l}`)!;
  const rows = grid(
    { full: base, graddrop: (s, l) => base(s, l) + 0.03 + jitter(s, l) },
    [1, 2, 3, 4, 5, 6],
    50,
  );
  const a = analyze(rows, { pairs: "all", resamples: 2000, seed: 0 });
  assert.equal(a.comparisons.length, 1);
  const c = a.comparisons[0];
  assert.equal(c.a, "graddrop");
  assert.equal(c.b, "full");
  assert.ok(c.p < 0.05 && c.p_holm < 0.05, `p ${c.p}`);
  assert.equal(c.p, 2 / 64);
  assert.ok(c.ci95![0] > 0 && c.ci95![0] < 3 && c.ci95![1] > 3, `CI ${c.ci95}`);
  assert.ok(Math.abs(c.gain - 3) < 0.2);
});

Deno.test("wins/ties/losses count only differences beyond the language's binomial standard error", () => {
  const rows: MetricRow[] = [];
  const add = (method: string, language: string, accuracy: number, n?: number) => {
    for (const seed of [1, 2]) {
      rows.push({ method, seed, language, split: "test", accuracy, ...(n ? { n } : {}) });
    }
  };
  // SE of 0.5 vs 0.5 + d on 60 items is about 9.1 points: +5 is a tie, +20 a win, -20 a loss.
  add("full", "tie", 0.5, 60), add("graddrop", "tie", 0.55, 60);
  add("full", "win", 0.5, 60), add("graddrop", "win", 0.7, 60);
  add("full", "loss", 0.5, 60), add("graddrop", "loss", 0.3, 60);
  // +5 on 2000 items (SE about 1.6) is a win.
  add("full", "big", 0.5, 2000), add("graddrop", "big", 0.55, 2000);
  add("full", "unsized", 0.5), add("graddrop", "unsized", 0.9);
  const c = comparePair(rows, "graddrop", "full", { resamples: 500, seed: 0 });
  assert.ok(typeof c !== "string");
  const outcome = Object.fromEntries(c.languages.map((g) => [g.language, g.outcome]));
  assert.deepEqual(outcome, { big: "win", loss: "loss", tie: "tie", unsized: "unknown", win: "win" });
  assert.deepEqual([c.wins, c.ties, c.losses, c.unknown], [2, 1, 1, 1]);
  const tie = c.languages.find((g) => g.language === "tie")!;
  assert.ok(Math.abs(tie.se! - 100 * Math.sqrt((0.25 + 0.55 * 0.45) / 60)) < 1e-9);
});

Deno.test("analyze: every pair exploratory without a declared primary, Holm over pairs and correlations, n/a for missing covariates, floor untested", () => {
  const task: ReportTask = {
    name: "t",
    labels: [],
    train_languages: ["src"],
    languages: Object.fromEntries(Array.from({ length: 20 }, (_, l) => [
      `l${String(l).padStart(3, "0")}`,
      // pretrain_tokens known for half the languages only; unk_rate for none.
      {
        script: l % 2 ? "Latn" : "Cyrl",
        tier: l < 10 ? "high" : "low",
        pretrain_tokens: l < 10 ? 1000 * (l + 1) : null,
        fertility: 1 + l / 10,
      },
    ])),
  };
  const rows = [
    ...grid(
      {
        full: base,
        "gradual-unfreezing": (s, l) => base(s, l) + 0.01,
        graddrop: (s, l) => base(s, l) + 0.002 * l,
      },
      [1, 2, 3],
      20,
      100,
    ),
    ...majorityFloor([0, 0, 1], [{ language: "l000", split: "test", gold: [0, 1, 1, 0] }]),
    ...["full", "gradual-unfreezing", "graddrop"].flatMap((method) =>
      [1, 2, 3].map((seed) => ({ method, seed, language: "src", split: "source" as const, accuracy: 0.9 }))
    ),
  ];
  const a = analyze(rows, { pairs: "all", resamples: 500, seed: 0, task });
  assert.deepEqual(a.methods, ["full", "gradual-unfreezing", "graddrop"]);
  assert.deepEqual(a.comparisons.map((c) => `${c.a}-${c.b}`), [
    "gradual-unfreezing-full",
    "graddrop-full",
    "graddrop-gradual-unfreezing",
  ]);
  assert.ok(
    a.comparisons.every((c) => c.a !== "majority" && c.b !== "majority"),
    "the floor is never tested",
  );
  const rho = (m: string, cov: string) => a.covariates.find((c) => c.method === m && c.covariate === cov)!;
  assert.equal(rho("graddrop", "unk_rate").rho, null, "unknown everywhere: n/a, not 0");
  assert.equal(rho("graddrop", "unk_rate").p_holm, null);
  assert.equal(rho("graddrop", "pretrain_tokens").n, 10);
  assert.ok(Math.abs(rho("graddrop", "pretrain_tokens").rho! - 1) < 1e-12, "gain grows with l, as do tokens");
  assert.ok(Math.abs(rho("graddrop", "fertility").rho! - 1) < 1e-12);
  // The seed is the unit: each of the 3 seeds has rho 1, so p is the sign-flip floor 2/2^3.
  assert.deepEqual(rho("graddrop", "fertility").rho_per_seed.map((r) => +r.toFixed(12)), [1, 1, 1]);
  assert.equal(rho("graddrop", "fertility").p, 0.25);
  const family = [
    ...a.comparisons.map((c) => c.p),
    ...a.covariates.map((c) => c.p).filter((p) => p !== null),
    ...a.groups.map((g) => g.p).filter((p) => p !== null),
  ];
  assert.ok(a.comparisons.every((c) => c.family === "exploratory" && c.metric === "accuracy"));
  assert.equal(a.design.families.find((f) => f.family === "exploratory")!.tests, family.length);
  assert.deepEqual([
    ...a.comparisons.map((c) => c.p_holm),
    ...a.covariates.map((c) => c.p_holm).filter((p) => p !== null),
    ...a.groups.map((g) => g.p_holm).filter((p) => p !== null),
  ], holm(family));
  assert.equal(
    a.groups.filter((g) => g.by === "tier" && g.p !== null).length,
    2 * 2,
    "two tiers x two methods against the baseline",
  );
  assert.ok(a.groups.filter((g) => g.by === "script").every((g) => g.p === null), "scripts are descriptive");
  // A primary declared baseline first is still analysed as the method's gain over the baseline.
  const turned = analyze(rows, {
    pairs: "all",
    resamples: 500,
    seed: 0,
    task,
    primary: [{ a: "full", b: "graddrop", metric: "accuracy" }],
  });
  assert.equal(turned.comparisons.find((c) => c.family === "primary")!.a, "full");
  const fertility = turned.covariates.find((c) => c.method === "graddrop" && c.covariate === "fertility")!;
  assert.ok(Math.abs(fertility.rho! - 1) < 1e-12, "graddrop − full, as when declared graddrop:full");
  assert.equal(
    turned.groups.filter((g) => g.method === "graddrop" && g.by === "tier" && g.p !== null).length,
    2,
  );
  const tiers = a.groups.filter((g) => g.by === "tier" && g.method === "graddrop");
  assert.deepEqual(tiers.map((g) => [g.group, g.n]), [["high", 10], ["low", 10]]);
  const floor = a.summary.find((s) => s.floor)!;
  assert.equal(floor.method, "majority");
  assert.equal(floor.zero_shot!.ci95, null);
  assert.equal(a.per_language.find((l) => l.language === "l000")!.accuracy.majority, 50);
  const full = a.summary.find((s) => s.method === "full")!;
  assert.ok(Math.abs(full.source!.mean - 90) < 1e-9);
  const [lo, hi] = full.zero_shot!.ci95!;
  assert.ok(lo < full.zero_shot!.mean && full.zero_shot!.mean < hi);
  const only = analyze(rows, { pairs: "baseline", baseline: "gradual-unfreezing", resamples: 200, seed: 0 });
  assert.deepEqual(only.comparisons.map((c) => `${c.a}-${c.b}`), [
    "full-gradual-unfreezing",
    "graddrop-gradual-unfreezing",
  ]);
});

Deno.test("majority floor: most frequent training label, smallest id among equals", () => {
  const rows = majorityFloor([1, 2, 2, 1], [{ language: "x", split: "test", gold: [1, 1, 2] }, {
    language: "empty",
    split: "test",
    gold: [],
  }]);
  assert.deepEqual(rows.map((r) => [r.language, r.accuracy, r.n, r.seed]), [["x", 2 / 3, 3, 0]]);
});

Deno.test("parseMetrics names the row and the field of the first problem", () => {
  const ok = { method: "full", seed: 1, language: "fra", split: "test", accuracy: 0.5 };
  assert.throws(
    () => parseMetrics({ rows: [ok, { ...ok, seed: 2, accuracy: "0.5" }] }, "m.json"),
    /m\.json: rows\[1\]\.accuracy: /,
  );
  assert.throws(() => parseMetrics({ rows: [{ ...ok, split: "dev" }] }, "m.json"), /rows\[0\]\.split/);
  assert.throws(() => parseMetrics({ rows: [ok, ok] }, "m.json"), /rows\[1\]\.language: .*also rows\[0\]/);
  assert.throws(() => parseMetrics([ok], "m.json"), /m\.json: /);
});

async function runCommand(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...xs: unknown[]) => out.push(xs.join(" "));
  console.error = (...xs: unknown[]) => err.push(xs.join(" "));
  try {
    const code = await analyzeCommand(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("analyze command: a malformed file exits 2 with one line naming the row and the field", async () => {
  const dir = Deno.makeTempDirSync();
  const file = `${dir}/metrics.json`;
  const ok = { method: "full", seed: 1, language: "fra", split: "test", accuracy: 0.5 };
  Deno.writeTextFileSync(file, JSON.stringify({ rows: [ok, { ...ok, seed: 2, split: "dev" }] }));
  let r = await runCommand(["--metrics", file]);
  assert.equal(r.code, 2);
  assert.equal(r.err.split("\n").length, 1);
  assert.match(r.err, /^error: .*metrics\.json: rows\[1\]\.split: /);
  Deno.writeTextFileSync(file, JSON.stringify({ rows: [ok, ok] }));
  r = await runCommand(["--metrics", file]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^error: .*metrics\.json: rows\[1\]\.language: .*also rows\[0\]/);
  Deno.writeTextFileSync(file, JSON.stringify({ rows: [ok, { ...ok, seed: 2, n: -3 }] }));
  r = await runCommand(["--metrics", file]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^error: .*rows\[1\]\.n: /);
  assert.equal((await runCommand(["--metrics", `${dir}/absent.json`])).code, 2);
  assert.equal((await runCommand(["--metrics", file, "--bogus"])).code, 2);
  assert.equal((await runCommand([])).code, 2);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("analyze command: --json prints exactly the comparisons contract; --baseline restricts to it", async () => {
  const dir = Deno.makeTempDirSync();
  const file = `${dir}/metrics.json`;
  const rows = grid(
    {
      full: base,
      "gradual-unfreezing": (s, l) => base(s, l) + 0.01,
      graddrop: (s, l) => base(s, l) + 0.02,
    },
    [1, 2, 3],
    8,
    200,
  );
  Deno.writeTextFileSync(file, JSON.stringify({ rows }));
  const all = await runCommand(["--metrics", file, "--json", "--resamples", "500"]);
  assert.equal(all.code, 0, all.err);
  const doc = JSON.parse(all.out);
  assert.deepEqual(Object.keys(doc), ["comparisons"]);
  assert.equal(doc.comparisons.length, 3);
  for (const c of doc.comparisons) {
    assert.deepEqual(Object.keys(c), [
      "a",
      "b",
      "family",
      "metric",
      "split",
      "gain",
      "ci95",
      "p",
      "p_holm",
      "n_seeds",
      "n_languages",
    ]);
    assert.equal(c.ci95.length, 2);
    assert.equal(c.n_seeds, 3);
    assert.equal(c.n_languages, 8);
  }
  const gd = doc.comparisons.find((c: { a: string; b: string }) =>
    c.a === "graddrop" && c.b === "gradual-unfreezing"
  );
  assert.ok(Math.abs(gd.gain - 1) < 1e-9, "points");
  const vs = JSON.parse(
    (await runCommand(["--metrics", file, "--json", "--baseline", "gradual-unfreezing"])).out,
  );
  assert.deepEqual(vs.comparisons.map((c: { a: string; b: string }) => [c.a, c.b]), [
    ["full", "gradual-unfreezing"],
    ["graddrop", "gradual-unfreezing"],
  ]);
  const text = await runCommand(["--metrics", file]);
  assert.equal(text.code, 0);
  assert.match(text.out, /graddrop - gradual-unfreezing\s+exploratory\s+accuracy\s+\+1\.0/);
  assert.match(text.out, /3 seeds \(smallest p 0\.250\)/);
  const unknown = await runCommand(["--metrics", file, "--baseline", "nope"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /baseline 'nope'/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("language centring: the head scores each language's features moved onto the pivot's mean; no text, no centred figures", async () => {
  await useBackend("cpu");
  const { cfg, weights } = await tinyClassifier(7);
  const dir = tempDir();
  await Deno.writeFile(`${dir}/model.onnx`, exportClassifier(cfg, weights, 4));
  await Deno.writeFile(`${dir}/head.onnx`, exportHead(cfg, weights, 4));
  const langs = ["de", "en", "fr"], labels = ["a", "b", "c", "d"];
  const rand = mulberry32(3);
  // French draws its tokens from another range: its vectors sit elsewhere, as a language's do.
  const row = (lang: string, item: number, label: number) => ({
    ids: [0, ...Array.from({ length: 6 }, () => (lang === "fr" ? 150 : 5) + Math.floor(rand() * 100)), 2],
    label,
    lang: langs.indexOf(lang),
    item,
  });
  const test = buildShard(
    "test",
    langs.flatMap((l) => Array.from({ length: 12 }, (_, i) => row(l, i, i % 4))),
    16,
    1,
    langs,
    labels,
  );
  // Unlabelled text for English and French only; German has none.
  const unlabelled = buildShard(
    "unlabelled",
    ["en", "fr"].flatMap((l) => Array.from({ length: 10 }, (_, i) => row(l, 100 + i, -1))),
    16,
    1,
    langs,
    labels,
  );
  const info = { examples: { train: 0, dev: 0, test: 12 }, script: "Latin", fertility: 1, unk_rate: 0 };
  const task = {
    name: "t",
    labels,
    train_languages: ["en"],
    test_languages: langs,
    max_length: 16,
    languages: Object.fromEntries(
      langs.map((l) => [l, { ...info, pretrain_share: null, resource_size: null }]),
    ),
    warnings: [],
  };
  const [sess, head] = [
    await session(`${dir}/model.onnx`, "wasm"),
    await session(`${dir}/head.onnx`, "wasm"),
  ];
  const { rows } = await evaluateTask(sess, task, { dev: test, test, unlabelled }, () => {}, "en", head);
  const by = Object.fromEntries(rows.map((r) => [r.language, r]));
  assert.equal(by.de.accuracy_centred, undefined, "no unlabelled German: nothing to centre on");
  assert.equal(by.de.retrieval_centred, undefined);
  assert.equal(by.en.accuracy_centred, undefined, "the pivot does not move");
  // The expectation, from the features and the head directly.
  const all = (s: Shard) => Array.from({ length: s.index.n }, (_, i) => i);
  const [f, u] = [await infer(sess, test, all(test)), await infer(sess, unlabelled, all(unlabelled))];
  const d = cfg.hidden_size;
  // A language's mean over the unlabelled rows, of the head's input or of the pooled vectors.
  const meanOf = (vectors: Float32Array, lang: string) =>
    Array.from({ length: d }, (_, k) => {
      const rs = all(unlabelled).filter((r) => unlabelled.langs[r] === langs.indexOf(lang));
      return rs.reduce((s, r) => s + vectors[r * d + k], 0) / rs.length;
    });
  const [en, fr] = [meanOf(u.features, "en"), meanOf(u.features, "fr")];
  const frRows = all(test).filter((r) => test.langs[r] === langs.indexOf("fr"));
  const moved = Float32Array.from(frRows.flatMap((r) => en.map((e, k) => f.features[r * d + k] - fr[k] + e)));
  const expected = await headLabels(head, moved, frRows.length, d);
  const correct = frRows.filter((r, i) => expected[i] === test.labels[r]).length;
  assert.equal(by.fr.accuracy_centred, correct / frRows.length);
  // Every prediction, not only the count right: F1 and the shares of each label follow from them.
  const want = scores(Int32Array.from(frRows, (r) => test.labels[r]), Int32Array.from(expected), 4);
  assert.deepEqual([by.fr.f1_centred, by.fr.pred_share_centred], [want.f1, want.pred_share]);
  assert.ok(
    frRows.some((r, i) => expected[i] !== f.labels[r]),
    "centring moved some French prediction (else this test could not tell it ran)",
  );
  // Retrieval centred: each side minus its own language's mean of pooled vectors.
  const side = (lang: string) => {
    const m = meanOf(u.pooled, lang);
    const rs = all(test).filter((r) => test.langs[r] === langs.indexOf(lang));
    return Float32Array.from(rs.flatMap((r) => m.map((mk, k) => f.pooled[r * d + k] - mk)));
  };
  assert.equal(by.fr.retrieval_centred, retrieval(side("en"), side("fr"), 12, d).top1);
});

Deno.test("retrieval over a whole shard matches rows across languages by item id", async () => {
  await useBackend("cpu");
  const { cfg, weights } = await tinyClassifier(5);
  const dir = tempDir();
  await Deno.writeFile(`${dir}/model.onnx`, exportClassifier(cfg, weights, 4));
  const rand = mulberry32(9);
  const sentences = Array.from(
    { length: 10 },
    () => [0, ...Array.from({ length: 6 }, () => 5 + Math.floor(rand() * 250)), 2],
  );
  const langs = ["de", "en", "fr"];
  // French item i is English item i word for word; German item i carries English item i+1's words.
  const rows = sentences.flatMap((ids, i) => [
    { ids, label: -1, lang: 1, item: i },
    { ids, label: -1, lang: 2, item: i },
    { ids: sentences[(i + 1) % 10], label: -1, lang: 0, item: i },
  ]);
  const shard = buildShard("unlabelled", rows, 16, 1, langs, ["a", "b", "c", "d"]);
  const all = Array.from({ length: shard.index.n }, (_, i) => i);
  const pass = await infer(await session(`${dir}/model.onnx`, "wasm"), shard, all);
  const byLanguage = shardRetrieval(shard, pass, "en");
  assert.deepEqual([...byLanguage.keys()].sort(), ["de", "fr"]);
  assert.equal(byLanguage.get("fr")!.top1, 1, "identical text retrieves its own item");
  assert.equal(byLanguage.get("de")!.top1, 0, "every German item holds another item's text");
  Deno.removeSync(dir, { recursive: true });
});
