import assert from "node:assert/strict";
import {
  dropRate,
  fateOf,
  inChildTuningDPool,
  type Method,
  type MethodConfig,
  resolveGradDrop,
  type StepCtx,
  trainable,
} from "../train/methods.ts";
import { namedConfig } from "../model/config.ts";
import { initParams } from "../model/encoder.ts";
import { buildShard } from "../data/shards.ts";
import {
  epochBatches,
  finetune,
  type FinetuneOptions,
  fisherInformation,
  type LogRow,
} from "../train/finetune.ts";
import { useBackend } from "./gpu.ts";

const L = 4;
const cfgOf = (method: Method, extra: Partial<MethodConfig> = {}): MethodConfig => ({
  method,
  graddrop: resolveGradDrop(method, {}),
  unfreeze_every: 2,
  childtuning_pf: 0.3,
  childtuning_pd: 0.3,
  childtuning_mask_head: true,
  lr_match_rate: 0.5,
  ...extra,
});
const at = (step: number, totalSteps = 20): StepCtx => ({
  step,
  epoch: Math.floor(step / 5),
  totalSteps,
  epochs: 4,
  stepsPerEpoch: 5,
  seed: 1,
});

Deno.test("methods: which layers train when", () => {
  const layers = [-1, 0, 1, 2, 3, 4];
  const on = (m: Method, step: number) => layers.filter((l) => trainable(cfgOf(m), l, L, at(step)));
  assert.deepEqual(on("full", 0), layers);
  assert.deepEqual(on("frozen", 7), [4]);
  assert.deepEqual(on("gradual-unfreezing", 0), [4]);
  assert.deepEqual(on("gradual-unfreezing", 2), [3, 4]);
  assert.deepEqual(on("gradual-unfreezing", 7), [1, 2, 3, 4]);
  assert.deepEqual(on("gradual-unfreezing", 8), [0, 1, 2, 3, 4]);
  assert.deepEqual(on("gradual-unfreezing", 10), layers, "embeddings last");
  assert.deepEqual(on("graddrop-unfreeze", 2), [3, 4]);
  assert.deepEqual(
    layers.filter((l) => trainable(cfgOf("gradual-unfreezing", { unfreeze_every: "epoch" }), l, L, at(5))),
    [3, 4],
  );
});

Deno.test("methods: GradDrop presets set rate, granularity, schedule and target", () => {
  const w = "roberta.encoder.layer.1.output.dense.weight";
  const gd = fateOf(cfgOf("graddrop"), w, 1, L, [32, 64], 7, at(3))!;
  assert.equal(gd.mode, "gradient");
  assert.equal(gd.rate, 0.5);
  assert.equal(gd.mask!.divisor, 1);
  assert.equal(gd.mask!.scale, 1, "no rescaling by default");
  assert.equal(fateOf(cfgOf("graddrop"), "classifier.dense.weight", L, L, [32, 32], 9, at(3))!.mode, "none");
  const layer = cfgOf("graddrop-layer");
  const a = fateOf(layer, w, 1, L, [32, 64], 7, at(3))!,
    b = fateOf(layer, "roberta.encoder.layer.1.output.dense.bias", 1, L, [32], 8, at(3))!;
  assert.equal(a.mask!.key, b.mask!.key, "one draw per layer");
  assert.equal(a.mask!.divisor, 32 * 64);
  assert.ok(Math.abs(dropRate(layer.graddrop, -1, L, at(0)) - 0.8) < 1e-12);
  assert.ok(Math.abs(dropRate(layer.graddrop, 3, L, at(0)) - 0.2) < 1e-12);
  const anneal = cfgOf("graddrop-anneal");
  assert.equal(dropRate(anneal.graddrop, 1, L, at(0)), 0.5);
  assert.equal(dropRate(anneal.graddrop, 1, L, at(19)), 0);
  const row = cfgOf("graddrop", {
    graddrop: resolveGradDrop("graddrop", {
      granularity: "row",
      rescale: true,
      rate: 0.25,
      mask_target: "update",
      resample: "epoch",
    }),
  });
  const r = fateOf(row, w, 1, L, [32, 64], 7, at(3))!;
  assert.equal(r.mask!.divisor, 64);
  assert.equal(r.mode, "update");
  assert.ok(Math.abs(r.mask!.scale - 1 / 0.75) < 1e-12);
  assert.equal(r.mask!.key, fateOf(row, w, 1, L, [32, 64], 7, at(4))!.mask!.key, "same epoch, same mask");
  const ct = fateOf(cfgOf("childtuning-f"), w, 1, L, [32, 64], 7, at(3))!;
  assert.ok(Math.abs(ct.mask!.scale - 1 / 0.3) < 1e-12);
  assert.equal(fateOf(cfgOf("full"), w, 1, L, [32, 64], 7, at(3))!.mode, "none");
});

Deno.test("methods: a GradDrop schedule needs its end, and a constant one refuses it", () => {
  assert.throws(() => resolveGradDrop("graddrop", { rate: 0.2, schedule: "linear" }), /graddrop\.rate_end/);
  assert.throws(() => resolveGradDrop("graddrop", { rate: 0.2, rate_end: 0.1 }), /rate_end is ignored/);
  const down = resolveGradDrop("graddrop", { rate: 0.2, schedule: "linear", rate_end: 0.1 });
  assert.equal(dropRate(down, 1, L, at(0)), 0.2);
  assert.ok(Math.abs(dropRate(down, 1, L, at(19)) - 0.1) < 1e-12);
  const anneal = resolveGradDrop("graddrop-anneal", { rate: 0.3 });
  assert.equal(dropRate(anneal, 1, L, at(19)), 0, "the preset's end");
});

Deno.test("fine-tuning batches: length buckets hold the same rows per epoch, with less padding", () => {
  const rows = Array.from(
    { length: 100 },
    (_, i) => ({ ids: Array(3 + (i * 37) % 60).fill(5), label: 0, lang: 0 }),
  );
  const shard = buildShard("train", rows, 64, 1, ["x"], ["a"]);
  const plain = epochBatches(shard, { batchSize: 8, seed: 1, bucketByLength: false }, 0);
  const bucketed = epochBatches(shard, { batchSize: 8, seed: 1, bucketByLength: true }, 0);
  assert.deepEqual(bucketed.flat().sort((a, b) => a - b), plain.flat().sort((a, b) => a - b));
  const padded = (bs: number[][]) =>
    bs.reduce((a, b) => a + b.length * Math.max(...b.map((r) => shard.lengths[r])), 0);
  assert.ok(padded(bucketed) < 0.8 * padded(plain), `${padded(bucketed)} vs ${padded(plain)} token slots`);
  assert.notDeepEqual(
    bucketed,
    epochBatches(shard, { batchSize: 8, seed: 1, bucketByLength: true }, 1),
    "a new order each epoch",
  );
});

Deno.test("methods: baselines as their authors define them; the step-size control", () => {
  const head = "classifier.out_proj.weight", w = "roberta.encoder.layer.1.output.dense.weight";
  const ct = fateOf(cfgOf("childtuning-f"), head, L, L, [3, 32], 9, at(3))!;
  assert.equal(ct.mode, "gradient", "Child-Tuning-F masks the head too, as the reference code does");
  assert.equal(
    fateOf(cfgOf("childtuning-f", { childtuning_mask_head: false }), head, L, L, [3, 32], 9, at(3))!.mode,
    "none",
  );
  assert.equal(
    fateOf(cfgOf("graddrop-layer"), w, 1, L, [32, 64], 7, at(3))!.mode,
    "update",
    "a dropped layer does not move",
  );
  assert.ok(
    Math.abs(fateOf(cfgOf("full-lr-matched"), w, 1, L, [32, 64], 7, at(3))!.lrScale - Math.sqrt(0.5)) < 1e-12,
  );
  const comp = cfgOf("graddrop", {
    graddrop: resolveGradDrop("graddrop", { rate: 0.75, lr_compensation: true }),
  });
  assert.ok(Math.abs(fateOf(comp, w, 1, L, [32, 64], 7, at(3))!.lrScale - 2) < 1e-12, "1/sqrt(1 - 0.75)");
  assert.equal(fateOf(cfgOf("graddrop"), w, 1, L, [32, 64], 7, at(3))!.lrScale, 1);
  assert.ok(inChildTuningDPool(w));
  assert.ok(!inChildTuningDPool("roberta.embeddings.word_embeddings.weight"));
  assert.ok(!inChildTuningDPool("classifier.dense.weight"));
});

Deno.test("methods: gradual unfreezing 'auto' reaches the embeddings within the run", () => {
  const auto = cfgOf("gradual-unfreezing", { unfreeze_every: "auto" });
  for (const total of [12, 20, 133]) {
    const ctx = (step: number) => ({ ...at(step, total), totalSteps: total });
    assert.ok(!trainable(auto, -1, L, ctx(0)), "embeddings frozen at the start");
    assert.ok(trainable(auto, -1, L, ctx(total - 1)), `embeddings train before the end (${total} steps)`);
    assert.ok(
      !trainable(auto, 0, L, ctx(Math.floor(total / (L + 2)) * L - 1)),
      "the bottom layer comes late",
    );
  }
});

Deno.test("Child-Tuning-D: each pool tensor's gradient is clipped on its own before squaring", async () => {
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 60);
  const params = initParams(cfg, { mlm: false, numLabels: 3 }, 1);
  const rows = Array.from(
    { length: 32 },
    (_, i) => ({ ids: [0, 5 + (i % 9), 10 + (i % 7), 2], label: i % 3, lang: 0 }),
  );
  const shard = buildShard("train", rows, 8, 1, ["x"], ["a", "b", "c"]);
  const clip = 1e-3;
  const fisher = await fisherInformation(params, cfg, shard, {
    batchSize: 8,
    clipNorm: clip,
    dropout: 0.1,
    seed: 1,
  });
  assert.deepEqual([...fisher.keys()].every(inChildTuningDPool), true, "encoder layers only");
  // Cut to norm `clip` on its own in every batch, a tensor's mean square is clip^2 (a little less
  // where its gradient is near the clip). Most tensors' gradients are far above it here; clipped by
  // the pool's global norm instead, the pool's tensors would share clip^2 and at most one reach it.
  let atClip = 0;
  for (const [n, f] of fisher) {
    const total = f.reduce((a, x) => a + x, 0);
    assert.ok(total <= clip * clip * (1 + 1e-3), `${n}: mean squared clipped gradient ${total} <= clip^2`);
    if (total >= 0.99 * clip * clip) atClip++;
  }
  assert.ok(atClip >= fisher.size / 2, `${atClip} of ${fisher.size} tensors at clip^2`);
});

async function run(method: Method, backend: "cpu" | "webgpu", extra: Partial<MethodConfig> = {}) {
  await useBackend(backend);
  const cfg = namedConfig("tiny", 60);
  const params = initParams(cfg, { mlm: false, numLabels: 3 }, 1);
  const rows = Array.from(
    { length: 64 },
    (_, i) => ({ ids: [0, 5 + (i % 3), 10 + (i % 7), 20 + (i % 5), 2], label: i % 3, lang: 0 }),
  );
  const shard = buildShard("train", rows, 8, 1, ["x"], ["a", "b", "c"]);
  const out = await finetune(params, cfg, cfgOf(method, { unfreeze_every: 4, ...extra }), shard, shard, {
    lr: 3e-3,
    epochs: 2,
    batchSize: 16,
    warmup: 0,
    weightDecay: 0.01,
    clipNorm: 1,
    seed: 1,
    dropout: 0.1,
    select: "best-dev",
    logKeptEvery: 1,
    fused: true,
    bucketByLength: false,
  }, () => {});
  return out.log;
}

const keptAvg = (log: LogRow[], layer: string) => log.reduce((a, r) => a + r.kept![layer], 0) / log.length;

Deno.test("fine-tuning logs: kept fractions per layer match each method's configuration (webgpu)", async () => {
  const gd = await run("graddrop", "webgpu");
  for (const l of ["emb", "0", "1"]) {
    assert.ok(Math.abs(keptAvg(gd, l) - 0.5) < 0.02, `graddrop layer ${l}: ${keptAvg(gd, l)}`);
  }
  assert.equal(keptAvg(gd, "head"), 1);
  const fr = await run("frozen", "webgpu");
  assert.deepEqual([keptAvg(fr, "emb"), keptAvg(fr, "0"), keptAvg(fr, "1"), keptAvg(fr, "head")], [
    0,
    0,
    0,
    1,
  ]);
  const gu = await run("gradual-unfreezing", "webgpu");
  assert.deepEqual(gu.map((r) => r.kept!["1"]), [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.deepEqual(gu.map((r) => r.kept!["emb"]), [0, 0, 0, 0, 0, 0, 0, 0]);
  const gl = await run("graddrop-layer", "webgpu");
  for (const r of gl) {
    for (const l of ["emb", "0", "1"]) {
      assert.ok(r.kept![l] === 0 || r.kept![l] === 1, "layer draws are all-or-nothing");
    }
  }
  const ctd = await run("childtuning-d", "webgpu");
  assert.ok(
    keptAvg(ctd, "0") > 0.2 && keptAvg(ctd, "0") < 0.4,
    `childtuning-d keeps ~30%: ${keptAvg(ctd, "0")}`,
  );
  for (const log of [gd, fr, gu, gl, ctd]) assert.ok(log.every((r) => Number.isFinite(r.loss)));
});

Deno.test("fine-tuning: the same seed reproduces the same log (cpu and webgpu)", async () => {
  for (const backend of ["cpu", "webgpu"] as const) {
    const a = await run("graddrop-anneal", backend), b = await run("graddrop-anneal", backend);
    assert.deepEqual(a, b);
  }
});

Deno.test("fine-tuning: GradDrop masks are the same on cpu (reference) and webgpu (WGSL)", async () => {
  const c = await run("graddrop", "cpu"), g = await run("graddrop", "webgpu");
  assert.deepEqual(c.map((r) => r.kept), g.map((r) => r.kept));
});

/** The small run the pinned-weights tests train, with `extra` on top. */
const smallRun = (extra: Partial<FinetuneOptions> = {}): FinetuneOptions => ({
  lr: 1e-3,
  epochs: 2,
  batchSize: 8,
  warmup: 1,
  weightDecay: 0.01,
  clipNorm: 1,
  seed: 3,
  dropout: 0.1,
  select: "last",
  logKeptEvery: 0,
  fused: true,
  bucketByLength: false,
  ...extra,
});

Deno.test("fine-tuning: weights are pinned on cpu (moving code must not change a result)", async () => {
  const { createHash } = await import("node:crypto");
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 50);
  const rows = Array.from({ length: 24 }, (_, i) => ({
    ids: [0, 5 + (i % 7), 6 + (i * 3) % 40, 7 + (i * 5) % 40, 2],
    label: i % 3,
    lang: 0,
  }));
  const shard = buildShard("train", rows, 8, 1, ["x"], ["a", "b", "c"]);
  const hashes: Record<string, string> = {};
  for (
    const method of ["full", "graddrop", "childtuning-f", "graddrop-layer", "gradual-unfreezing"] as const
  ) {
    const params = initParams(cfg, { mlm: false, numLabels: 3 }, 1);
    await finetune(params, cfg, cfgOf(method), shard, shard, smallRun(), () => {});
    const h = createHash("sha256");
    for (const [n, v] of [...params].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      h.update(n);
      h.update(new Uint8Array(((await v.data()) as Float32Array).buffer));
    }
    hashes[method] = h.digest("hex").slice(0, 16);
  }
  // full, graddrop and gradual-unfreezing as computed before the layering moves (commit 5c833d7).
  // childtuning-f and graddrop-layer changed on purpose after it: the reference Child-Tuning-F
  // masks the head too, and graddrop-layer now masks the whole update (and, since issue 20, a
  // layer's bias correction counts only the steps it was updated in).
  assert.deepEqual(hashes, {
    "full": "18cf7f9403c298a2",
    "graddrop": "b691c21d083ea04e",
    "childtuning-f": "8a3dc6210f6bfd76",
    "graddrop-layer": "ea93eaec30bf24b5",
    "gradual-unfreezing": "dc053793e1259a3e",
  });
});

Deno.test("discriminative fine-tuning: a layer d below the head takes layer_lr_decay^d of the step", async () => {
  const { layerOf } = await import("../model/encoder.ts");
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 50);
  const rows = Array.from(
    { length: 8 },
    (_, i) => ({ ids: [0, 5 + i, 6 + (i * 3) % 40, 2], label: i % 3, lang: 0 }),
  );
  const shard = buildShard("train", rows, 8, 1, ["x"], ["a", "b", "c"]);
  const init = initParams(cfg, { mlm: false, numLabels: 3 }, 1);
  const before = new Map<string, Float32Array>();
  for (const [n, v] of init) before.set(n, (await v.data()) as Float32Array);
  // One step (one batch of all rows), so both runs see the same gradient.
  const moved = async (layerLrDecay: number) => {
    const params = initParams(cfg, { mlm: false, numLabels: 3 }, 1);
    await finetune(
      params,
      cfg,
      cfgOf("full"),
      shard,
      shard,
      smallRun({ epochs: 1, warmup: 0, dropout: 0, layerLrDecay }),
      () => {},
    );
    const out = new Map<string, number>();
    for (const [n, v] of params) {
      const a = (await v.data()) as Float32Array, b = before.get(n)!;
      out.set(n, Math.hypot(...a.map((x, i) => x - b[i])));
    }
    return out;
  };
  const [plain, decayed] = [await moved(1), await moved(0.5)];
  const depth = cfg.num_hidden_layers;
  const seen = new Set<number>();
  for (const [n, step] of plain) {
    if (step === 0) continue;
    const layer = layerOf(n, depth);
    seen.add(layer);
    const want = 0.5 ** (depth - Math.min(layer, depth));
    assert.ok(
      Math.abs(decayed.get(n)! / step - want) < 1e-3 * want,
      `${n}: ${decayed.get(n)! / step} vs ${want}`,
    );
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [-1, ...Array.from({ length: depth + 1 }, (_, i) => i)]);
});
