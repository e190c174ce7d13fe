/**
 * `data/udhr-articles`: cross-lingual classification of UDHR paragraphs by the theme group
 * of their article. Train/dev from `train_languages`; test is zero-shot on other languages.
 * @module
 */
import { z } from "zod";
import type { UdhrParagraph } from "../data/udhr.ts";
import { inputOfType, inputPath, inputsOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  train_languages: z.array(z.string()).min(1).default(["eng", "fra", "spa", "rus", "arb", "cmn"]),
  eval_languages: z.union([z.literal("all"), z.number().int().min(1), z.array(z.string()).min(1)]).default(
    100,
  ),
  dev_fraction: z.number().min(0.05).max(0.5).default(0.2),
  max_length: z.number().int().min(8).max(512).default(64),
  seed: z.number().int().default(0),
  resource_csv: inputPath("file").optional(),
});

/** Writes a task directory (shards, tokenizer, task.json). */
export const stage: StageType<typeof schema> = {
  type: "data/udhr-articles",
  description: "UDHR paragraph -> article theme group; train on a few languages, test zero-shot on the rest",
  schema,
  async run(ctx) {
    const { readCorpus } = await import("../data/corpus.ts");
    const { groupOf, ARTICLE_GROUPS } = await import("../data/article_groups.ts");
    const { sampleLanguages } = await import("../data/language_sample.ts");
    const { loadTokenizer } = await import("../data/encoding.ts");
    const { readResourceCsv, writeTask } = await import("../data/task.ts");
    const { shuffled } = await import("../kernels/random.ts");
    const p = ctx.params;
    const corpusDir = inputOfType(ctx, ["corpus/"]).dir;
    const tokDir = inputOfType(ctx, ["tokenizer/"]).dir;
    const corpus = await readCorpus<UdhrParagraph>(corpusDir);
    const codes = Object.keys(corpus.languages);
    const resolve = (l: string) => {
      const hit = codes.includes(l) ? l : codes.find((c) => corpus.languages[c].iso6393 === l);
      if (!hit) throw new Error(`train_languages: '${l}' is not in the corpus`);
      return hit;
    };
    const train = p.train_languages.map(resolve);
    const trainIso = new Set(train.map((c) => corpus.languages[c].iso6393));
    // Variants of a training language (e.g. cmn_hans_beijing) would leak into zero-shot: leave them out.
    const candidates = new Map(
      codes.filter((c) => !trainIso.has(corpus.languages[c].iso6393)).map((
        c,
      ) => [c, corpus.languages[c].script]),
    );
    const test = p.eval_languages === "all"
      ? [...candidates.keys()]
      : typeof p.eval_languages === "number"
      ? sampleLanguages(candidates, p.eval_languages, p.seed)
      : p.eval_languages.map(resolve);
    const examples = [];
    for (const lang of train) {
      const paras = shuffled(corpus.paragraphs.filter((x) => x.lang === lang), p.seed);
      const nDev = Math.round(paras.length * p.dev_fraction);
      paras.forEach((x, i) =>
        examples.push({
          text: x.text,
          label: groupOf(x.article),
          lang,
          split: i < nDev ? "dev" as const : "train" as const,
        })
      );
    }
    const testSet = new Set(test);
    for (const x of corpus.paragraphs) {
      if (testSet.has(x.lang)) {
        examples.push({ text: x.text, label: groupOf(x.article), lang: x.lang, split: "test" as const });
      }
    }
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
      scripts: new Map(codes.map((c) => [c, corpus.languages[c].script])),
      shares: tokShares,
      resources: p.resource_csv ? await readResourceCsv(p.resource_csv) : null,
      warnings: [],
      log: ctx.log,
    });
  },
};
