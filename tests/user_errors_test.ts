/**
 * Expected user errors through the real stage types: one line naming the file and what is
 * wrong, exit code 1, no stack trace, printed once.
 */
import assert from "node:assert/strict";
import { trainBpe } from "../data/bpe_trainer.ts";
import { cli, ROOT, tempDir } from "./helpers.ts";

function tokenizerDir(dir: string, drop?: string): string {
  const json = trainBpe(new Map([["eng", ["the cat sat on the mat", "a dog ran in the park"]]]), {
    vocabSize: 60,
    alpha: 0.3,
    characterCoverage: 1,
    seed: 0,
  });
  if (drop) {
    const vocab = (json.model as { vocab: Record<string, number> }).vocab;
    delete vocab[drop];
    json.added_tokens = (json.added_tokens as { content: string }[]).filter((t) => t.content !== drop);
  }
  Deno.mkdirSync(`${dir}/tok`, { recursive: true });
  Deno.writeTextFileSync(`${dir}/tok/tokenizer.json`, JSON.stringify(json));
  return `${dir}/tok`;
}

function sibDir(dir: string, files: Record<string, string>): string {
  const root = `${dir}/sib`;
  Deno.mkdirSync(root, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    Deno.mkdirSync(`${root}/${rel.split("/")[0]}`, { recursive: true });
    Deno.writeTextFileSync(`${root}/${rel}`, text);
  }
  return root;
}

const HEADER = "index_id\tcategory\ttext\n";
const ROWS = `${HEADER}1\tsports\tthe cat sat\n2\ttravel\ta dog ran\n`;

async function runTask(dir: string, path: string, extra = ""): Promise<{ code: number; stderr: string }> {
  const file = `${dir}/pipelines.yaml`;
  Deno.writeTextFileSync(
    file,
    `pipelines:
  t:
    stages:
      tok:
        uses: tokenizer/load
        with: {path: ${tokenizerDir(dir)}}
      task:
        uses: data/sib200
        needs: [tok]
        with: {path: ${path}, train_languages: [eng_Latn]${extra}}
`,
  );
  return await cli(["run", "--config", file], `${dir}/home`);
}

function assertOneLine(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => pattern.test(l));
  assert.equal(lines.length, 1, `printed once:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |trace: /, "no stack trace");
}

Deno.test("user errors: an empty data directory", async () => {
  const dir = tempDir();
  Deno.mkdirSync(`${dir}/empty`);
  assertOneLine(await runTask(dir, `${dir}/empty`), /empty: no language folders/);
});

Deno.test("user errors: a language folder without test.tsv is an error, or a warning with optional_splits", async () => {
  const dir = tempDir();
  const path = sibDir(dir, {
    "eng_Latn/train.tsv": ROWS,
    "eng_Latn/dev.tsv": ROWS,
    "eng_Latn/test.tsv": ROWS,
    "fra_Latn/train.tsv": ROWS,
  });
  assertOneLine(await runTask(dir, path), /fra_Latn\/test\.tsv: missing \(set optional_splits: true/);
  const ok = await runTask(tempDir(), path, ", optional_splits: true");
  assert.equal(ok.code, 0, ok.stderr);
});

Deno.test("user errors: a header-only train.tsv is no training data", async () => {
  const dir = tempDir();
  const path = sibDir(dir, {
    "eng_Latn/train.tsv": HEADER,
    "eng_Latn/dev.tsv": HEADER,
    "eng_Latn/test.tsv": ROWS,
  });
  assertOneLine(await runTask(dir, path), /no training rows for eng_Latn \(.*eng_Latn\/train\.tsv\)/);
});

Deno.test("user errors: a text far longer than any sentence is refused at once", async () => {
  const dir = tempDir();
  const path = sibDir(dir, {
    "eng_Latn/train.tsv": `${ROWS}3\tsports\t${"word ".repeat(400000)}\n`,
    "eng_Latn/dev.tsv": ROWS,
    "eng_Latn/test.tsv": ROWS,
  });
  const t0 = performance.now();
  assertOneLine(
    await runTask(dir, path),
    /train\.tsv: a text of 2000000 characters is longer than max_chars 10000/,
  );
  assert.ok(performance.now() - t0 < 30000);
});

async function loadModel(dir: string, files: Record<string, string | Uint8Array>) {
  Deno.mkdirSync(`${dir}/ckpt`, { recursive: true });
  for (const [f, v] of Object.entries(files)) {
    if (typeof v === "string") Deno.writeTextFileSync(`${dir}/ckpt/${f}`, v);
    else Deno.writeFileSync(`${dir}/ckpt/${f}`, v);
  }
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `pipelines:\n  t:\n    stages:\n      load:\n        uses: model/load\n        with: {path: ${dir}/ckpt}\n`,
  );
  return await cli(["run", "--config", `${dir}/pipelines.yaml`], `${dir}/home`);
}

const CONFIG = JSON.stringify({
  vocab_size: 10,
  hidden_size: 4,
  num_hidden_layers: 1,
  num_attention_heads: 1,
  intermediate_size: 8,
  max_position_embeddings: 8,
});

Deno.test("user errors: a checkpoint without config.json, with bad JSON, or truncated", async () => {
  assertOneLine(
    await loadModel(tempDir(), { "model.safetensors": new Uint8Array(8) }),
    /config\.json: missing/,
  );
  assertOneLine(await loadModel(tempDir(), { "config.json": "{ not json" }), /config\.json: not valid JSON/);
  const header = new TextEncoder().encode(
    JSON.stringify({
      "roberta.embeddings.word_embeddings.weight": { dtype: "F32", shape: [10, 4], data_offsets: [0, 160] },
    }),
  );
  const bytes = new Uint8Array(8 + header.length + 100);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  assertOneLine(
    await loadModel(tempDir(), { "config.json": CONFIG, "model.safetensors": bytes }),
    new RegExp(
      `model\\.safetensors: truncated: expected ${8 + header.length + 160} bytes, found ${bytes.length}`,
    ),
  );
});

Deno.test("user errors: keep_layers beyond the checkpoint's depth is refused before anything runs", async () => {
  const dir = tempDir();
  const path = sibDir(dir, {
    "eng_Latn/train.tsv": ROWS,
    "eng_Latn/dev.tsv": ROWS,
    "eng_Latn/test.tsv": ROWS,
  });
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `pipelines:
  t:
    stages:
      model:
        uses: model/load
        with: {path: ${ROOT}/models/sib24-mini}
      task:
        uses: data/sib200
        needs: [model]
        with: {path: ${path}, train_languages: [eng_Latn]}
      finetune:
        uses: train/finetune
        needs: [model, task]
        with: {keep_layers: 5, backend: wasm}
`,
  );
  const r = await cli(["run", "--config", `${dir}/pipelines.yaml`], `${dir}/home`);
  assertOneLine(
    r,
    /refused before starting: finetune cannot run here: keep_layers is 5, but .*sib24-mini has 4 layers/,
  );
  assert.doesNotMatch(r.stderr, /\[task\] running/, "nothing ran");
});

Deno.test("user errors: a tokenizer without <s>", async () => {
  const dir = tempDir();
  const tok = tokenizerDir(dir, "<s>");
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `pipelines:\n  t:\n    stages:\n      tok:\n        uses: tokenizer/load\n        with: {path: ${tok}}\n`,
  );
  assertOneLine(
    await cli(["run", "--config", `${dir}/pipelines.yaml`], `${dir}/home`),
    /special token '<s>' is missing/,
  );
});
