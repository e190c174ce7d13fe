import assert from "node:assert/strict";
import { cli, tempDir } from "./helpers.ts";
import { sha256File } from "../pipeline/hash.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { segmentsOf } from "../model/segments.ts";
import { verifyProvenance } from "../pipeline/export_entry.ts";

const STAGES = `
      corpus:
        uses: corpus/udhr
        with: {languages: [eng, fra, deu], hold_out_articles: [1, 9]}
      tokenizer:
        uses: tokenizer/train
        needs: [corpus]
        with: {vocab_size: 300}
      first:
        uses: model/pretrain
        needs: [corpus, tokenizer]
        with: {config: tiny, steps: 6, batch_size: 8, max_length: 32, backend: cpu}`;

const CONTINUE = "config: tiny, batch_size: 8, max_length: 32, backend: cpu";

async function exported(
  dir: string,
  home: string,
  file: string,
  pipeline: string,
  id: string,
): Promise<string> {
  const to = `${dir}/${pipeline}-${id}`;
  const x = await cli([
    "export",
    pipeline,
    "--config",
    file,
    "--id",
    id,
    "--path",
    "checkpoint",
    "--to",
    to,
    "--with",
    "tokens_by_language.json",
  ], home);
  assert.equal(x.code, 0, x.stderr);
  return to;
}

const totalTokens = (dir: string) =>
  Object.values(JSON.parse(Deno.readTextFileSync(`${dir}/tokens_by_language.json`)) as { tokens: number }[])
    .reduce((a, e) => a + e.tokens, 0);

async function maxDifference(a: string, b: string): Promise<number> {
  const [ta, tb] = await Promise.all([
    readSafetensors(`${a}/model.safetensors`),
    readSafetensors(`${b}/model.safetensors`),
  ]);
  let worst = 0;
  for (const [name, t] of ta) {
    const u = tb.get(name)!.data;
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u[i]));
  }
  return worst;
}

Deno.test("pretraining continues from a checkpoint as new segments; provenance and token counts cover them all", async () => {
  const dir = tempDir();
  const file = `${dir}/pipelines.yaml`;
  Deno.writeTextFileSync(
    file,
    `pipelines:
  p:
    stages:${STAGES}
      second:
        uses: model/pretrain
        needs: [first, corpus]
        with: {${CONTINUE}, steps: 4, lr: 0.0005, warmup: 0, seed: 1}
      third:
        uses: model/pretrain
        needs: [second, corpus]
        with: {${CONTINUE}, steps: 2, seed: 2}
      # An update this small leaves the weights where they started: proof the start was loaded.
      still:
        uses: model/pretrain
        needs: [first, corpus]
        with: {${CONTINUE}, steps: 1, lr: 1e-12, warmup: 0, dropout: 0}
  wrong-shape:
    stages:${STAGES}
      second:
        uses: model/pretrain
        needs: [first, corpus]
        with: {config: {hidden_size: 48, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64}, steps: 2, batch_size: 8, max_length: 32, backend: cpu}
`,
  );
  const home = `${dir}/home`;
  const run = await cli(["run", "p", "--config", file], home);
  assert.equal(run.code, 0, run.stderr.slice(-2000));
  const out: Record<string, string> = {};
  for (const id of ["first", "second", "third", "still"]) out[id] = await exported(dir, home, file, "p", id);

  const prov = JSON.parse(Deno.readTextFileSync(`${out.third}/provenance.json`));
  const segs = segmentsOf(prov);
  assert.deepEqual(segs.map((s) => [s.params.steps, s.params.seed]), [[6, 0], [4, 1], [2, 2]]);
  assert.equal(segs[0].init_sha256, null);
  assert.equal(segs[1].init_sha256, await sha256File(`${out.first}/model.safetensors`));
  assert.equal(segs[2].init_sha256, await sha256File(`${out.second}/model.safetensors`));
  // Each segment's tokens are added once: two short segments on top of the first.
  assert.ok(totalTokens(out.second) > totalTokens(out.first));
  assert.ok(totalTokens(out.third) > totalTokens(out.second));
  assert.ok(await maxDifference(out.first, out.still) < 1e-6, "a continuation starts from the given weights");
  assert.ok(await maxDifference(out.first, out.second) > 1e-4, "and a real segment moves them");

  const bad = await cli(["run", "wrong-shape", "--config", file], home);
  assert.notEqual(bad.code, 0);
  assert.match(
    bad.stderr,
    /config\.json: continuing needs the shape in params\.config; hidden_size is \d+, params give 48/,
  );
});

Deno.test("segments: a checkpoint exported before segments were recorded counts as one, from its export's params", () => {
  const shipped = JSON.parse(
    Deno.readTextFileSync(new URL("../models/sib24-mini/provenance.json", import.meta.url)),
  );
  const segs = segmentsOf(shipped);
  assert.equal(segs.length, 1);
  assert.equal(segs[0].params.steps, 3800);
  assert.equal(segs[0].corpus_sha256, shipped.stage.corpus_sha256);
  assert.equal(segs[0].key, shipped.key);
  assert.equal(segs[0].init_sha256, null);
  assert.deepEqual(segmentsOf(undefined), []);
});

Deno.test("segments: models/sib24-mini-english is the shipped checkpoint plus one segment, as its provenance says", async () => {
  const prov = JSON.parse(
    Deno.readTextFileSync(new URL("../models/sib24-mini-english/provenance.json", import.meta.url)),
  );
  const segs = segmentsOf(prov);
  assert.deepEqual(segs.map((s) => s.params.steps), [3800, 1500]);
  const shipped = new URL("../models/sib24-mini/model.safetensors", import.meta.url).pathname;
  assert.equal(segs[1].init_sha256, await sha256File(shipped));
  assert.equal(segs[1].key, prov.key);
  assert.notEqual(
    segs[0].corpus_sha256,
    segs[1].corpus_sha256,
    "the second segment read the English text too",
  );
  // Every file it ships matches the sha256 its provenance lists (what model/load checks).
  const dir = new URL("../models/sib24-mini-english", import.meta.url).pathname;
  assert.equal((await verifyProvenance(dir))?.instance, "continued_english");
});

Deno.test("segments: models/sib24-vocab is one segment from scratch with the 24-language tokenizer the README names", async () => {
  const dir = new URL("../models/sib24-vocab", import.meta.url).pathname;
  const prov = JSON.parse(Deno.readTextFileSync(`${dir}/provenance.json`));
  const segs = segmentsOf(prov);
  assert.deepEqual(segs.map((s) => [s.params.steps, s.init_sha256]), [[3800, null]]);
  const tok = prov.upstream.tokenizer.params;
  assert.deepEqual([tok.vocab_size, tok.alpha, tok.languages.length], [8000, 1, 24]);
  assert.equal((await verifyProvenance(dir))?.instance, "pretrain");
});
