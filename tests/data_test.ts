import assert from "node:assert/strict";
import { readDeclaration, udhrIndex } from "../data/udhr.ts";
import { languageWeights, preTokenize, trainBpe } from "../data/bpe_trainer.ts";
import { encodeExample, loadTokenizer, tokenStats } from "../data/encoding.ts";
import { batchRows, buildShard, readShard, writeShard } from "../data/shards.ts";
import { readTsv } from "../data/tsv.ts";
import { readSib200Split } from "../data/sib200.ts";
import { readPairSplit } from "../data/pair_tasks.ts";
import { languageFolders } from "../data/tsv.ts";
import { groupOf } from "../data/article_groups.ts";
import { sampleLanguages } from "../data/language_sample.ts";
import { scriptOf } from "../data/scripts.ts";
import { cli, ROOT, tempDir } from "./helpers.ts";

Deno.test("UDHR: English has the preamble and 30 articles; scripts are detected", async () => {
  const eng = await readDeclaration("eng");
  const articles = [...new Set(eng.map((p) => p.article))].sort((a, b) => a - b);
  assert.deepEqual(articles, Array.from({ length: 31 }, (_, i) => i));
  assert.match(eng.find((p) => p.article === 1)!.text, /^All human beings are born free and equal/);
  assert.equal(eng[0].script, "Latin");
  assert.equal((await readDeclaration("rus"))[0].script, "Cyrillic");
  assert.equal((await readDeclaration("arb"))[0].script, "Arabic");
  assert.ok(udhrIndex().length > 500);
  assert.equal(groupOf(0), "foundations");
  assert.equal(groupOf(19), "political-rights");
  assert.equal(scriptOf("中文 text 汉字"), "Han");
});

Deno.test("alpha smoothing: q_i ∝ p_i^alpha boosts small languages", () => {
  const w = languageWeights(new Map([["big", 900], ["small", 100]]), 0.3);
  const q = (l: string, n: number) => (w.get(l)! * n) / 1000;
  assert.ok(Math.abs(q("big", 900) + q("small", 100) - 1) < 1e-9);
  assert.ok(Math.abs(q("small", 100) / q("big", 900) - (0.1 / 0.9) ** 0.3) < 1e-9);
  assert.deepEqual(preTokenize("  Ab  cd "), ["▁Ab", "▁cd"]);
});

Deno.test("BPE trainer writes a tokenizer.json that @huggingface/tokenizers loads and encodes", async () => {
  const eng = (await readDeclaration("eng")).map((p) => p.text);
  const fra = (await readDeclaration("fra")).map((p) => p.text);
  const json = trainBpe(new Map([["eng", eng], ["fra", fra]]), {
    vocabSize: 400,
    alpha: 0.3,
    characterCoverage: 0.9995,
    seed: 0,
  });
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/tokenizer.json`, JSON.stringify(json));
  const tok = await loadTokenizer(dir);
  assert.equal(tok.vocabSize, 400);
  assert.deepEqual([tok.bos, tok.pad, tok.eos, tok.unk, tok.mask], [0, 1, 2, 3, 399]);
  const ids = encodeExample(tok, "All human beings are born free", null, 64);
  assert.equal(ids[0], 0);
  assert.equal(ids.at(-1), 2);
  assert.equal(tok.tok.decode(ids.slice(1, -1)), "All human beings are born free");
  const pair = encodeExample(tok, "a b c d e f g h", "i j k l", 10);
  assert.equal(pair.length, 10);
  assert.deepEqual(pair.filter((x) => x === 2).length, 3, "<s> A </s></s> B </s>");
  const stats = tokenStats(tok, ["Всеобщая декларация"]);
  assert.ok(stats.unk_rate >= 0.5, `Cyrillic is outside a Latin-only alphabet (unk rate ${stats.unk_rate})`);
  assert.ok(tokenStats(tok, eng).fertility > 1);
});

Deno.test("shards: round trip, and batches cut to the longest row", async () => {
  const dir = tempDir();
  const s = buildShard(
    "train",
    [{ ids: [0, 5, 2], label: 1, lang: 0 }, { ids: [0, 5, 6, 7, 8, 9, 10, 11, 12, 2], label: 0, lang: 1 }],
    16,
    1,
    ["a", "b"],
    ["x", "y"],
  );
  await writeShard(dir, s);
  const r = await readShard(dir, "train");
  assert.deepEqual(Array.from(r.lengths), [3, 10]);
  assert.deepEqual(Array.from(r.labels), [1, 0]);
  const b = batchRows(r, [0, 1]);
  assert.equal(b.T, 16);
  assert.equal(batchRows(r, [0]).T, 8);
  assert.ok(Deno.statSync(`${dir}/train.ids.i32`).size === 2 * 16 * 4);
});

Deno.test("TSV errors name the file and line: bad row, unknown label, missing file, non-UTF-8", async () => {
  const dir = tempDir();
  Deno.mkdirSync(`${dir}/eng_Latn`);
  Deno.writeTextFileSync(
    `${dir}/eng_Latn/train.tsv`,
    "index_id\tcategory\ttext\n1\tsports\tA match.\n2\thealth\n",
  );
  await assert.rejects(
    readSib200Split(dir, "eng_Latn", "train"),
    new RegExp(`${dir}/eng_Latn/train.tsv:3: expected 3 tab-separated fields, found 2`),
  );
  Deno.writeTextFileSync(
    `${dir}/eng_Latn/train.tsv`,
    "index_id\tcategory\ttext\n1\tsports\tA match.\n2\tcooking\tSoup.\n",
  );
  await assert.rejects(readSib200Split(dir, "eng_Latn", "train"), /train\.tsv:3: unknown label 'cooking'/);
  await assert.rejects(readSib200Split(dir, "eng_Latn", "dev"), /dev\.tsv: missing file/);
  Deno.writeFileSync(
    `${dir}/eng_Latn/test.tsv`,
    new Uint8Array([...new TextEncoder().encode("index_id\tcategory\ttext\n1\tsports\t"), 0xff, 0xfe, 10]),
  );
  await assert.rejects(readSib200Split(dir, "eng_Latn", "test"), /test\.tsv:2: not valid UTF-8/);
  await assert.rejects(
    readTsv(`${dir}/eng_Latn/train.tsv`, ["premise"]),
    /train\.tsv:1: missing column\(s\) premise/,
  );
});

Deno.test("XNLI and PAWS-X layouts read from small files", async () => {
  const dir = tempDir();
  for (const lang of ["en", "de"]) {
    Deno.mkdirSync(`${dir}/${lang}`);
    Deno.writeTextFileSync(
      `${dir}/${lang}/test.tsv`,
      "premise\thypothesis\tlabel\nA man sleeps.\tA person rests.\tentailment\nIt rains.\tIt is dry.\tcontradiction\n",
    );
  }
  const ex = await readPairSplit("xnli", dir, "de", "test");
  assert.deepEqual(ex.map((e) => e.label), ["entailment", "contradiction"]);
  assert.equal(ex[0].text_b, "A person rests.");
  assert.deepEqual(languageFolders(dir), ["de", "en"]);
  Deno.writeTextFileSync(`${dir}/en/dev.tsv`, "sentence1\tsentence2\tlabel\nA\tB\t1\nC\tD\t2\n");
  await assert.rejects(readPairSplit("pawsx", dir, "en", "dev"), /dev\.tsv:3: unknown label '2'/);
});

Deno.test("zero-shot language sample is deterministic and spans scripts", () => {
  const scripts = new Map<string, string>();
  for (let i = 0; i < 60; i++) scripts.set(`lat${i}`, "Latin");
  for (let i = 0; i < 5; i++) scripts.set(`cyr${i}`, "Cyrillic");
  scripts.set("eth0", "Ethiopic");
  const a = sampleLanguages(scripts, 20, 0);
  assert.deepEqual(a, sampleLanguages(scripts, 20, 0));
  assert.equal(a.length, 20);
  assert.ok(a.includes("eth0") && a.filter((x) => x.startsWith("cyr")).length === 5);
});

const SIB = new URL("../datasets/sib200", import.meta.url).pathname;

Deno.test("SIB-200: the vendored data reads with 7 labels in 24 languages, parallel by index_id", async () => {
  const langs = languageFolders(SIB);
  assert.equal(langs.length, 24);
  const train = await readSib200Split(SIB, "eng_Latn", "train");
  assert.equal(train.length, 701);
  const ids = (await readSib200Split(SIB, "eng_Latn", "test")).map((r) => r.id).join(",");
  for (const l of langs) {
    const test = await readSib200Split(SIB, l, "test");
    assert.equal(test.length, 204, l);
    assert.equal(test.map((r) => r.id).join(","), ids, `${l} test items are English's, in the same order`);
  }
});

Deno.test("tokenizer/train languages: trains on the named task languages only, and refuses one without text", async () => {
  const dir = tempDir();
  const yaml = (languages: string) =>
    `pipelines:\n  t:\n    stages:\n      udhr:\n        uses: corpus/udhr\n        with: {languages: [eng, fra, rus]}\n` +
    `      tok:\n        uses: tokenizer/train\n        needs: [udhr]\n        with: {vocab_size: 300, languages: ${languages}}\n`;
  Deno.writeTextFileSync(`${dir}/pipelines.yaml`, yaml("[eng_Latn, fra_Latn]"));
  const r = await cli(["run", "--config", `${dir}/pipelines.yaml`, "--json"], `${dir}/home`);
  assert.equal(r.code, 0, r.stderr);
  const key = r.json!.stages.find((s) => s.id === "tok")!.key;
  const out = `${dir}/home/store/${key}/out`;
  const kept: Record<string, { iso6393: string }> = JSON.parse(
    Deno.readTextFileSync(`${out}/languages.json`),
  );
  assert.deepEqual([...new Set(Object.values(kept).map((l) => l.iso6393))].sort(), ["eng", "fra"]);
  const tok = await loadTokenizer(out);
  assert.ok(tokenStats(tok, ["Всеобщая декларация"]).unk_rate >= 0.5, "Russian was left out of the alphabet");
  Deno.writeTextFileSync(`${dir}/pipelines.yaml`, yaml("[eng_Latn, yor_Latn]"));
  const bad = await cli(["run", "--config", `${dir}/pipelines.yaml`], `${dir}/home`);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /languages: no corpus text in yor_Latn/);
});

Deno.test("xlco_exclude: pairs under an excluded align prefix train TLM but leave the contrast", async () => {
  const { pretrainingSequences } = await import("../data/pretraining_data.ts");
  const tok = await loadTokenizer(`${ROOT}/models/sib24-vocab`);
  const text = (lang: string, iso6393: string, t: string, align: string) => ({
    lang,
    iso6393,
    script: "Latin",
    text: t,
    align,
  });
  const corpus = {
    paragraphs: [
      text("eng_Latn", "eng", "The match ended in a draw.", "sib:1"),
      text("fra_Latn", "fra", "Le match s'est terminé par un nul.", "sib:1"),
      text("eng_cldr", "eng", "grinning face: face, grin", "cldr:emoji:1"),
      text("fra_cldr", "fra", "visage souriant: sourire, visage", "cldr:emoji:1"),
    ],
    languages: {},
  };
  const o = { maxLength: 64, tlmPairs: true, tlmUdhrFraction: 0, seed: 0 };
  const all = pretrainingSequences(corpus, tok, o);
  const kept = pretrainingSequences(corpus, tok, { ...o, contrastExclude: ["cldr:"] });
  assert.equal(all.pairs.length, 2);
  assert.equal(kept.pairs.length, 1);
  assert.deepEqual(kept.pairs[0], all.pairs[0], "the SIB pair stays in the contrast");
  assert.deepEqual(kept.seqs, all.seqs, "MLM and TLM sequences are unchanged");
});
