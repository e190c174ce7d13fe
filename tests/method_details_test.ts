import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { fateOf, type Method, type MethodConfig, resolveGradDrop, type StepCtx } from "../train/methods.ts";
import { AdamW } from "../train/optimizer.ts";
import { maskSpec } from "../kernels/mask_spec.ts";
import { kept } from "../kernels/rng.ts";
import { ownedVariable } from "../model/encoder.ts";
import { loadConfig } from "../pipeline/config.ts";
import { makePlan } from "../pipeline/plan.ts";
import { builtinStageTypes } from "../stages/registry.ts";
import { ROOT } from "./helpers.ts";
import { useBackend } from "./gpu.ts";

const L = 4;
const cfgOf = (method: Method, graddrop = {}): MethodConfig => ({
  method,
  graddrop: resolveGradDrop(method, graddrop),
  unfreeze_every: 2,
  childtuning_pf: 0.3,
  childtuning_pd: 0.3,
  childtuning_mask_head: true,
  lr_match_rate: 0.5,
});
const at: StepCtx = { step: 3, epoch: 0, totalSteps: 20, epochs: 4, stepsPerEpoch: 5, seed: 1 };
const W = "roberta.encoder.layer.1.output.dense.weight", HEAD = "classifier.out_proj.weight";

Deno.test("sweep: graddrop.rate for graddrop-layer (whose depth profile ignores it) is refused at plan time, naming both", async () => {
  assert.throws(
    () => resolveGradDrop("graddrop-layer", { rate: 0.3 }),
    /graddrop\.rate is ignored by graddrop-layer/,
  );
  assert.throws(
    () => resolveGradDrop("graddrop", { rate_top: 0.3 }),
    /graddrop\.rate_top is ignored by graddrop/,
  );
  assert.equal(resolveGradDrop("graddrop-layer", { rate: 0.3, depth_profile: "uniform" }).rate, 0.3);
  const file = `${ROOT}/pipelines.yaml`;
  const plan = await makePlan(await loadConfig(file, "sweep"), "sweep", builtinStageTypes);
  const layer = plan.instances.filter((i) => i.matrix.method === "graddrop-layer");
  assert.equal(new Set(layer.map((i) => i.matrix["graddrop.rate"])).size, 5, "five rates that the runs read");
  const restored = await loadConfig(file, "sweep", [
    "stages.finetune.matrix.method=[graddrop, graddrop-layer]",
  ]);
  await assert.rejects(
    () => makePlan(restored, "sweep", builtinStageTypes),
    /graddrop\.rate is ignored by graddrop-layer: its linear depth profile reads graddrop\.rate_bottom and graddrop\.rate_top/,
  );
});

Deno.test("lr_compensation: 1/(1-p) when masking the update, 1/sqrt(1-p) when masking the gradient", () => {
  const update = cfgOf("graddrop", { rate: 0.75, mask_target: "update", lr_compensation: true });
  assert.ok(Math.abs(fateOf(update, W, 1, L, [32, 64], 7, at)!.lrScale - 4) < 1e-12, "1/(1 - 0.75)");
  const gradient = cfgOf("graddrop", { rate: 0.75, lr_compensation: true });
  assert.ok(Math.abs(fateOf(gradient, W, 1, L, [32, 64], 7, at)!.lrScale - 2) < 1e-12, "1/sqrt(1 - 0.75)");
  // graddrop-layer masks updates: layer 1 of 4 drops at 0.8 + (0.2 - 0.8) * 2/4 = 0.5.
  const layer = fateOf(cfgOf("graddrop-layer", { lr_compensation: true }), W, 1, L, [32, 64], 7, at)!;
  assert.ok(
    Math.abs(layer.lrScale - 1 / (1 - layer.rate)) < 1e-12,
    `rate ${layer.rate}, scale ${layer.lrScale}`,
  );
});

Deno.test("full-lr-matched slows the encoder, not the head (which GradDrop never masks)", () => {
  const c = cfgOf("full-lr-matched");
  assert.ok(Math.abs(fateOf(c, W, 1, L, [32, 64], 7, at)!.lrScale - Math.sqrt(0.5)) < 1e-12);
  assert.equal(fateOf(c, HEAD, L, L, [3, 32], 9, at)!.lrScale, 1);
  assert.equal(
    fateOf(cfgOf("graddrop"), HEAD, L, L, [3, 32], 9, at)!.mode,
    "none",
    "GradDrop leaves the head",
  );
});

Deno.test("AdamW bias correction counts a tensor's own updates: a step skipped whole does not shrink the next", async () => {
  await useBackend("cpu");
  // A layer-wide update mask (divisor = size) that drops at step 0 and keeps at step 1.
  const spec = (step: number) =>
    maskSpec({ seed: 11, step, stream: 5, keep: 0.5, divisor: 8, rescale: false });
  let s0 = 0;
  while (kept(spec(s0).key, 0, spec(s0).threshold) || !kept(spec(s0 + 1).key, 0, spec(s0 + 1).threshold)) {
    s0++;
  }
  const w = ownedVariable(new Float32Array(8).fill(1), [8], "w", true);
  const opt = new AdamW(new Map([["w", w]]), {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-12,
    weightDecay: 0,
    fused: false,
  });
  const grads = new Map([["w", tf.fill([8], 0.5)]]);
  const lr = 0.01;
  for (const step of [s0, s0 + 1]) {
    await opt.step(grads, 0, lr, new Map([["w", { mode: "update" as const, mask: spec(step) }]]));
  }
  const moved = 1 - (await w.data())[0];
  assert.equal(opt.steps.get("w"), 1, "the skipped step is not counted");
  // Adam's first step moves by lr exactly (m̂/sqrt(v̂) = 1); counting the skip made it 0.74 lr.
  assert.ok(Math.abs(moved - lr) < 1e-6, `moved ${moved}, want ${lr}`);
  opt.dispose();
  w.dispose();
  grads.get("w")!.dispose();
});
