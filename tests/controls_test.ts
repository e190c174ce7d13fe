import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { namedConfig } from "../model/config.ts";
import * as tf from "@tensorflow/tfjs";
import { classifierLogits, encode, headPooling, initParams, pooledForHead } from "../model/encoder.ts";
import { reinitialise } from "../model/checkpoint.ts";
import { exportClassifier } from "../eval/onnx_export.ts";
import { buildShard } from "../data/shards.ts";
import { fitBagOfSubwords, predictBagOfSubwords } from "../eval/bag_of_subwords.ts";
import { chooseRecipe, recipeMarkdown } from "../eval/recipe.ts";
import { useBackend } from "./gpu.ts";
import { tinyClassifier } from "./helpers.ts";

for (const pooling of ["mean", "max"] as const) {
  Deno.test(`${pooling}-pooling head: onnxruntime-web logits match tfjs within 1e-4, and differ from the <s> head`, async () => {
    await useBackend("cpu");
    const { cfg, params, weights } = await tinyClassifier(3, {
      ...namedConfig("tiny", 300),
      classifier_pooling: pooling,
    });
    const sess = await ort.InferenceSession.create(exportClassifier(cfg, weights, 4));
    const B = 3, T = 6;
    const ids = Int32Array.from([0, 5, 6, 7, 2, 1, 0, 50, 2, 1, 1, 1, 0, 299, 298, 4, 3, 2]);
    const out = await sess.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), [B, T]),
      attention_mask: new ort.Tensor("int64", BigInt64Array.from(ids, (v) => (v === 1 ? 0n : 1n)), [B, T]),
    });
    const batch = { ids, B, T };
    const hidden = encode(params, cfg, batch, null);
    const pooled = await classifierLogits(params, hidden, null, headPooling(cfg, batch)).data();
    const cls = await classifierLogits(params, hidden, null).data();
    const got = out.logits.data as Float32Array;
    const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
    assert.ok(maxDiff(got, pooled) <= 1e-4, `${pooling} head: max |diff| ${maxDiff(got, pooled)}`);
    assert.ok(maxDiff(pooled, cls) > 1e-2, `the ${pooling} head reads something other than <s>`);
    assert.equal(headPooling({ ...cfg, classifier_pooling: "cls" }, batch), undefined);
  });
}

Deno.test("max pooling never reads a pad position", async () => {
  await useBackend("cpu");
  const hidden = tf.tensor3d([[[1, -5], [3, -2], [9, 9]]]);
  const got = await pooledForHead(hidden, {
    kind: "max",
    batch: { ids: Int32Array.of(0, 2, 1), B: 1, T: 3 },
    pad: 1,
  })
    .data();
  assert.deepEqual(Array.from(got), [3, -2]);
});

Deno.test("random-init: every tensor is redrawn from the seed, the same way twice", async () => {
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 100), heads = { mlm: false, numLabels: 3 };
  const pretrained = initParams(cfg, heads, 1);
  const a = initParams(cfg, heads, 1), b = initParams(cfg, heads, 1);
  reinitialise(a, cfg, heads, 77);
  reinitialise(b, cfg, heads, 77);
  for (const [name, v] of pretrained) {
    const [x, y, z] = [v.dataSync(), a.get(name)!.dataSync(), b.get(name)!.dataSync()];
    assert.deepEqual(y, z, `${name}: same seed, same values`);
    if (/weight$/.test(name) && !/LayerNorm/.test(name)) assert.notDeepEqual(x, y, `${name} was redrawn`);
  }
});

Deno.test("bag-of-subwords: learns from pieces, never from special tokens, and picks L2 on dev", () => {
  // Label = which of ids 10..13 the row holds; id 4 (declared special) marks label 0 in train only.
  const rows = (n: number, leak: boolean) =>
    Array.from({ length: n }, (_, i) => {
      const label = i % 4;
      const filler = [20 + (i % 7), 30 + (i % 5)];
      return { ids: [0, ...(leak && label === 0 ? [4] : []), 10 + label, ...filler, 2], label, lang: 0 };
    });
  const shard = (name: string, n: number, leak: boolean) =>
    buildShard(name, rows(n, leak), 8, 1, ["eng"], ["a", "b", "c", "d"]);
  const train = shard("train", 40, true), dev = shard("dev", 12, false), test = shard("test", 16, false);
  const all = (s: typeof train) => Array.from({ length: s.index.n }, (_, i) => i);
  const skip = new Set([0, 1, 2, 4]);
  const fit = fitBagOfSubwords(
    { shard: train, rows: all(train) },
    { shard: dev, rows: all(dev) },
    4,
    40,
    skip,
    [1e-4, 10],
    { epochs: 20, lr: 0.05, seed: 1 },
  );
  assert.equal(fit.devAccuracy.length, 2);
  assert.equal(fit.l2, 1e-4, `a huge penalty cannot fit: ${JSON.stringify(fit.devAccuracy)}`);
  const pred = predictBagOfSubwords(fit, test, all(test));
  assert.equal(pred.filter((p, r) => p === test.labels[r]).length, test.index.n);
  for (let c = 0; c < 4; c++) {
    assert.ok(Math.abs(fit.model.w[c * 40 + 4]) < 1e-2, "special id 4 carries no weight");
  }
});

Deno.test("recipe: best mean dev over seeds per method, ties settled by the grid's order", () => {
  const r = chooseRecipe([
    { method: "full", seed: 1, point: { lr: 0.001, epochs: 4 }, dev: 0.5 },
    { method: "full", seed: 2, point: { lr: 0.001, epochs: 4 }, dev: 0.3 },
    { method: "full", seed: 1, point: { lr: 0.0005, epochs: 4 }, dev: 0.45 },
    { method: "full", seed: 2, point: { lr: 0.0005, epochs: 4 }, dev: 0.45 },
    { method: "graddrop", seed: 1, point: { lr: 0.001, epochs: 4 }, dev: 0.4 },
    { method: "graddrop", seed: 1, point: { lr: 0.0005, epochs: 4 }, dev: 0.4 },
  ]);
  assert.deepEqual(r.grid, { lr: [0.001, 0.0005], epochs: [4] });
  assert.deepEqual(r.methods.full.chosen, { lr: 0.0005, epochs: 4 }, "0.45 on both seeds beats 0.5 and 0.3");
  assert.equal(r.methods.full.points.length, 2);
  assert.deepEqual(
    r.methods.graddrop.chosen,
    { lr: 0.001, epochs: 4 },
    "a tie goes to the first value listed",
  );
});

Deno.test("recipe: the one-standard-error rule takes the cheapest point within one SE of the best", () => {
  const runs = [
    { method: "full", seed: 1, point: { epochs: 4, lr: 0.001 }, dev: 0.40 },
    { method: "full", seed: 1, point: { epochs: 4, lr: 0.0005 }, dev: 0.30 },
    { method: "full", seed: 1, point: { epochs: 8, lr: 0.001 }, dev: 0.44 },
  ];
  // SE at 0.44 over 99 items is 5.0 points: 0.40 is within it, 0.30 is not.
  const se = chooseRecipe(runs, { rule: "one-se", devItems: 99, cost: "epochs" }).methods.full;
  assert.deepEqual(se.chosen, { epochs: 4, lr: 0.001 });
  assert.ok(Math.abs(se.tolerance - Math.sqrt(0.44 * 0.56 / 99)) < 1e-12);
  const tight = chooseRecipe(runs, { rule: "one-se", devItems: 10000, cost: "epochs" }).methods.full;
  assert.deepEqual(
    tight.chosen,
    { epochs: 8, lr: 0.001 },
    "with a large dev set only the best is within one SE",
  );
  assert.deepEqual(chooseRecipe(runs).methods.full.chosen, { epochs: 8, lr: 0.001 });
});

Deno.test("recipe.md: one SE shown under either rule, and every point listed best first with its seeds", () => {
  const runs = [
    { method: "full", seed: 1, point: { epochs: 4, lr: 0.001 }, dev: 0.40 },
    { method: "full", seed: 2, point: { epochs: 4, lr: 0.001 }, dev: 0.38 },
    { method: "full", seed: 1, point: { epochs: 10, lr: 0.002 }, dev: 0.44 },
  ];
  for (const name of ["best", "one-se"] as const) {
    const rule = { rule: name, devItems: 99, cost: "epochs" };
    const md = recipeMarkdown(chooseRecipe(runs, rule), { rule, languages: ["eng_Latn"] });
    // sqrt(0.44 x 0.56 / 99) = 4.99 points, not the tolerance `best` uses (0).
    assert.match(md, /\| 44\.0 ± 5\.0 \|/, name);
    const rows = md.split("\n").filter((l) => l.startsWith("| epochs="));
    assert.deepEqual(rows, [
      "| epochs=10, lr=0.002 | 44.0 | 1: 44.0 |",
      "| epochs=4, lr=0.001 | 39.0 | 1: 40.0, 2: 38.0 |",
    ]);
  }
});
