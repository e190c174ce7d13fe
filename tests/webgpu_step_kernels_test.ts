import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { dropoutGpu, referenceDropout } from "../kernels/dropout.ts";
import { layerNormGpu, rowWorkgroup, useSoftwareRowWorkgroups } from "../kernels/layer_norm.ts";
import { classifierLogits, crossEntropy, encode, gelu, initParams, layerNormOps } from "../model/encoder.ts";
import { namedConfig } from "../model/config.ts";
import { geluGpu } from "../kernels/gelu.ts";
import { lookupRows } from "../kernels/embedding_grad.ts";
import { attentionSoftmax } from "../kernels/attention_softmax.ts";
import { fusedAttention } from "../kernels/fused_attention.ts";
import { crossEntropyWithGrad, tanhWithGrad } from "../kernels/head_grads.ts";
import { clipStatsGpu } from "../kernels/global_norm.ts";
import { clipScale } from "../train/optimizer.ts";
import { fusedAdamWMany, referenceAdamW, tensorsPerDispatch } from "../kernels/fused_adamw.ts";
import { maskSpec } from "../kernels/mask_spec.ts";
import { ownedVariable } from "../model/encoder.ts";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { useBackend } from "./gpu.ts";
import { probeAdapter } from "../platform/adapter.ts";
import { cpuAdapterKernelsEnabled, useCpuAdapterKernels } from "../kernels/cpu_adapter.ts";

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

Deno.test("dropout kernel (webgpu): forward and gradient are the TypeScript twin's mask, bit for bit", async () => {
  await useBackend("webgpu");
  const seed = 424242;
  // 10,500 elements run four a thread; 105 one a thread.
  for (const shape of [[3, 50, 70], [3, 5, 7]]) {
    const x = tf.randomNormal(shape, 0, 1, "float32", 1);
    const [y, dx] = tf.tidy(() => {
      const y = dropoutGpu(x, 0.1, seed);
      const dx = tf.grad((t: tf.Tensor) => dropoutGpu(t, 0.1, seed).mul(tf.onesLike(t).mul(2)).sum())(x);
      return [y, dx];
    });
    const xs = (await x.data()) as Float32Array;
    assert.deepEqual(await y.data(), referenceDropout(xs, 0.1, seed));
    assert.deepEqual(await dx.data(), referenceDropout(new Float32Array(xs.length).fill(2), 0.1, seed));
    tf.dispose([x, y, dx]);
  }
  const kept = referenceDropout(new Float32Array(100_000).fill(1), 0.1, seed).filter((v) => v !== 0).length;
  assert.ok(Math.abs(kept / 100_000 - 0.9) < 0.005, `keep rate ${kept / 100_000}`);
});

Deno.test("LayerNorm kernel (webgpu): output and gradients match the tfjs-ops twin", async () => {
  await useBackend("webgpu");
  // 300 columns: more than one per thread; 130 rows: three chunks of the parameter gradients;
  // 30 columns: one float a load instead of a vec4;
  // each with the workgroups of a GPU and of a software adapter.
  for (
    const [shape, software] of [[2, 65, 300], [3, 5, 32], [2, 7, 30]].flatMap((s) =>
      [[s, false], [s, true]] as const
    )
  ) {
    useSoftwareRowWorkgroups(software);
    const D = shape[2];
    const x = tf.randomNormal(shape, 0.3, 2, "float32", 2);
    const g = tf.randomNormal([D], 1, 0.2, "float32", 3);
    const b = tf.randomNormal([D], 0, 0.2, "float32", 4);
    const w = tf.randomNormal(shape, 0, 1, "float32", 5);
    const loss = (ln: typeof layerNormOps) => (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
      ln(xi, gi, bi, 1e-5).mul(w).sum();
    for (
      const [i, [got, want]] of [
        [layerNormGpu(x, g, b, 1e-5), layerNormOps(x, g, b, 1e-5)],
        ...(() => {
          const a = tf.grads(loss(layerNormGpu))([x, g, b]);
          const o = tf.grads(loss(layerNormOps))([x, g, b]);
          return a.map((t, k) => [t, o[k]]);
        })(),
      ].entries()
    ) {
      const d = maxAbsDiff(await got.data(), await want.data());
      assert.ok(
        d < 2e-4,
        `${["y", "dx", "dgamma", "dbeta"][i]} at ${shape}, software ${software}: max |diff| ${d}`,
      );
    }
  }
  useSoftwareRowWorkgroups((await probeAdapter())?.software ?? false);
});

Deno.test("clip statistics kernel (webgpu): norm, scale and loss match the tfjs-ops twin", async () => {
  await useBackend("webgpu");
  // Nine tensors (two groups of up to seven), sizes below, at and above a chunk, up to two levels.
  const sizes = [5000, 300_000, 3, 768, 70_000, 1, 4096, 9, 40_000];
  const grads = sizes.map((n, i) => tf.randomNormal([n], 0, 0.01 * (i + 1), "float32", 10 + i));
  const loss = tf.scalar(2.5);
  for (const maxNorm of [1, 0, 1e6]) {
    const stats = clipStatsGpu(grads, maxNorm, loss);
    const [scale, norm, l] = await stats.data();
    const twin = clipScale(grads, maxNorm);
    const [wantScale, wantNorm] = [(await twin.scale.data())[0], (await twin.norm.data())[0]];
    assert.ok(Math.abs(norm - wantNorm) / wantNorm < 1e-5, `norm ${norm} vs ${wantNorm}`);
    assert.ok(
      Math.abs(scale - wantScale) / wantScale < 1e-5,
      `scale ${scale} vs ${wantScale} (max ${maxNorm})`,
    );
    assert.equal(l, 2.5);
    tf.dispose([stats, twin.scale, twin.norm]);
  }
  tf.dispose([...grads, loss]);
});

Deno.test("GELU kernel and the head's gradients (webgpu) match their tfjs-ops twins", async () => {
  await useBackend("webgpu");
  const x = tf.randomNormal([4, 33, 70], 0, 2, "float32", 7);
  const w = tf.randomNormal([4, 33, 70], 0, 1, "float32", 8);
  const check = async (name: string, got: tf.Tensor, want: tf.Tensor, tol: number) => {
    const d = maxAbsDiff(await got.data(), await want.data());
    assert.ok(d < tol, `${name}: max |diff| ${d}`);
  };
  // The twin composed of tfjs ops, run on WebGPU through tf.grad with the ops spelled out.
  const geluOps = (t: tf.Tensor) => t.mul(0.5).mul(tf.erf(t.mul(Math.SQRT1_2)).add(1));
  // 9,240 elements run four a thread; 105 one a thread.
  for (const t of [x, x.slice([0, 0, 0], [1, 3, 35])]) {
    const wt = w.slice([0, 0, 0], t.shape);
    await check(`gelu ${t.size}`, geluGpu(t), geluOps(t), 1e-5);
    await check(
      `gelu' ${t.size}`,
      tf.grad((u: tf.Tensor) => geluGpu(u).mul(wt).sum())(t),
      tf.grad((u: tf.Tensor) => geluOps(u).mul(wt).sum())(t),
      1e-4,
    );
  }
  await check("gelu (encoder)", gelu(x), geluOps(x), 1e-5);
  await check(
    "tanh'",
    tf.grad((t: tf.Tensor) => tanhWithGrad(t).mul(w).sum())(x),
    tf.grad((t: tf.Tensor) => tf.tanh(t).mul(w).sum())(x),
    1e-5,
  );
  const logits = tf.randomNormal([6, 7], 0, 3, "float32", 9) as tf.Tensor2D;
  const labels = Int32Array.of(0, 3, 6, 2, 2, 5);
  const ceOps = (l: tf.Tensor) =>
    tf.logSoftmax(l).mul(tf.oneHot(tf.tensor1d(labels, "int32"), 7)).sum().neg().div(6);
  await check("cross-entropy", crossEntropyWithGrad(logits, labels), ceOps(logits), 1e-5);
  await check("cross-entropy (encoder)", crossEntropy(logits, labels), ceOps(logits), 1e-5);
  await check(
    "cross-entropy'",
    tf.grad((l: tf.Tensor) => crossEntropyWithGrad(l as tf.Tensor2D, labels).mul(3))(logits),
    tf.grad((l: tf.Tensor) => ceOps(l).mul(3))(logits),
    1e-5,
  );
});

Deno.test("embedding lookup (webgpu): rows and the scatter-add gradient match tf.gather's", async () => {
  await useBackend("webgpu");
  const table = tf.randomNormal([50, 300], 0, 1, "float32", 11);
  // Repeats (id 7 six times), the first and last rows, and rows never read.
  const ids = Int32Array.from(
    { length: 24 },
    (_, i) => (i % 4 === 0 ? 7 : i === 5 ? 0 : i === 6 ? 49 : (i * 13) % 50),
  );
  const w = tf.randomNormal([4, 6, 300], 0, 1, "float32", 12);
  const y = lookupRows(table, ids, [4, 6]);
  const want = tf.gather(table, tf.tensor2d(ids, [4, 6], "int32"));
  assert.deepEqual(y.shape, [4, 6, 300]);
  assert.deepEqual(await y.data(), await want.data());
  const g = tf.grad((t: tf.Tensor) => lookupRows(t, ids, [4, 6]).mul(w).sum())(table);
  const gWant = tf.grad((t: tf.Tensor) => tf.gather(t, tf.tensor2d(ids, [4, 6], "int32")).mul(w).sum())(
    table,
  );
  const d = maxAbsDiff(await g.data(), await gWant.data());
  assert.ok(d < 1e-5, `gradient max |diff| ${d}`);
});

Deno.test("fused AdamW over several tensors per dispatch (webgpu) matches the reference tensor by tensor", async () => {
  await useBackend("webgpu");
  assert.equal(
    tensorsPerDispatch((tf.backend() as WebGPUBackend).device),
    7,
    "the training device binds 7 tensors",
  );
  // Nine tensors: one dispatch of seven and one of two; sizes off the workgroup size; all mask modes.
  const sizes = [1, 255, 256, 257, 70_001, 3, 768, 5000, 33];
  const modes = ["none", "gradient", "update"] as const;
  let seed = 20;
  const cases = sizes.map((n, k) => {
    const r = () => Float32Array.from(tf.randomUniform([n], -0.5, 0.5, "float32", seed++).dataSync());
    const w0 = r(), m0 = r().map((x) => x * 0.01), v0 = r().map((x) => x * x * 0.001), g0 = r();
    const mode = modes[k % 3];
    const s = {
      lr: 1e-3 * (k + 1),
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: k % 2 ? 0.01 : 0,
      bc1: 0.19,
      bc2: 0.002,
      mode,
      mask: maskSpec({ seed: 1, step: 3, stream: k, keep: 0.5, divisor: 1, rescale: mode === "gradient" }),
    };
    return { w0, m0, v0, g0, s, n };
  });
  const vars = cases.map((c) => ({
    w: ownedVariable(c.w0, [c.n], "w"),
    m: ownedVariable(c.m0, [c.n], "m"),
    v: ownedVariable(c.v0, [c.n], "v"),
    g: tf.tensor(c.g0),
  }));
  const clip = tf.tensor([0.8, 123, 4]);
  fusedAdamWMany(vars.map((t, k) => ({ ...t, s: cases[k].s })), clip);
  for (const [k, c] of cases.entries()) {
    const wr = c.w0.slice(), mr = c.m0.slice(), vr = c.v0.slice();
    referenceAdamW(wr, mr, vr, c.g0, 0.8, c.s);
    for (
      const [name, got, want, before] of [["w", vars[k].w, wr, c.w0], ["m", vars[k].m, mr, c.m0], [
        "v",
        vars[k].v,
        vr,
        c.v0,
      ]] as const
    ) {
      const d = await got.data();
      for (let i = 0; i < c.n; i++) {
        const bound = 1e-6 + 2 ** -19 * Math.abs(want[i] - before[i]);
        if (Math.abs(d[i] - want[i]) > bound) {
          assert.fail(`tensor ${k} (${c.s.mode}) ${name}[${i}]: ${d[i]} vs ${want[i]}`);
        }
      }
    }
  }
  tf.dispose([...vars.flatMap((t) => [t.w, t.m, t.v, t.g]), clip]);
});

Deno.test("attention softmax (webgpu): probabilities and gradient match the tfjs-ops twin", async () => {
  await useBackend("webgpu");
  // 300 keys: more than one per thread; padded keys at the end of row 1.
  const [B, H, T] = [2, 3, 300];
  const scores = tf.randomNormal([B, H, 5, T], 0, 4, "float32", 13) as tf.Tensor4D;
  const mask = tf.tensor(Float32Array.from({ length: B * T }, (_, i) => (i >= T + 250 ? -1e9 : 0)), [
    B,
    1,
    1,
    T,
  ]);
  const w = tf.randomNormal([B, H, 5, T], 0, 1, "float32", 14);
  const ops = (s: tf.Tensor) => tf.softmax(s.mul(0.125).add(mask), -1);
  for (const software of [false, true]) {
    useSoftwareRowWorkgroups(software);
    const got = attentionSoftmax(scores, 0.125, mask), want = ops(scores);
    assert.ok(maxAbsDiff(await got.data(), await want.data()) < 1e-6, `software ${software}`);
    const g = tf.grad((s: tf.Tensor) => attentionSoftmax(s as tf.Tensor4D, 0.125, mask).mul(w).sum())(scores);
    const gWant = tf.grad((s: tf.Tensor) => ops(s).mul(w).sum())(scores);
    const d = maxAbsDiff(await g.data(), await gWant.data());
    assert.ok(d < 1e-6, `gradient max |diff| ${d}, software ${software}`);
  }
  useSoftwareRowWorkgroups((await probeAdapter())?.software ?? false);
});

Deno.test("fused attention (webgpu): context and q, k, v gradients match the tfjs-ops twin, dropout mask included", async () => {
  await useBackend("webgpu");
  // 37 tokens: rows that do not fill a thread's 8 or a workgroup's 64, and 9 padded keys at the
  // end of sequence 1; 100 tokens: a second workgroup of rows and four dropout words a row.
  for (const [B, T, H, dh] of [[2, 37, 3, 8], [1, 100, 2, 4]]) {
    const D = H * dh;
    const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([B, T, D], 0, 1, "float32", s) as tf.Tensor3D);
    const mask = tf.tensor(
      Float32Array.from({ length: B * T }, (_, i) => (i >= B * T - 9 ? -1e9 : 0)),
      [B, 1, 1, T],
    );
    const w = tf.randomNormal([B, T, D], 0, 1, "float32", 4);
    const heads = (t: tf.Tensor) => t.reshape([B, T, H, dh]).transpose([0, 2, 1, 3]);
    for (const drop of [null, { rate: 0.25, seed: 99 }]) {
      const ops = (qt: tf.Tensor, kt: tf.Tensor, vt: tf.Tensor) => {
        const probs = tf.softmax(
          tf.matMul(heads(qt), heads(kt), false, true).mul(1 / Math.sqrt(dh)).add(mask),
          -1,
        );
        const kept = drop ? dropoutGpu(probs, drop.rate, drop.seed) : probs;
        return tf.matMul(kept, heads(vt)).transpose([0, 2, 1, 3]).reshape([B, T, D]);
      };
      const fused = (qt: tf.Tensor, kt: tf.Tensor, vt: tf.Tensor) =>
        fusedAttention(qt as tf.Tensor3D, kt as tf.Tensor3D, vt as tf.Tensor3D, H, mask, drop);
      const got = fused(q, k, v), want = ops(q, k, v);
      const err = maxAbsDiff(await got.data(), await want.data());
      assert.ok(err < 1e-5, `T ${T}, dropout ${!!drop}: context max |diff| ${err}`);
      const grads = (f: typeof ops) => tf.grads((a, b, c) => f(a, b, c).mul(w).sum())([q, k, v]);
      const [gGot, gWant] = [grads(fused), grads(ops)];
      for (const [i, name] of ["q", "k", "v"].entries()) {
        const d = maxAbsDiff(await gGot[i].data(), await gWant[i].data());
        assert.ok(d < 1e-5, `T ${T}, dropout ${!!drop}: d${name} max |diff| ${d}`);
      }
      tf.dispose([got, want, ...gGot, ...gWant]);
    }
    tf.dispose([q, k, v, mask, w]);
  }
  assert.throws(
    () =>
      fusedAttention(
        tf.zeros([1, 2, 6]),
        tf.zeros([1, 2, 6]),
        tf.zeros([1, 2, 6]),
        2,
        tf.zeros([1, 1, 1, 2]),
        null,
      ),
    /head size 3/,
  );
});

Deno.test("encoder on webgpu: the software-adapter path (fused attention) gives tfjs ops' loss and gradients, dropout on", async () => {
  await useBackend("webgpu");
  const before = cpuAdapterKernelsEnabled();
  const cfg = namedConfig("tiny", 40);
  const params = initParams(cfg, { mlm: false, numLabels: 3 }, 5);
  const [B, T] = [4, 12];
  const ids = Int32Array.from(
    { length: B * T },
    (_, i) => (i % T === 0 ? 0 : i >= 3 * T + 8 ? cfg.pad_token_id : 4 + (i * 7) % 30),
  );
  const labels = Int32Array.from({ length: B }, (_, i) => i % 3);
  const lossAndGrads = (software: boolean) => {
    useCpuAdapterKernels(software);
    const drop = { rate: 0.1, seed: 17, counter: 0 };
    return tf.variableGrads(() =>
      crossEntropy(classifierLogits(params, encode(params, cfg, { ids, B, T }, drop), drop), labels)
    );
  };
  try {
    const ops = lossAndGrads(false);
    let fused: ReturnType<typeof lossAndGrads> | undefined;
    const timed = await (tf.backend() as WebGPUBackend).time(() => fused = lossAndGrads(true));
    const ran = (timed as unknown as { getExtraProfileInfo(): string }).getExtraProfileInfo();
    assert.match(ran, /FusedAttentionProgram/);
    assert.doesNotMatch(ran, /AttentionSoftmaxProgram/);
    if (!fused) throw new Error("no fused run");
    assert.ok(Math.abs((await fused.value.data())[0] - (await ops.value.data())[0]) < 1e-5);
    for (const [name, g] of Object.entries(ops.grads)) {
      const d = maxAbsDiff(await fused.grads[name].data(), await g.data());
      assert.ok(d < 1e-4, `${name}: max |diff| ${d}`);
    }
    tf.dispose([ops.value, fused.value, ...Object.values(ops.grads), ...Object.values(fused.grads)]);
  } finally {
    useCpuAdapterKernels(before);
    tf.dispose([...params.values()]);
  }
});

Deno.test("llvmpipe matmul (webgpu): every transpose, block size, batch broadcast and bias match tfjs's matmul", async () => {
  await useBackend("webgpu");
  const before = cpuAdapterKernelsEnabled();
  const backend = tf.backend() as WebGPUBackend;
  // [a shape, b shape, transposeA, transposeB, bias]: blocks 32x16, 16x8, 8x8, 8x4 and 4x4, and
  // a 7x5 call that goes to tfjs's own kernel.
  const cases: [number[], number[], boolean, boolean, boolean][] = [
    [[64, 12], [32, 12], false, true, true],
    [[12, 64], [12, 32], true, false, false],
    [[32, 12], [16, 12], false, true, true],
    [[12, 32], [12, 16], true, false, false],
    [[12, 24], [8, 12], true, true, true],
    [[2, 3, 8, 20], [2, 3, 20, 4], false, false, false],
    [[5, 12, 8], [8, 4], false, false, true],
    [[1, 4, 8], [3, 8, 16], false, false, false],
    [[7, 5], [5, 3], false, false, false],
  ];
  try {
    for (const [sa, sb, ta, tb, withBias] of cases) {
      const a = tf.randomNormal(sa, 0, 1, "float32", 1), b = tf.randomNormal(sb, 0, 1, "float32", 2);
      const bias = tf.randomNormal([tb ? sb.at(-2)! : sb.at(-1)!], 0, 1, "float32", 3);
      const f = () =>
        withBias ? tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias }) : tf.matMul(a, b, ta, tb);
      useCpuAdapterKernels(false);
      const want = f();
      useCpuAdapterKernels(true);
      let got: tf.Tensor | undefined;
      const timed = await backend.time(() => got = f());
      const ran = (timed as unknown as { getExtraProfileInfo(): string }).getExtraProfileInfo();
      const ours = sa[0] !== 7;
      assert.equal(ran.includes("CpuAdapterMatMulProgram"), ours, `${JSON.stringify(sa)}: ${ran}`);
      assert.deepEqual(got!.shape, want.shape);
      const err = maxAbsDiff(await got!.data(), await want.data());
      assert.ok(err < 1e-5, `${JSON.stringify([sa, sb, ta, tb])}: max |diff| ${err}`);
      tf.dispose([a, b, bias, want, got!]);
    }
  } finally {
    useCpuAdapterKernels(before);
  }
});

Deno.test("llvmpipe column sum and transpose (webgpu) match tfjs's and really run", async () => {
  await useBackend("webgpu");
  const before = cpuAdapterKernelsEnabled();
  const backend = tf.backend() as WebGPUBackend;
  const x = tf.randomNormal([3, 10, 8], 0, 1, "float32", 21);
  // [op, the program expected to run, or null where tfjs's own takes the call]
  const cases: [(t: tf.Tensor) => tf.Tensor, string | null][] = [
    [(t) => t.sum([0, 1]), "ColumnSumProgram"],
    [(t) => t.reshape([30, 8]).sum(0, true), "ColumnSumProgram"],
    [(t) => t.sum(2), null],
    [(t) => t.transpose([1, 0, 2]), "LastAxisTransposeProgram"],
    [(t) => t.reshape([3, 5, 2, 8]).transpose([0, 2, 1, 3]), "LastAxisTransposeProgram"],
    [(t) => t.transpose([0, 2, 1]), null],
  ];
  try {
    for (const [i, [op, program]] of cases.entries()) {
      useCpuAdapterKernels(false);
      const want = op(x);
      useCpuAdapterKernels(true);
      let got: tf.Tensor | undefined;
      const timed = await backend.time(() => got = op(x));
      const ran = (timed as unknown as { getExtraProfileInfo(): string }).getExtraProfileInfo();
      if (program) assert.ok(ran.includes(program), `case ${i}: ${ran}`);
      else assert.doesNotMatch(ran, /ColumnSumProgram|LastAxisTransposeProgram/, `case ${i}`);
      assert.deepEqual(got!.shape, want.shape);
      const err = maxAbsDiff(await got!.data(), await want.data());
      assert.ok(err < 1e-5, `case ${i}: max |diff| ${err}`);
      tf.dispose([want, got!]);
    }
  } finally {
    useCpuAdapterKernels(before);
    x.dispose();
  }
});

Deno.test("software-adapter switch: row workgroups and tfjs's submit batch follow it", async () => {
  await useBackend("webgpu");
  const before = cpuAdapterKernelsEnabled();
  try {
    useCpuAdapterKernels(true);
    assert.deepEqual([rowWorkgroup(768), tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE")], [8, 100]);
    useCpuAdapterKernels(false);
    assert.deepEqual([rowWorkgroup(768), tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE")], [256, 15]);
  } finally {
    useCpuAdapterKernels(before);
  }
});
