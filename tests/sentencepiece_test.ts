/**
 * A SentencePiece `.model` converted as Hugging Face converts XLM-R's encodes every SIB-200
 * test sentence of the 24 vendored languages exactly as `spm_encode` does (after fairseq's
 * id offset), and `main.ts tokenize` prints the same ids. `spm_train`/`spm_encode` come from
 * Debian's `sentencepiece`, installed by `platform/setup.ts --tests`.
 * @module
 */
import assert from "node:assert/strict";
import { languageFolders } from "../data/tsv.ts";
import { readSib200Split } from "../data/sib200.ts";
import { loadTokenizer, pieces } from "../data/encoding.ts";
import { convertSentencePieceFile } from "../data/sentencepiece.ts";
import { cli, ROOT, tempDir } from "./helpers.ts";

const SIB = `${ROOT}/datasets/sib200`;

async function tool(name: string, args: string[], stdin?: string): Promise<string> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(name, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  } catch {
    throw new Error(
      `${name} is not installed: run 'deno task setup --tests' as root (Debian package sentencepiece)`,
    );
  }
  // Read while writing: a child that answers as it reads would otherwise fill its pipe and stall.
  const output = child.output();
  const w = child.stdin.getWriter();
  if (stdin) await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await output;
  if (!out.success) throw new Error(`${name} failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** SentencePiece id -> XLM-R's fairseq id (<unk> 0 -> 3, <s> 1 -> 0, </s> 2 -> 2, others +1). */
const fairseq = (id: number) => (id === 0 ? 3 : id === 1 ? 0 : id === 2 ? 2 : id + 1);

Deno.test("a spm_train Unigram model, converted, encodes all 24 languages' SIB-200 test sentences as spm_encode does", async () => {
  const dir = tempDir();
  const langs = languageFolders(SIB);
  assert.equal(langs.length, 24);
  const train: string[] = [], test: string[] = [];
  for (const l of langs) {
    train.push(...(await readSib200Split(SIB, l, "train")).slice(0, 150).map((e) => e.text));
    test.push(...(await readSib200Split(SIB, l, "test")).map((e) => e.text));
  }
  await Deno.writeTextFile(`${dir}/train.txt`, train.join("\n") + "\n");
  await tool("spm_train", [
    `--input=${dir}/train.txt`,
    `--model_prefix=${dir}/spm`,
    "--vocab_size=2000",
    "--model_type=unigram",
    "--num_threads=2",
    "--minloglevel=2",
  ]);
  const want =
    (await tool("spm_encode", [`--model=${dir}/spm.model`, "--output_format=id"], test.join("\n") + "\n"))
      .trimEnd().split("\n").map((l) => l.split(" ").filter(Boolean).map((x) => fairseq(Number(x))));
  assert.equal(want.length, test.length);

  const tok = await loadTokenizer(`${dir}/spm.model`);
  assert.deepEqual([tok.bos, tok.pad, tok.eos, tok.unk, tok.mask], [0, 1, 2, 3, 2001]);
  const wrong = test.map((t, i) => [i, pieces(tok, t), want[i]] as const)
    .filter(([, a, b]) => a.join(" ") !== b.join(" "));
  assert.equal(
    wrong.length,
    0,
    `${wrong.length} of ${test.length} differ, first: ${JSON.stringify(wrong[0])}`,
  );
  // The model's unknown characters (character_coverage < 1) were exercised, not only known ones.
  assert.ok(want.some((ids) => ids.includes(3)), "no sentence had an unknown character");

  const { record } = await convertSentencePieceFile(`${dir}/spm.model`);
  assert.equal(record.model_type, "unigram");
  assert.match(record.normalizer, /nmt_nfkc/);

  const r = await cli(
    ["tokenize", "--tokenizer", `${dir}/spm.model`],
    dir,
    {},
    test.slice(0, 50).join("\n") + "\n",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l)), want.slice(0, 50));
  const p = await cli(
    ["tokenize", "--tokenizer", `${dir}/spm.model`, "--pieces", "--special"],
    dir,
    {},
    "Hello\n",
  );
  assert.equal(JSON.parse(p.stdout)[0], "<s>");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("byte fallback: characters a model never saw become its <0xXX> pieces, as spm_encode gives them", async () => {
  const dir = tempDir();
  const english = (await readSib200Split(SIB, "eng_Latn", "train")).map((e) => e.text);
  await Deno.writeTextFile(`${dir}/train.txt`, english.join("\n") + "\n");
  await tool("spm_train", [
    `--input=${dir}/train.txt`,
    `--model_prefix=${dir}/spm`,
    "--vocab_size=600",
    "--byte_fallback=true",
    "--num_threads=2",
    "--minloglevel=2",
  ]);
  const test = [
    ...(await readSib200Split(SIB, "zho_Hans", "test")).slice(0, 20),
    ...(await readSib200Split(SIB, "amh_Ethi", "test")).slice(0, 20),
  ].map((e) => e.text);
  const want =
    (await tool("spm_encode", [`--model=${dir}/spm.model`, "--output_format=id"], test.join("\n") + "\n"))
      .trimEnd().split("\n").map((l) => l.split(" ").filter(Boolean).map((x) => fairseq(Number(x))));
  const tok = await loadTokenizer(`${dir}/spm.model`);
  const got = test.map((t) => pieces(tok, t));
  assert.deepEqual(got, want);
  assert.ok(want.flat().every((id) => id !== 3), "byte fallback leaves no <unk>");
  Deno.removeSync(dir, { recursive: true });
});
