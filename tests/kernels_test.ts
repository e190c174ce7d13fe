import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { keepThreshold, kept, pcg, streamKey } from "../kernels/rng.ts";
import { type MaskSpec, maskSpec, referenceMask } from "../kernels/mask_spec.ts";
import { applyMask, maskTensor } from "../kernels/graddrop_mask.ts";
import { type AdamWStep, fusedAdamW, type MaskMode, referenceAdamW } from "../kernels/fused_adamw.ts";
import { wasmAdamW, wasmSumOfSquares } from "../kernels/wasm_adamw.ts";
import { ownedVariable } from "../model/encoder.ts";
import { useBackend } from "./gpu.ts";
import { mulberry32 } from "../kernels/random.ts";

Deno.test("rng: pcg is a fixed u32 function (pinned values)", () => {
  assert.equal(pcg(0), 129708002);
  assert.equal(pcg(1), 2831084092);
  assert.equal(pcg(0xffffffff), pcg(-1));
  assert.equal(keepThreshold(0.5), 8388608);
  assert.equal(keepThreshold(1), 16777216);
  assert.ok([...Array(1000).keys()].every((c) => kept(streamKey(1, 2, 3), c, keepThreshold(1))));
  assert.ok([...Array(1000).keys()].every((c) => !kept(streamKey(1, 2, 3), c, keepThreshold(0))));
});

Deno.test("reference mask: keep rate matches 1-p; row and layer granularity share draws", () => {
  for (const keep of [0.1, 0.5, 0.9]) {
    const m = referenceMask(
      maskSpec({ seed: 3, step: 1, stream: 2, keep, divisor: 1, rescale: false }),
      200_000,
    );
    const rate = m.reduce((a, b) => a + b, 0) / m.length;
    assert.ok(Math.abs(rate - keep) < 0.005, `keep ${keep}: got ${rate}`);
  }
  const row = referenceMask(
    maskSpec({ seed: 3, step: 1, stream: 2, keep: 0.5, divisor: 64, rescale: false }),
    64 * 200,
  );
  for (let r = 0; r < 200; r++) assert.equal(new Set(row.subarray(r * 64, (r + 1) * 64)).size, 1);
  const rows = Array.from({ length: 200 }, (_, r) => row[r * 64]);
  assert.ok(rows.includes(0) && rows.includes(1));
  const a = referenceMask(
    maskSpec({ seed: 3, step: 1, stream: 2, keep: 0.5, divisor: 1, rescale: false }),
    1000,
  );
  const b = referenceMask(
    maskSpec({ seed: 3, step: 2, stream: 2, keep: 0.5, divisor: 1, rescale: false }),
    1000,
  );
  assert.notDeepEqual(a, b, "a new step draws a new mask");
});

// On cpu `maskTensor` is the reference itself, so only WebGPU's mask is compared with it; both
// backends' `applyMask` must zero what the reference drops and scale what it keeps.
for (const backend of ["webgpu", "cpu"] as const) {
  const what = backend === "webgpu" ? "mask kernel and applyMask" : "applyMask";
  Deno.test(`${what} on ${backend}: bit-identical to the reference mask (element and row)`, async () => {
    await useBackend(backend);
    const n = backend === "webgpu" ? 1 << 20 : 1 << 14;
    for (const divisor of [1, 96]) {
      const spec = maskSpec({ seed: 99, step: 17, stream: 4, keep: 0.3, divisor, rescale: true });
      const ref = referenceMask(spec, n);
      if (backend === "webgpu") {
        const got = await maskTensor([n], spec).data();
        let diff = 0;
        for (let i = 0; i < n; i++) if (got[i] !== ref[i]) diff++;
        assert.equal(diff, 0, `${diff} mismatches (divisor ${divisor})`);
      }
      const g = tf.randomNormal([n], 0, 1, "float32", 5);
      const masked = await applyMask(g, spec).data();
      const gd = await g.data();
      const scale = Math.fround(spec.scale);
      for (let i = 0; i < n; i += 997) assert.equal(masked[i] + 0, ref[i] ? Math.fround(gd[i] * scale) : 0);
    }
  });
}

/** One AdamW step with a GradDrop mask, as the AdamW parity tests use it (rescaled in gradient mode). */
function adamWStep(
  mode: MaskMode,
  m: { seed: number; step: number; stream: number; keep: number; divisor: number },
): AdamWStep & { mask: MaskSpec } {
  const mask = maskSpec({ ...m, rescale: mode === "gradient" });
  return {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.01,
    bc1: 0.19,
    bc2: 0.002,
    mode,
    mask,
  };
}

/**
 * Weights, moments and a gradient drawn from `rnd` (moments at realistic scales), with the
 * weights and moments also as variables the kernels may update in place.
 */
function adamWState(rnd: () => Float32Array) {
  const w0 = rnd(), m0 = rnd().map((x) => x * 0.01), v0 = rnd().map((x) => x * x * 0.001), g0 = rnd();
  const n = w0.length;
  const w = ownedVariable(w0, [n], "w"), m = ownedVariable(m0, [n], "m"), v = ownedVariable(v0, [n], "v");
  return { w0, m0, v0, g0, w, m, v };
}

/**
 * WGSL lets a GPU divide and take square roots to within 2.5 ULP (llvmpipe is exact, NVIDIA's
 * Vulkan driver is not: the H200 check saw 1.4e-6 on a weight), so a large AdamW update may
 * differ from the float64 reference by a few ULP of the update itself: the bound is 1e-6 plus
 * 16 ULP (2^-19, relative) of the change the reference made.
 */
function assertWithinWgslAccuracy(
  got: ArrayLike<number>,
  want: Float32Array,
  before: Float32Array,
  what: string,
) {
  let worst = 0, at = -1;
  for (let i = 0; i < got.length; i++) {
    const excess = Math.abs(got[i] - want[i]) / (1e-6 + 2 ** -19 * Math.abs(want[i] - before[i]));
    if (excess > worst) [worst, at] = [excess, i];
  }
  assert.ok(
    worst <= 1,
    `${what}[${at}]: ${got[at]} vs reference ${want[at]} (from ${before[at]}): ${
      worst.toFixed(2)
    }x the bound`,
  );
}

Deno.test("fused AdamW kernel matches the reference for every mask mode", async () => {
  await useBackend("webgpu");
  const n = 100_003;
  const rand = mulberry32(7);
  const rnd = () => Float32Array.from({ length: n }, () => rand() - 0.5);
  for (const mode of ["none", "gradient", "update"] as const) {
    const { w0, m0, v0, g0, w, m, v } = adamWState(rnd);
    const g = tf.tensor(g0);
    const step = adamWStep(mode, { seed: 1, step: 3, stream: 9, keep: 0.5, divisor: 1 });
    const mask = step.mask;
    const wr = w0.slice(), mr = m0.slice(), vr = v0.slice();
    for (let s = 0; s < 2; s++) {
      fusedAdamW(w, m, v, g, tf.tensor([0.8]), step);
      referenceAdamW(wr, mr, vr, g0, 0.8, step);
    }
    const [wd, md, vd] = await Promise.all([w.data(), m.data(), v.data()]);
    assertWithinWgslAccuracy(wd, wr, w0, `${mode}: w`);
    assertWithinWgslAccuracy(md, mr, m0, `${mode}: m`);
    assertWithinWgslAccuracy(vd, vr, v0, `${mode}: v`);
    if (mode === "update") {
      const ref = referenceMask(mask, n);
      for (let i = 0; i < n; i += 101) {
        if (!ref[i]) assert.equal(wd[i], w0[i], "masked elements keep their weight");
      }
    }
    tf.dispose([w, m, v, g]);
  }
});

Deno.test("AdamW composed from tfjs ops (cpu/wasm path) matches the reference for every mask mode", async () => {
  const { AdamW } = await import("../train/optimizer.ts");
  await useBackend("cpu");
  const n = 5003;
  const rand = mulberry32(11);
  for (const mode of ["none", "gradient", "update"] as const) {
    const w0 = Float32Array.from({ length: n }, () => rand() - 0.5),
      g0 = Float32Array.from({ length: n }, () => rand() - 0.5);
    const params = new Map([["enc.weight", ownedVariable(w0, [n], "w")]]);
    const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: false });
    const mask = maskSpec({
      seed: 2,
      step: 0,
      stream: 0,
      keep: 0.5,
      divisor: 1,
      rescale: mode === "gradient",
    });
    const wr = w0.slice(), mr = new Float32Array(n), vr = new Float32Array(n);
    for (let t = 1; t <= 2; t++) {
      opt.apply(
        new Map([["enc.weight", tf.tensor(g0)]]),
        tf.scalar(0.8),
        1e-3,
        new Map([["enc.weight", { mode, mask }]]),
      );
      referenceAdamW(wr, mr, vr, g0, 0.8, {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weightDecay: 0.01,
        bc1: 1 - 0.9 ** t,
        bc2: 1 - 0.999 ** t,
        mode,
        mask,
      });
    }
    const wd = await params.get("enc.weight")!.data();
    let maxDiff = 0;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(wd[i] - wr[i]));
    assert.ok(maxDiff < 1e-6, `${mode}: max |diff| ${maxDiff}`);
  }
});

Deno.test("fused AdamW wasm kernel matches the reference for every mask mode, with Child-Tuning-D's fixed mask", async () => {
  await useBackend("wasm");
  const n = 100_003;
  const rand = mulberry32(13);
  const rnd = () => Float32Array.from({ length: n }, () => rand() - 0.5);
  for (const mode of ["none", "gradient", "update"] as const) {
    for (const divisor of [1, 7]) {
      const { w0, m0, v0, g0, w, m, v } = adamWState(rnd);
      const fixed = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 1));
      const g = tf.tensor(g0), fm = tf.tensor(fixed);
      const step = adamWStep(mode, { seed: 2, step: 5, stream: 4, keep: 0.3, divisor });
      const wr = w0.slice(), mr = m0.slice(), vr = v0.slice();
      const gr = g0.map((x, i) => x * fixed[i]);
      for (let s = 0; s < 2; s++) {
        wasmAdamW(w, m, v, g, 0.8, step, fm);
        referenceAdamW(wr, mr, vr, gr, 0.8, step);
      }
      const [wd, md, vd] = await Promise.all([w.data(), m.data(), v.data()]);
      let maxDiff = 0;
      for (let i = 0; i < n; i++) {
        maxDiff = Math.max(
          maxDiff,
          Math.abs(wd[i] - wr[i]),
          Math.abs(md[i] - mr[i]),
          Math.abs(vd[i] - vr[i]),
        );
      }
      assert.ok(maxDiff < 1e-6, `${mode}, divisor ${divisor}: max |diff| ${maxDiff}`);
      if (mode === "update") {
        const ref = referenceMask(step.mask, n);
        for (let i = 0; i < n; i++) {
          if (!ref[i]) assert.equal(wd[i], w0[i], "a dropped element keeps its weight");
        }
      }
      assert.ok(Math.abs(wasmSumOfSquares([g]) - g0.reduce((a, x) => a + x * x, 0)) < 1e-6 * n);
      tf.dispose([w, m, v, g, fm]);
    }
  }
});
