import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./model/backend.ts";
import { namedConfig } from "./model/config.ts";
import { classifierLogits, crossEntropy, encode, initParams } from "./model/encoder.ts";
import { AdamW } from "./train/optimizer.ts";
import { trainStep } from "./train/step.ts";
const be = Deno.args[0] as "webgpu" | "wasm" | "cpu";
await initBackend(be);
const cfg = namedConfig(Deno.args[1] as "small", 8000);
const params = initParams(cfg, { mlm: false, numLabels: 6 }, 1);
const B = Number(Deno.args[2] ?? 32), T = 64;
const ids = new Int32Array(B * T).map((_, i) => 5 + (i * 7919) % 7000);
const labels = new Int32Array(B).map((_, i) => i % 6);
for (const fused of [true]) {
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused });
  const updates = new Map([...params.keys()].map((n) => [n, { mode: "none" as const }]));
  let t0 = 0;
  for (let s = 0; s < 6; s++) {
    if (s === 2) t0 = performance.now();
    const drop = { rate: 0.1, seed: s, counter: 0 };
    await trainStep(
      params,
      () => crossEntropy(classifierLogits(params, encode(params, cfg, { ids, B, T }, drop), drop), labels),
      opt,
      updates,
      1e-4,
      1,
    );
  }
  console.log(be, Deno.args[1], B, "ms/step", ((performance.now() - t0) / 4).toFixed(0));
}
