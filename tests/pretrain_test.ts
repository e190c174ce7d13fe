import assert from "node:assert/strict";
import { pretrain, type PretrainOptions, tokensSeen } from "../train/pretrain.ts";
import { namedConfig } from "../model/config.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { packDocument, packPairs } from "../data/packing.ts";
import { mulberry32 } from "../kernels/random.ts";
import { tempDir } from "./helpers.ts";

const V = 64;
const vocab = { vocabSize: V, mask: V - 1, pad: 1, special: new Set([0, 1, 2]) };

function data() {
  const rand = mulberry32(5);
  const sent = () =>
    Array.from({ length: 4 + Math.floor(rand() * 12) }, () => 5 + Math.floor(rand() * (V - 7)));
  const docs = [0, 1].flatMap((l) =>
    packDocument(Array.from({ length: 20 }, sent), l, { bos: 0, eos: 2 }, 32)
  );
  const pairs = Array.from(
    { length: 16 },
    () => ({ a: Int32Array.from([0, ...sent(), 2]), b: Int32Array.from([0, ...sent(), 2]) }),
  );
  return { seqs: docs.map((d) => d.ids), langs: docs.map((d) => d.langs), pairs };
}

function options(workers: number): PretrainOptions {
  return {
    steps: 3,
    batchSize: 8,
    lr: 1e-2,
    warmup: 1,
    weightDecay: 0.01,
    clipNorm: 1,
    maskProb: 0.15,
    seed: 3,
    dropout: 0,
    checkpointEvery: 100,
    fused: false,
    workers,
    backend: "wasm",
    xlcoWeight: 0.5,
    xlcoBatch: 8,
    xlcoGroup: 4,
    xlcoTemperature: 0.1,
  };
}

Deno.test("pretraining: two data-parallel workers give the weights of one, within float tolerance", async () => {
  const { seqs, pairs } = data();
  const cfg = namedConfig("tiny", V);
  const weights = [];
  for (const workers of [1, 2]) {
    const dir = tempDir();
    const r = await pretrain(
      cfg,
      seqs,
      pairs,
      vocab,
      options(workers),
      { work: `${dir}/work`, out: dir },
      { settings: "s" },
      () => {},
    );
    assert.equal(r.curve.length, 3);
    weights.push({ curve: r.curve, w: await readSafetensors(`${dir}/checkpoint/model.safetensors`) });
    Deno.removeSync(dir, { recursive: true });
  }
  const [one, two] = weights;
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(one.curve[i].mlm - two.curve[i].mlm) < 1e-4, `mlm loss at step ${i + 1}`);
    assert.ok(Math.abs(one.curve[i].xlco! - two.curve[i].xlco!) < 1e-4, `contrastive loss at step ${i + 1}`);
    assert.equal(one.curve[i].predicted, two.curve[i].predicted);
  }
  let worst = 0;
  for (const [name, t] of one.w) {
    const u = two.w.get(name)!;
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u.data[i]));
  }
  assert.ok(worst < 1e-4, `largest weight difference ${worst}`);
});

Deno.test("pretraining continues bit-identically from committed state of the same run, and refuses another run's", async () => {
  const { seqs, pairs } = data();
  const cfg = namedConfig("tiny", V);
  const o = { ...options(1), steps: 4, checkpointEvery: 2 };
  const dir = tempDir();
  const whole = await pretrain(cfg, seqs, pairs, vocab, o, { work: `${dir}/a/work`, out: `${dir}/a` }, {
    settings: "s",
  }, () => {});
  // What a session leaves behind: the state saved at step 2, committed, and a cache that is gone.
  await Deno.rename(`${dir}/a/work/checkpoint`, `${dir}/committed`);
  await assert.rejects(
    pretrain(cfg, seqs, pairs, vocab, o, { work: `${dir}/c/work`, out: `${dir}/c` }, {
      settings: "other",
      from: `${dir}/committed`,
    }, () => {}),
    /committed\/state\.json: field 'settings' is s, but this run's settings fingerprint is other/,
  );
  const later = await pretrain(cfg, seqs, pairs, vocab, o, { work: `${dir}/b/work`, out: `${dir}/b` }, {
    settings: "s",
    from: `${dir}/committed`,
  }, () => {});
  assert.equal(later.resumedFrom, 2);
  assert.deepEqual(later.resumes, [{ step: 2, from: `${dir}/committed` }]);
  assert.deepEqual(later.curve, whole.curve);
  const [w1, w2] = await Promise.all(
    ["a", "b"].map((run) => readSafetensors(`${dir}/${run}/checkpoint/model.safetensors`)),
  );
  assert.deepEqual(w1, w2);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("packing: sentences of one language fill sequences; pairs keep both languages' counts", () => {
  const seqs = packDocument(
    [[5, 6, 7], [8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18]],
    4,
    { bos: 0, eos: 2 },
    8,
  );
  assert.deepEqual(seqs.map((s) => [...s.ids]), [[0, 5, 6, 7, 2, 8, 9, 2], [0, 10, 11, 12, 13, 14, 15, 2], [
    0,
    16,
    17,
    18,
    2,
  ]]);
  assert.deepEqual(seqs.map((s) => s.langs.get(4)), [5, 6, 3]);
  const pairs = packPairs([{ a: [5, 6, 7, 8, 9, 10], la: 0, b: [11, 12], lb: 1 }], { bos: 0, eos: 2 }, 10);
  assert.deepEqual([...pairs[0].ids], [0, 5, 6, 7, 8, 2, 2, 11, 12, 2]);
  assert.deepEqual(Object.fromEntries(pairs[0].langs), { 0: 4, 1: 2 });
});

Deno.test("pretraining: tokens seen per language follow the batches actually run", () => {
  const { langs } = data();
  const perEpoch = new Map<number, number>();
  for (const m of langs) for (const [l, n] of m) perEpoch.set(l, (perEpoch.get(l) ?? 0) + n);
  // A batch of every sequence: each step is one epoch.
  const seen = tokensSeen(langs, 3, langs.length, 3);
  for (const [l, n] of perEpoch) assert.equal(seen.get(l), 3 * n);
  // Half-epoch batches: two steps make one epoch, one step half of the sequences.
  const half = Math.floor(langs.length / 2);
  const twoSteps = tokensSeen(langs.slice(0, 2 * half), 2, half, 3);
  const firstHalves = [...perEpoch.keys()].reduce((a, l) => a + (twoSteps.get(l) ?? 0), 0);
  const all = langs.slice(0, 2 * half).reduce((a, m) => a + [...m.values()].reduce((x, y) => x + y, 0), 0);
  assert.equal(firstHalves, all);
});
