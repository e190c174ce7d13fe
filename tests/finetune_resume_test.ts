/**
 * A fine-tune killed part-way resumes from its checkpoint in the work directory and ends
 * with the same weights and log as a run that was never interrupted.
 */
import assert from "node:assert/strict";
import { namedConfig } from "../model/config.ts";
import { initParams, type Params } from "../model/encoder.ts";
import { buildShard } from "../data/shards.ts";
import { finetune, type FinetuneOptions, type LogRow } from "../train/finetune.ts";
import { type Method, resolveGradDrop } from "../train/methods.ts";
import { useBackend } from "./gpu.ts";
import { tempDir } from "./helpers.ts";

const cfg = namedConfig("tiny", 50);
const rows = Array.from({ length: 24 }, (_, i) => ({
  ids: [0, 5 + (i % 7), 6 + (i * 3) % 40, 7 + (i * 5) % 40, 2],
  label: i % 3,
  lang: 0,
}));
const shard = buildShard("train", rows, 8, 1, ["x"], ["a", "b", "c"]);
const opts: FinetuneOptions = {
  lr: 1e-3,
  epochs: 3,
  batchSize: 8,
  warmup: 1,
  weightDecay: 0.01,
  clipNorm: 1,
  seed: 3,
  dropout: 0.1,
  select: "best-dev",
  logKeptEvery: 1,
  fused: true,
  bucketByLength: false,
};

class Killed extends Error {}

/** Fine-tunes from the same initial weights; `killAt` throws from the report of that step. */
async function run(method: Method, dir: string, killAt?: number) {
  const params = initParams(cfg, { mlm: false, numLabels: 3 }, 1);
  const method_ = {
    method,
    graddrop: resolveGradDrop(method, {}),
    unfreeze_every: 2 as const,
    childtuning_pf: 0.3,
    childtuning_pd: 0.3,
    childtuning_mask_head: true,
    lr_match_rate: 0.5,
  };
  const out = await finetune(params, cfg, method_, shard, shard, opts, (row: LogRow) => {
    if (row.step === killAt) throw new Killed();
  }, { dir, everyMs: 0 });
  return { params: await weights(params), ...out };
}

async function weights(params: Params): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [n, v] of params) out[n] = [...((await v.data()) as Float32Array)];
  return out;
}

Deno.test("fine-tuning resumes bit-identically from a checkpoint mid-epoch and at an epoch's end", async () => {
  await useBackend("cpu");
  for (const method of ["graddrop", "childtuning-d"] as const) {
    const whole = await run(method, `${tempDir()}/ck`);
    assert.equal(whole.resumedAt, undefined);
    // 3 steps an epoch. Killed at step 3 (before epoch 0's dev pass): resumes mid-epoch from
    // step 2. Killed at step 4: resumes from the checkpoint at epoch 0's end. Child-Tuning-D
    // checks that its Fisher mask comes from the initial weights, not the resumed ones.
    for (const killAt of method === "graddrop" ? [3, 4] : [3]) {
      const dir = `${tempDir()}/ck`;
      await assert.rejects(run(method, dir, killAt), Killed);
      const resumed = await run(method, dir);
      assert.equal(resumed.resumedAt, killAt - 1, `${method}: resumed after the last finished step`);
      assert.deepEqual(resumed.log, whole.log, `${method} killed at ${killAt}: same log`);
      assert.deepEqual(resumed.dev, whole.dev);
      assert.equal(resumed.selected, whole.selected);
      assert.deepEqual(resumed.params, whole.params, `${method} killed at ${killAt}: same weights`);
    }
  }
});
