/**
 * `data/udhr-articles`: cross-lingual classification of UDHR paragraphs by the theme group
 * of their article. Split by ARTICLE so no test paragraph occurs in pretraining in any
 * language: test items are the paragraphs of `test_articles` (one per theme group by
 * default) in the zero-shot languages, and the pretraining corpus (`corpus/udhr` with
 * `hold_out_articles` set to the same list) leaves those articles out everywhere. Training
 * and dev come from the other articles in the source languages; dev is chosen by
 * (article, paragraph) across all source languages, so no dev paragraph has its translation
 * in another source language's training data.
 * @module
 */
import { z } from "zod";
import { inputOfType, inputPath, inputsOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  train_languages: z.array(z.string()).min(1).default(["eng", "fra", "spa", "rus", "arb", "cmn"]),
  eval_languages: z.union([z.literal("all"), z.number().int().min(1), z.array(z.string()).min(1)]).default(
    100,
  ),
  /** Articles whose paragraphs are the test set (pretraining must hold them out). */
  test_articles: z.array(z.number().int().min(0).max(30)).min(1).default([1, 9, 15, 20, 25, 29]),
  dev_fraction: z.number().min(0.05).max(0.5).default(0.2),
  max_length: z.number().int().min(8).max(512).default(64),
  seed: z.number().int().default(0),
  resource_csv: inputPath("file").optional(),
});

/** Writes a task directory (shards, tokenizer, texts, task.json with contamination). */
export const stage: StageType<typeof schema> = {
  type: "data/udhr-articles",
  description:
    "UDHR paragraph -> article theme group, split by article; train on a few languages, test zero-shot",
  schema,
  async run(ctx) {
    const { udhrIndex, readDeclaration } = await import("../data/udhr.ts");
    const { groupOf, ARTICLE_GROUPS } = await import("../data/article_groups.ts");
    const { sampleLanguages } = await import("../data/language_sample.ts");
    const { loadTokenizer } = await import("../data/encoding.ts");
    const { readResourceCsv, writeTask } = await import("../data/task.ts");
    const { pretrainingFacts } = await import("../data/pretraining_facts.ts");
    const { shuffled } = await import("../kernels/random.ts");
    const { UserInputError } = await import("../pipeline/errors.ts");
    const p = ctx.params;
    const tokDir = inputOfType(ctx, ["tokenizer/"]).dir;
    const groups = new Set(p.test_articles.map(groupOf));
    if (groups.size < ARTICLE_GROUPS.length) {
      throw new UserInputError(
        `test_articles: every theme group needs a test article (missing: ${
          ARTICLE_GROUPS.map((g) => g.label).filter((g) => !groups.has(g)).join(", ")
        })`,
      );
    }
    const index = udhrIndex();
    const paragraphs = new Map<string, Awaited<ReturnType<typeof readDeclaration>>>();
    for (const u of index) {
      const paras = await readDeclaration(u.code);
      if (paras.length >= 20) paragraphs.set(u.code, paras);
    }
    const codes = [...paragraphs.keys()];
    const meta = (c: string) => index.find((u) => u.code === c)!;
    const resolve = (l: string) => {
      const hit = codes.includes(l) ? l : codes.find((c) => meta(c).iso6393 === l);
      if (!hit) throw new UserInputError(`train_languages: '${l}' is not in the UDHR`);
      return hit;
    };
    const train = p.train_languages.map(resolve);
    const trainIso = new Set(train.map((c) => meta(c).iso6393));
    // Variants of a training language (e.g. cmn_hans_beijing) would leak into zero-shot: leave them out.
    const candidates = new Map(
      codes.filter((c) => !trainIso.has(meta(c).iso6393)).map((c) => [c, paragraphs.get(c)![0].script]),
    );
    const test = p.eval_languages === "all"
      ? [...candidates.keys()]
      : typeof p.eval_languages === "number"
      ? sampleLanguages(candidates, p.eval_languages, p.seed)
      : p.eval_languages.map(resolve);
    const held = new Set(p.test_articles);
    const key = (x: { article: number; paragraph: number }) => `${x.article}.${x.paragraph}`;
    const trainKeys = [
      ...new Set(train.flatMap((l) => paragraphs.get(l)!.filter((x) => !held.has(x.article)).map(key))),
    ].sort();
    const devKeys = new Set(
      shuffled(trainKeys, p.seed).slice(0, Math.round(trainKeys.length * p.dev_fraction)),
    );
    const examples = [];
    for (const lang of train) {
      for (const x of paragraphs.get(lang)!) {
        if (held.has(x.article)) continue;
        const split = devKeys.has(key(x)) ? "dev" as const : "train" as const;
        examples.push({ text: x.text, label: groupOf(x.article), lang, split });
      }
    }
    for (const lang of test) {
      for (const x of paragraphs.get(lang)!) {
        if (held.has(x.article)) {
          examples.push({ text: x.text, label: groupOf(x.article), lang, split: "test" as const });
        }
      }
    }
    const testTexts = new Map<string, string[]>();
    for (const e of examples) {
      if (e.split === "test") testTexts.set(e.lang, [...testTexts.get(e.lang) ?? [], e.text]);
    }
    const facts = await pretrainingFacts(
      inputsOfType(ctx, ["corpus/"]).map((c) => c.dir),
      undefined,
      testTexts,
    );
    const tokShares = inputsOfType(ctx, ["tokenizer/train"]).length
      ? JSON.parse(await Deno.readTextFile(`${tokDir}/languages.json`))
      : null;
    await writeTask(ctx.out, {
      name: "udhr-articles",
      examples,
      labels: ARTICLE_GROUPS.map((g) => g.label),
      trainLanguages: train,
      maxLength: p.max_length,
      tokenizer: await loadTokenizer(tokDir),
      tokenizerDir: tokDir,
      scripts: new Map(codes.map((c) => [c, paragraphs.get(c)![0].script])),
      shares: tokShares,
      resources: p.resource_csv ? await readResourceCsv(p.resource_csv) : null,
      warnings: [],
      facts,
      log: ctx.log,
    });
    if (facts.contamination) {
      ctx.log(
        `contamination: ${
          (100 * facts.contamination.exact_share).toFixed(2)
        }% of test paragraphs in the corpus`,
      );
    }
  },
};
