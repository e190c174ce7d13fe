/**
 * Times process start to the end of the first `small` training step on WebGPU; run twice by
 * the bench with one MESA_SHADER_CACHE_DIR to compare a cold and a warm shader cache.
 * Prints one JSON line.
 * @module
 */
import { initBackend } from "../model/backend.ts";
import { namedConfig } from "../model/config.ts";
import { classifierLogits, crossEntropy, encode, initParams } from "../model/encoder.ts";
import { AdamW } from "../train/optimizer.ts";
import { trainStep } from "../train/step.ts";

const t0 = performance.now();
await initBackend("webgpu");
const cfg = namedConfig("small", 8000);
const params = initParams(cfg, { mlm: false, numLabels: 6 }, 1);
const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: true });
const B = 32, T = 64;
const ids = Int32Array.from({ length: B * T }, (_, i) => 5 + ((i * 7919) % 7000));
const labels = Int32Array.from({ length: B }, (_, i) => i % 6);
const updates = new Map([...params.keys()].map((n) => [n, { mode: "none" as const }]));
await trainStep(
  params,
  () => crossEntropy(classifierLogits(params, encode(params, cfg, { ids, B, T }, null), null), labels),
  opt,
  updates,
  1e-4,
  1,
);
console.log(JSON.stringify({ first_step_s: (performance.now() - t0) / 1000 }));
