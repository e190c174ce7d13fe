/**
 * The memory plan before a long run: XLM-R base and large at B32 x T128 against a hand count,
 * printed by `run --dry-run`; a run that cannot fit refused before it starts; the activation
 * count against what tfjs really keeps; and gradient accumulation equal to one big step.
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { namedConfig } from "../model/config.ts";
import { classifierLogits, crossEntropy, encode, initParams } from "../model/encoder.ts";
import { activationFloats, forwardFloats, memoryPlan } from "../train/memory_plan.ts";
import { finetune } from "../train/finetune.ts";
import type { Shard } from "../data/shards.ts";
import { toHfConfig } from "../model/config.ts";
import { cli, ROOT, tempDir } from "./helpers.ts";
import { useBackend } from "./gpu.ts";

/**
 * The hand count (README "Bringing your own XLM-R"), 7 labels, B = 32, T = 128, float32:
 * parameters = embeddings V*D + 514*D + D + 2D, plus L layers of 4(D^2 + D) + 2(DF) + F + D + 4D,
 * plus the classifier D^2 + D + 7D + 7; weights, gradients and two AdamW moments 16 bytes each;
 * activations 4 bytes x 2 (forward outputs and their gradients) x (13 BTD + L(37 BTD + 9 BHT^2 + 7 BTF)).
 * base (V 250002, D 768, F 3072, L 12, H 12):
 *   parameters 192,398,592 + 12 x 7,087,872 + 595,975 = 278,049,031 -> 4,448,784,496 bytes
 *   activations 8 x (40,894,464 + 12 x 261,095,424) = 25,391,516,416 bytes; total 29,840,300,912
 * large (V 250002, D 1024, F 4096, L 24, H 16):
 *   parameters 256,531,456 + 24 x 12,596,224 + 1,056,775 = 559,897,607 -> 8,958,361,712 bytes
 *   activations 8 x (54,525,952 + 24 x 348,127,232) = 67,276,636,160 bytes; total 76,234,997,872
 */
const HAND = {
  base: { parameters: 278_049_031, total: 29_840_300_912 },
  large: { parameters: 559_897_607, total: 76_234_997_872 },
};

Deno.test("run --dry-run states XLM-R base and large's memory at B32xT128 within 5% of the hand count; wasm refuses them", async () => {
  const home = tempDir();
  for (const size of ["base", "large"] as const) {
    Deno.mkdirSync(`${home}/${size}`);
    Deno.writeTextFileSync(
      `${home}/${size}/config.json`,
      JSON.stringify(toHfConfig(namedConfig(size, 250002))),
    );
  }
  const yaml = (backend: string) =>
    `pipelines:
  xlmr:
    stages:
      model: { uses: model/load, matrix: { path: [base, large] } }
      sib200:
        uses: data/sib200
        foreach: model
        with: { path: ${ROOT}/datasets/sib200, max_length: 128 }
      finetune:
        uses: train/finetune
        foreach: sib200
        needs: [model]
        with: { batch_size: 32, backend: ${backend} }
`;
  Deno.writeTextFileSync(`${home}/webgpu.yaml`, yaml("webgpu"));
  const r = await cli(["run", "--config", `${home}/webgpu.yaml`, "--dry-run", "--json"], home);
  assert.equal(r.code, 0, r.stderr);
  const stages = (r.json!.stages as unknown as {
    id: string;
    preflight?: { facts: { memory: ReturnType<typeof memoryPlan> } };
  }[])
    .filter((s) => s.preflight);
  assert.equal(stages.length, 2);
  for (const s of stages) {
    const size = s.id.includes("large") ? "large" : "base";
    const m = s.preflight!.facts.memory;
    assert.equal(m.batch, 32);
    assert.equal(m.length, 128);
    for (const k of ["parameters", "total"] as const) {
      const got = k === "parameters" ? m.parameters : m.bytes.total;
      assert.ok(
        Math.abs(got / HAND[size][k] - 1) < 0.05,
        `${size} ${k}: plan ${got}, hand count ${HAND[size][k]}`,
      );
    }
  }
  const text = await cli(["run", "--config", `${home}/webgpu.yaml`, "--dry-run"], home);
  assert.match(text.stdout, /memory {2}finetune\[path=.*base\]: 278\.0M parameters; .* total 29\.84 GB/);
  assert.match(text.stdout, /memory {2}finetune\[path=.*large\]: 559\.9M parameters; .* total 76\.23 GB/);

  Deno.writeTextFileSync(`${home}/wasm.yaml`, yaml("wasm"));
  const refused = await cli(["run", "--config", `${home}/wasm.yaml`], home);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(
    refused.stderr,
    /^error: refused before starting: finetune\[path=.*base\] cannot run here: needs 29\.84 GB .* but the tfjs-wasm heap \(4 GiB\) holds 4\.29 GB/,
  );
  assert.doesNotMatch(refused.stderr, /\n./, "one line");
  Deno.removeSync(home, { recursive: true });
});

Deno.test("the activation count matches what tfjs allocates: the forward per op, the peak with backward (cpu)", async () => {
  await useBackend("cpu");
  const cfg = { ...namedConfig("tiny", 60), hidden_size: 64, intermediate_size: 256, num_attention_heads: 4 };
  const params = initParams(cfg, { mlm: false, numLabels: 7 }, 1);
  const vars = [...params.values()];
  const B = 4, T = 32;
  const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + (i % 50));
  const drop = () => ({ rate: 0.1, seed: 1, counter: 0 });
  // A reshape shares its input's memory (tf.memory counts it anyway): left out. Dropout's
  // random tensor is made without a kernel: one per dropout site (1 + 3 per layer).
  const D = cfg.hidden_size, L = cfg.num_hidden_layers, H = cfg.num_attention_heads;
  const randoms = 4 * (B * T * D * (1 + 2 * L) + B * H * T * T * L);
  const fwd = await tf.profile(() => tf.tidy(() => encode(params, cfg, { ids, B, T }, drop())));
  const allocated = fwd.kernels.filter((k) => k.name !== "Reshape").reduce((a, k) => a + k.bytesAdded, 0) +
    randoms;
  const forward = 4 * forwardFloats(cfg, B, T);
  const step = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => {
      const d = drop();
      return crossEntropy(
        classifierLogits(params, encode(params, cfg, { ids, B, T }, d), d),
        new Int32Array(B),
      );
    }, vars);
    tf.dispose([value, ...Object.values(grads)]);
  });
  const reshapes = step.kernels.filter((k) => k.name === "Reshape").reduce((a, k) => a + k.bytesAdded, 0);
  const paramBytes = vars.reduce((a, v) => a + 4 * v.size, 0);
  const peak = step.peakBytes - paramBytes - reshapes;
  console.log(
    `forward: kernels allocate ${allocated} B, counted ${forward} (x${(allocated / forward).toFixed(3)}); ` +
      `step peak ${peak} B without reshapes (x${(peak / forward).toFixed(2)} the forward), ` +
      `${step.peakBytes - paramBytes} B as tf.memory counts (x${
        ((step.peakBytes - paramBytes) / forward).toFixed(2)
      })`,
  );
  assert.ok(Math.abs(allocated / forward - 1) < 0.05, `forward: allocated ${allocated}, counted ${forward}`);
  assert.ok(
    peak / forward > 1.6 && peak / forward < 2.2,
    `the plan's x2 for backward; measured x${peak / forward}`,
  );
  assert.equal(activationFloats(cfg, B, T), 2 * forwardFloats(cfg, B, T));
  for (const v of vars) v.dispose();
});

function shard(n: number, L: number): Shard {
  const ids = new Int32Array(n * L).fill(1);
  const lengths = new Uint16Array(n);
  for (let r = 0; r < n; r++) {
    lengths[r] = 6 + (r % 7);
    ids[r * L] = 0;
    for (let t = 1; t < lengths[r] - 1; t++) ids[r * L + t] = 4 + ((r * 13 + t * 7) % 50);
    ids[r * L + lengths[r] - 1] = 2;
  }
  return {
    index: { name: "train", n, max_length: L, pad_id: 1, languages: ["x"], labels: ["a", "b", "c"] },
    ids,
    lengths,
    labels: Int16Array.from({ length: n }, (_, r) => r % 3),
    langs: new Uint16Array(n),
    items: Int32Array.from({ length: n }, (_, r) => r),
  };
}

Deno.test("accumulate: 4 micro-batches of 2 rows update the weights as one step of 8 rows does", async () => {
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 60);
  const data = shard(8, 16);
  const after = async (accumulate: number) => {
    const params = initParams(cfg, { mlm: false, numLabels: 3 }, 5);
    const { log } = await finetune(
      params,
      cfg,
      {
        method: "full",
        graddrop: undefined as never,
        unfreeze_every: "auto",
        childtuning_pf: 0.3,
        childtuning_pd: 0.3,
        childtuning_mask_head: true,
        lr_match_rate: 0.5,
      },
      data,
      data,
      {
        lr: 1e-3,
        epochs: 1,
        batchSize: 8,
        warmup: 0,
        weightDecay: 0.01,
        clipNorm: 1,
        seed: 1,
        dropout: 0,
        select: "last",
        logKeptEvery: 0,
        fused: true,
        bucketByLength: false,
        accumulate,
      },
      () => {},
    );
    const out = new Map<string, Float32Array>();
    for (const [n, v] of params) out.set(n, (await v.data()) as Float32Array);
    for (const v of params.values()) v.dispose();
    return { out, loss: log[0].loss, norm: log[0].grad_norm };
  };
  const one = await after(1), four = await after(4);
  assert.ok(Math.abs(one.loss - four.loss) < 1e-5, `loss ${one.loss} vs ${four.loss}`);
  assert.ok(Math.abs(one.norm - four.norm) < 1e-3, `grad norm ${one.norm} vs ${four.norm}`);
  let worst = 0, moved = 0;
  const init = initParams(cfg, { mlm: false, numLabels: 3 }, 5);
  for (const [n, a] of one.out) {
    const b = four.out.get(n)!, i = (await init.get(n)!.data()) as Float32Array;
    for (let k = 0; k < a.length; k++) {
      worst = Math.max(worst, Math.abs(a[k] - b[k]));
      moved = Math.max(moved, Math.abs(a[k] - i[k]));
    }
  }
  for (const v of init.values()) v.dispose();
  assert.ok(moved > 5e-4, `the step moved the weights (${moved})`);
  assert.ok(worst < 1e-6, `largest difference ${worst}`);
});
