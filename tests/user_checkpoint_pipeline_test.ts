/**
 * A checkpoint in each layout users bring (prefix or none, F16, BF16, shards, the Hub cache
 * by model id, a classifier for another label count, a bare SentencePiece `.model` beside the
 * weights) fine-tunes for two steps through the pipeline on wasm.
 * @module
 */
import assert from "node:assert/strict";
import { namedConfig } from "../model/config.ts";
import { readSib200Split } from "../data/sib200.ts";
import { exactTensors, LAYOUTS, writeLayout } from "./user_checkpoint.ts";
import { cli, ROOT, statuses, tempDir } from "./helpers.ts";

async function spmModel(dir: string): Promise<Uint8Array> {
  const text = (await readSib200Split(`${ROOT}/datasets/sib200`, "eng_Latn", "train")).map((e) => e.text);
  await Deno.writeTextFile(`${dir}/spm.txt`, text.join("\n"));
  const out = await new Deno.Command("spm_train", {
    args: [`--input=${dir}/spm.txt`, `--model_prefix=${dir}/spm`, "--vocab_size=300", "--minloglevel=2"],
    stderr: "piped",
  }).output().catch(() => {
    throw new Error(
      "spm_train is not installed: run 'deno task setup --tests' as root (Debian package sentencepiece)",
    );
  });
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return await Deno.readFile(`${dir}/spm.model`);
}

Deno.test("a checkpoint in each layout fine-tunes for two steps through the pipeline on wasm", async () => {
  const root = tempDir();
  const tokenizer = await Deno.readTextFile(`${ROOT}/models/sib24-mini/tokenizer.json`);
  const cfg = namedConfig("tiny", 8000);
  const paths: string[] = [];
  for (const layout of LAYOUTS) {
    const withHead = layout === "classifier3" || layout === "classifier7";
    const tensors = exactTensors(cfg, {
      mlm: true,
      numLabels: layout === "classifier3" ? 3 : withHead ? 7 : 0,
    });
    // A Hub snapshot has its model card (and is then not byte-identical to the plain layout).
    const extra: Record<string, string> = layout === "hub" ? { "README.md": "# tiny\n" } : {};
    paths.push(await writeLayout(root, layout, cfg, tensors, { "tokenizer.json": tokenizer, ...extra }));
  }
  const spm = await writeLayout(
    root,
    "spm" as never,
    cfg,
    exactTensors(cfg, { mlm: false, numLabels: 0 }),
    { "sentencepiece.bpe.model": await spmModel(root) },
  );
  paths.push(spm);
  // Eight training rows in batches of four: two steps.
  for (const [split, n] of [["train", 8], ["dev", 4], ["test", 4]] as const) {
    const rows = (await Deno.readTextFile(`${ROOT}/datasets/sib200/eng_Latn/${split}.tsv`)).split("\n");
    Deno.mkdirSync(`${root}/data/eng_Latn`, { recursive: true });
    Deno.writeTextFileSync(`${root}/data/eng_Latn/${split}.tsv`, rows.slice(0, n + 1).join("\n") + "\n");
  }
  Deno.writeTextFileSync(
    `${root}/pipelines.yaml`,
    `pipelines:
  layouts:
    stages:
      tokenizer: { uses: tokenizer/load, with: { path: ${ROOT}/models/sib24-mini/tokenizer.json } }
      task:
        uses: data/sib200
        needs: [tokenizer]
        with: { path: data, max_length: 32 }
      model:
        uses: model/load
        matrix: { path: ${JSON.stringify(paths.map((p) => p.replace(`${root}/`, "")))} }
      finetune:
        uses: train/finetune
        foreach: model
        needs: [task]
        with: { epochs: 1, batch_size: 4, warmup: 0, backend: wasm, log_kept_every: 0, accumulate: 2 }
      onnx: { uses: model/export-onnx, foreach: finetune }
      evaluate: { uses: eval/classify, foreach: onnx, needs: [task], with: { provider: wasm } }
`,
  );
  const r = await cli(
    ["run", "--config", `${root}/pipelines.yaml`, "--json", "--jobs", "2"],
    `${root}/home`,
    {
      HF_HOME: `${root}/hf`,
    },
  );
  assert.equal(r.code, 0, r.stderr);
  const st = statuses(r);
  const tuned = Object.entries(st).filter(([id]) => id.startsWith("finetune["));
  assert.equal(tuned.length, LAYOUTS.length + 1);
  for (const [id, s] of tuned) assert.equal(s, "ran", id);
  assert.match(r.stderr, /org\/tiny.*names with roberta\./);
  assert.match(r.stderr, /bare.*names without roberta\./);
  assert.match(r.stderr, /BF16 \(F32 on load\)/);
  assert.match(r.stderr, /tokenizer converted from sentencepiece\.bpe\.model/);
  assert.match(
    r.stderr,
    /classifier is for another label count; replaced: classifier\.out_proj\.weight \[3,32\] -> \[7,32\]/,
  );
  assert.equal((r.stderr.match(/\] 100% step 2\/2 loss/g) ?? []).length, LAYOUTS.length + 1);

  // The fine-tune of the Hub snapshot, exported: a folder the Hub takes as it is.
  const env = { HF_HOME: `${root}/hf` };
  const ev = await cli(
    ["run", "--config", `${root}/pipelines.yaml`, "--only", "evaluate[path=org/tiny]"],
    `${root}/home`,
    env,
  );
  assert.equal(ev.code, 0, ev.stderr);
  const ex = await cli(
    [
      "export",
      "layouts",
      "--config",
      `${root}/pipelines.yaml`,
      "--id",
      "finetune[path=org/tiny]",
      "--path",
      "checkpoint",
      "--to",
      `${root}/share`,
    ],
    `${root}/home`,
    env,
  );
  assert.equal(ex.code, 0, ex.stderr);
  const files = [...Deno.readDirSync(`${root}/share`)].map((e) => e.name).sort();
  assert.deepEqual(files, [
    "README.md",
    "config.json",
    "model.safetensors",
    "provenance.json",
    "tokenizer.json",
    "tokenizer_config.json",
  ]);
  const card = Deno.readTextFileSync(`${root}/share/README.md`);
  assert.match(card, /^---\nlibrary_name: transformers\npipeline_tag: text-classification\n/);
  assert.match(card, /\| method \| full \|/);
  assert.match(card, /\| eng_Latn \| source \| test \| 4 \| \d+\.\d \|/);
  const digest = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", Deno.readFileSync(`${root}/share/provenance.json`))),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  assert.ok(card.includes(digest), "the card names provenance.json's sha256");
  assert.equal(
    JSON.parse(Deno.readTextFileSync(`${root}/share/config.json`)).architectures[0],
    "XLMRobertaForSequenceClassification",
  );
  Deno.removeSync(root, { recursive: true });
});
