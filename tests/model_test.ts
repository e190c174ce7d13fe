import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type EncoderConfig, namedConfig } from "../model/config.ts";
import {
  classifierLogits,
  crossEntropy,
  encode,
  initParams,
  mlmLogits,
  ownedVariable,
  type Params,
  paramShapes,
  positionIds,
} from "../model/encoder.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { mulberry32 } from "../kernels/random.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import { AdamW } from "../train/optimizer.ts";
import { trainStep } from "../train/step.ts";
import { useBackend } from "./gpu.ts";
import { initBackend } from "../model/backend.ts";
import { tempDir } from "./helpers.ts";
import { rowBlocks, WORD_EMBEDDINGS, wordEmbeddingBlocks } from "../model/row_shards.ts";

const CFG: EncoderConfig = {
  ...namedConfig("tiny", 12),
  hidden_size: 4,
  num_attention_heads: 2,
  intermediate_size: 6,
  num_hidden_layers: 1,
  max_position_embeddings: 10,
};

/** Fixed, non-random weights: w[i] = sin(i * k + offset) * 0.5. */
function fixedParams(cfg: EncoderConfig, numLabels: number): Params {
  const p: Params = new Map();
  paramShapes(cfg, { mlm: false, numLabels }).forEach(([name, shape], k) => {
    const n = shape.reduce((a, b) => a * b, 1);
    p.set(
      name,
      ownedVariable(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * 0.5), shape, name),
    );
  });
  return p;
}

/** An independent forward pass with plain loops, written from the RoBERTa equations. */
async function loopForward(p: Params, cfg: EncoderConfig, ids: number[][]): Promise<number[][]> {
  const D = cfg.hidden_size, H = cfg.num_attention_heads, dh = D / H;
  const lin = (x: number[], w: number[], b: number[], out: number) =>
    Array.from({ length: out }, (_, o) => b[o] + x.reduce((a, xi, i) => a + xi * w[o * x.length + i], 0));
  const ln = (x: number[], g: number[], b: number[]) => {
    const m = x.reduce((a, v) => a + v, 0) / x.length;
    const v = x.reduce((a, xi) => a + (xi - m) ** 2, 0) / x.length;
    return x.map((xi, i) => ((xi - m) / Math.sqrt(v + cfg.layer_norm_eps)) * g[i] + b[i]);
  };
  const erf = (x: number) => {
    // Abramowitz-Stegun 7.1.26 is too coarse; integrate instead (Simpson, 2000 panels).
    const n = 2000, h = x / n;
    let s = 0;
    for (let i = 0; i <= n; i++) s += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
    return (2 / Math.sqrt(Math.PI)) * (h / 3) * s;
  };
  const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  for (const [n, v] of p) cache[n] = Array.from(await v.data());
  const we = cache["roberta.embeddings.word_embeddings.weight"];
  const pe = cache["roberta.embeddings.position_embeddings.weight"];
  const te = cache["roberta.embeddings.token_type_embeddings.weight"];
  const out: number[][] = [];
  for (const row of ids) {
    const pos = Array.from(positionIds({ ids: Int32Array.from(row), B: 1, T: row.length }, cfg.pad_token_id));
    let x = row.map((id, t) =>
      ln(
        Array.from({ length: D }, (_, d) => we[id * D + d] + pe[pos[t] * D + d] + te[d]),
        cache["roberta.embeddings.LayerNorm.weight"],
        cache["roberta.embeddings.LayerNorm.bias"],
      )
    );
    const l = "roberta.encoder.layer.0";
    const q = x.map((xt) =>
      lin(xt, cache[`${l}.attention.self.query.weight`], cache[`${l}.attention.self.query.bias`], D)
    );
    const k = x.map((xt) =>
      lin(xt, cache[`${l}.attention.self.key.weight`], cache[`${l}.attention.self.key.bias`], D)
    );
    const v = x.map((xt) =>
      lin(xt, cache[`${l}.attention.self.value.weight`], cache[`${l}.attention.self.value.bias`], D)
    );
    const ctx = x.map(() => new Array(D).fill(0));
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < row.length; t++) {
        const sc = row.map((id, s) => {
          if (id === cfg.pad_token_id) return -Infinity;
          let a = 0;
          for (let d = 0; d < dh; d++) a += q[t][h * dh + d] * k[s][h * dh + d];
          return a / Math.sqrt(dh);
        });
        const mx = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s < row.length; s++) {
          for (let d = 0; d < dh; d++) ctx[t][h * dh + d] += (e[s] / z) * v[s][h * dh + d];
        }
      }
    }
    x = x.map((xt, t) => {
      const a = lin(
        ctx[t],
        cache[`${l}.attention.output.dense.weight`],
        cache[`${l}.attention.output.dense.bias`],
        D,
      );
      const y = ln(
        xt.map((xi, i) => xi + a[i]),
        cache[`${l}.attention.output.LayerNorm.weight`],
        cache[`${l}.attention.output.LayerNorm.bias`],
      );
      const f = lin(
        lin(
          y,
          cache[`${l}.intermediate.dense.weight`],
          cache[`${l}.intermediate.dense.bias`],
          cfg.intermediate_size,
        ).map(gelu),
        cache[`${l}.output.dense.weight`],
        cache[`${l}.output.dense.bias`],
        D,
      );
      return ln(
        y.map((yi, i) => yi + f[i]),
        cache[`${l}.output.LayerNorm.weight`],
        cache[`${l}.output.LayerNorm.bias`],
      );
    });
    const h0 = lin(x[0], cache["classifier.dense.weight"], cache["classifier.dense.bias"], D).map(Math.tanh);
    out.push(lin(h0, cache["classifier.out_proj.weight"], cache["classifier.out_proj.bias"], 3));
  }
  return out;
}
const cache: Record<string, number[]> = {};

Deno.test("forward pass matches an independent loop implementation (1-layer tiny, fixed weights)", async () => {
  await useBackend("cpu");
  const p = fixedParams(CFG, 3);
  const ids = [[0, 5, 7, 9, 2, 1], [0, 11, 3, 2, 1, 1]];
  const ref = await loopForward(p, CFG, ids);
  for (const backend of ["cpu", "webgpu"] as const) {
    await useBackend(backend);
    const q = fixedParams(CFG, 3);
    const logits = await classifierLogits(
      q,
      encode(q, CFG, { ids: Int32Array.from(ids.flat()), B: 2, T: 6 }, null),
      null,
    ).data();
    for (let i = 0; i < 6; i++) {
      assert.ok(
        Math.abs(logits[i] - ref[Math.floor(i / 3)][i % 3]) < 1e-4,
        `${backend}: logit ${i}: ${logits[i]} vs ${ref[Math.floor(i / 3)][i % 3]}`,
      );
    }
  }
});

Deno.test("RoBERTa position ids start after the padding index", () => {
  assert.deepEqual(Array.from(positionIds({ ids: Int32Array.from([0, 5, 2, 1, 1]), B: 1, T: 5 }, 1)), [
    2,
    3,
    4,
    1,
    1,
  ]);
});

Deno.test("safetensors: F32, F16 and BF16 read into F32", async () => {
  const dir = tempDir();
  await writeSafetensors(
    `${dir}/a.safetensors`,
    new Map([["x", { shape: [2, 2], data: Float32Array.from([1, -2, 0.5, 3]) }]]),
  );
  assert.deepEqual(Array.from((await readSafetensors(`${dir}/a.safetensors`)).get("x")!.data), [
    1,
    -2,
    0.5,
    3,
  ]);
  // Hand-built F16 and BF16 tensors: 1.0, -2.0.
  const header = JSON.stringify({
    h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
    b: { dtype: "BF16", shape: [2], data_offsets: [4, 8] },
  });
  const hb = new TextEncoder().encode(header);
  const buf = new Uint8Array(8 + hb.length + 8);
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  buf.set(hb, 8);
  const o = 8 + hb.length;
  dv.setUint16(o, 0x3c00, true);
  dv.setUint16(o + 2, 0xc000, true);
  dv.setUint16(o + 4, 0x3f80, true);
  dv.setUint16(o + 6, 0xc000, true);
  await Deno.writeFile(`${dir}/b.safetensors`, buf);
  const t = await readSafetensors(`${dir}/b.safetensors`);
  assert.deepEqual(Array.from(t.get("h")!.data), [1, -2]);
  assert.deepEqual(Array.from(t.get("b")!.data), [1, -2]);
});

Deno.test("checkpoints: an HF-named file loads by name; wrong shapes and missing tensors are named", async () => {
  await useBackend("cpu");
  const dir = tempDir();
  const cfg = namedConfig("tiny", 50);
  const params = initParams(cfg, { mlm: true, numLabels: 0 }, 1);
  await saveCheckpoint(dir, cfg, params);
  const hf = JSON.parse(Deno.readTextFileSync(`${dir}/config.json`));
  assert.equal(hf.model_type, "xlm-roberta");
  const { params: loaded, fresh } = await loadCheckpoint(dir, { mlm: false, numLabels: 4 }, 2);
  assert.deepEqual(fresh.sort(), [
    "classifier.dense.bias",
    "classifier.dense.weight",
    "classifier.out_proj.bias",
    "classifier.out_proj.weight",
  ]);
  assert.deepEqual(
    Array.from(await loaded.get("roberta.encoder.layer.1.output.dense.weight")!.data()),
    Array.from(await params.get("roberta.encoder.layer.1.output.dense.weight")!.data()),
  );
  const tensors = await readSafetensors(`${dir}/model.safetensors`);
  tensors.set("roberta.encoder.layer.0.attention.self.query.weight", {
    shape: [3, 3],
    data: new Float32Array(9),
  });
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
  await assert.rejects(
    loadCheckpoint(dir, { mlm: false, numLabels: 2 }, 1),
    /tensor 'roberta\.encoder\.layer\.0\.attention\.self\.query\.weight' has shape \[3,3\], expected \[32,32\]/,
  );
  tensors.delete("roberta.encoder.layer.0.attention.self.query.weight");
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
  await assert.rejects(
    loadCheckpoint(dir, { mlm: false, numLabels: 2 }, 1),
    /missing tensor 'roberta\.encoder\.layer\.0\.attention\.self\.query\.weight'/,
  );
});

async function curve(
  backend: "cpu" | "webgpu",
  steps: number,
): Promise<{ losses: number[]; tensors: number[]; gpuBytes: number[] }> {
  await useBackend(backend);
  const cfg = namedConfig("tiny", 40);
  const params = initParams(cfg, { mlm: false, numLabels: 3 }, 5);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, fused: true });
  const rand = mulberry32(3);
  const ids = Int32Array.from({ length: 8 * 6 }, (_, i) => (i % 6 === 0 ? 0 : 4 + Math.floor(rand() * 30)));
  const labels = Int32Array.from({ length: 8 }, (_, i) => ids[i * 6 + 1] % 3);
  const updates = new Map([...params.keys()].map((n) => [n, { mode: "none" as const }]));
  const losses: number[] = [], tensors: number[] = [], gpuBytes: number[] = [];
  for (let s = 0; s < steps; s++) {
    const drop = { rate: 0.1, seed: 11 + s, counter: 0 };
    const r = await trainStep(
      params,
      () =>
        crossEntropy(classifierLogits(params, encode(params, cfg, { ids, B: 8, T: 6 }, drop), drop), labels),
      opt,
      updates,
      3e-3,
      1,
    );
    losses.push(r.loss);
    tensors.push(tf.memory().numTensors);
    gpuBytes.push((tf.memory() as { numBytesInGPU?: number }).numBytesInGPU ?? 0);
  }
  opt.dispose();
  tf.dispose([...params.values()]);
  return { losses, tensors, gpuBytes };
}

for (const backend of ["cpu", "webgpu"] as const) {
  Deno.test(`training on ${backend}: same seed, same curve; loss falls; tensor count flat`, async () => {
    const a = await curve(backend, 30), b = await curve(backend, 30);
    assert.deepEqual(a.losses, b.losses);
    assert.ok(
      a.losses.slice(-3).reduce((x, y) => x + y) / 3 < 0.5 * a.losses[0],
      `loss ${a.losses[0]} -> ${a.losses.at(-1)}`,
    );
    assert.equal(new Set(a.tensors.slice(2)).size, 1, `numTensors ${a.tensors.join(",")}`);
    assert.equal(new Set(a.gpuBytes.slice(2)).size, 1, `GPU bytes ${a.gpuBytes.join(",")}`);
    if (backend === "webgpu") assert.ok(a.gpuBytes[2] > 0);
  });
}

function f32ToF16(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = (x >>> 13) & 0x3ff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | mant;
}

Deno.test("checkpoints: an XLM-R-style F16 file with extra tensors (pooler, tied decoder) loads by HF name", async () => {
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 40);
  const dir = tempDir();
  const rand = mulberry32(9);
  const shapes: [string, number[]][] = [
    ...paramShapes(cfg, { mlm: true, numLabels: 0 }),
    ["roberta.pooler.dense.weight", [32, 32]],
    ["roberta.pooler.dense.bias", [32]],
    ["lm_head.decoder.weight", [40, 32]],
  ];
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const chunks: Uint8Array[] = [];
  let off = 0;
  const values = new Map<string, number[]>();
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const vals = Array.from({ length: n }, () => Math.round((rand() - 0.5) * 64) / 64);
    values.set(name, vals);
    const bytes = new Uint8Array(n * 2);
    const dv = new DataView(bytes.buffer);
    vals.forEach((v, i) => dv.setUint16(i * 2, f32ToF16(v), true));
    header[name] = { dtype: "F16", shape, data_offsets: [off, off + bytes.length] };
    chunks.push(bytes);
    off += bytes.length;
  }
  const hb = new TextEncoder().encode(JSON.stringify(header));
  const file = new Uint8Array(8 + hb.length + off);
  new DataView(file.buffer).setBigUint64(0, BigInt(hb.length), true);
  file.set(hb, 8);
  let p = 8 + hb.length;
  for (const c of chunks) {
    file.set(c, p);
    p += c.length;
  }
  Deno.writeFileSync(`${dir}/model.safetensors`, file);
  Deno.writeTextFileSync(
    `${dir}/config.json`,
    JSON.stringify({ ...cfg, model_type: "xlm-roberta", architectures: ["XLMRobertaForMaskedLM"] }),
  );
  const { params } = await loadCheckpoint(dir, { mlm: false, numLabels: 2 }, 1);
  const name = "roberta.encoder.layer.1.intermediate.dense.weight";
  assert.deepEqual(Array.from(await params.get(name)!.data()), values.get(name));
});

Deno.test("row blocks: XLM-R's embedding splits into 6 blocks under 128 MiB covering every row; small ones stay whole", () => {
  const blocks = rowBlocks(250_002, 768, 134_217_728);
  assert.equal(blocks.length, 6);
  assert.ok(blocks.every((b) => b.rows * 768 * 4 <= 134_217_728));
  assert.equal(blocks.reduce((a, b) => (assert.equal(b.start, a), a + b.rows), 0), 250_002);
  assert.deepEqual(rowBlocks(8000, 64, 134_217_728), [{ start: 0, rows: 8000 }]);
  assert.equal(rowBlocks(250_002, 768, 2_147_483_647).length, 1);
});

Deno.test("row-split word embedding: same values, logits, MLM logits and embedding gradient as the whole one; checkpoints keep the HF name", async () => {
  await useBackend("cpu");
  const cfg = namedConfig("tiny", 300);
  const heads = { mlm: true, numLabels: 3 };
  const whole = initParams(cfg, heads, 4);
  const split = initParams(cfg, heads, 4, 10_000);
  assert.ok(!split.has(WORD_EMBEDDINGS));
  const blocks = wordEmbeddingBlocks(split);
  assert.equal(blocks.length, 4);
  assert.deepEqual(
    Array.from(await tf.concat(blocks, 0).data()),
    Array.from(await whole.get(WORD_EMBEDDINGS)!.data()),
  );
  const ids = Int32Array.from(
    { length: 3 * 10 },
    (_, i) => (i % 10 === 0 ? 0 : i % 10 > 7 ? 1 : (i * 53) % 300),
  );
  const batch = { ids, B: 3, T: 10 };
  const at = Int32Array.from([1, 4, 12, 25]);
  const labels = Int32Array.from([5, 77, 150, 299]);
  const run = (p: Params) => {
    const h = encode(p, cfg, batch, null);
    return { cls: classifierLogits(p, h, null), mlm: mlmLogits(p, cfg, h, at) };
  };
  const [a, b] = [run(whole), run(split)];
  assert.deepEqual(Array.from(await b.cls.data()), Array.from(await a.cls.data()));
  const [ma, mb] = [await a.mlm.data(), await b.mlm.data()];
  assert.ok(ma.every((v, i) => Math.abs(v - mb[i]) < 1e-6));
  const grad = (p: Params, vars: tf.Variable[]) =>
    tf.variableGrads(() => crossEntropy(mlmLogits(p, cfg, encode(p, cfg, batch, null), at), labels), vars)
      .grads;
  const gw = grad(whole, [whole.get(WORD_EMBEDDINGS)!]);
  const gs = grad(split, blocks);
  const gWhole = await gw[whole.get(WORD_EMBEDDINGS)!.name].data();
  const gSplit = await tf.concat(blocks.map((v) => gs[v.name]), 0).data();
  assert.ok(gWhole.some((v) => v !== 0));
  assert.ok(gWhole.every((v, i) => Math.abs(v - gSplit[i]) < 1e-6));
  const dir = tempDir();
  await saveCheckpoint(dir, cfg, split);
  const file = await readSafetensors(`${dir}/model.safetensors`);
  assert.deepEqual(file.get(WORD_EMBEDDINGS)!.shape, [300, 32]);
  assert.ok(![...file.keys()].some((k) => k.includes("#")));
  const { params: loaded } = await loadCheckpoint(dir, heads, 1);
  assert.deepEqual(
    Array.from(await loaded.get(WORD_EMBEDDINGS)!.data()),
    Array.from(await whole.get(WORD_EMBEDDINGS)!.data()),
  );
});

Deno.test("WebGPU: an embedding past the device's binding limit is split automatically, matches cpu and trains", async () => {
  // 530,000 x 64 float32 = 135.7 MB: just past the 128 MiB Mesa binds.
  const cfg = { ...namedConfig("tiny", 530_000), hidden_size: 64, num_hidden_layers: 1 };
  const heads = { mlm: false, numLabels: 3 };
  const ids = Int32Array.from([0, 17, 250_000, 529_999, 2, 0, 99_999, 400_001, 2, 1]);
  const batch = { ids, B: 2, T: 5 };
  await useBackend("cpu");
  const ref = initParams(cfg, heads, 2);
  const want = await classifierLogits(ref, encode(ref, cfg, batch, null), null).data();
  tf.dispose([...ref.values()]);
  await useBackend("webgpu");
  const params = initParams(cfg, heads, 2);
  const blocks = wordEmbeddingBlocks(params);
  const limit = (await initBackend("webgpu")).bindingLimit!;
  if (limit < 530_000 * 64 * 4) assert.equal(blocks.length, 2);
  const got = await classifierLogits(params, encode(params, cfg, batch, null), null).data();
  assert.ok(got.every((v, i) => Math.abs(v - want[i]) < 1e-4), `${got} vs ${want}`);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, fused: true });
  const updates = new Map([...params.keys()].map((n) => [n, { mode: "none" as const }]));
  const r = await trainStep(
    params,
    () =>
      crossEntropy(classifierLogits(params, encode(params, cfg, batch, null), null), Int32Array.from([0, 2])),
    opt,
    updates,
    1e-3,
    1,
  );
  assert.ok(Number.isFinite(r.loss));
  for (const name of [...params.keys()].filter((n) => n.startsWith(`${WORD_EMBEDDINGS}#`))) {
    const m = await opt.m.get(name)!.abs().sum().data();
    assert.ok(m[0] > 0, "every block holds a looked-up id and gets a gradient");
  }
  opt.dispose();
  tf.dispose([...params.values()]);
});

Deno.test("encode: onLayer sees the embeddings and every block's output, the last being encode's", async () => {
  await useBackend("cpu");
  const cfg = { ...namedConfig("tiny", 50), max_position_embeddings: 20 };
  const params = initParams(cfg, { mlm: false, numLabels: 2 }, 3);
  const batch = { ids: Int32Array.of(0, 7, 9, 2, 0, 11, 2, 1), B: 2, T: 4 };
  const seen: [number, tf.Tensor3D][] = [];
  const out = encode(params, cfg, batch, null, (layer, h) => seen.push([layer, tf.keep(h.clone())]));
  assert.deepEqual(seen.map(([l]) => l), Array.from({ length: cfg.num_hidden_layers + 1 }, (_, i) => i));
  assert.deepEqual(await seen.at(-1)![1].data(), await out.data());
  assert.notDeepEqual(await seen[0][1].data(), await out.data());
  tf.dispose([out, ...seen.map(([, h]) => h), ...params.values()]);
});
