/**
 * `tokenizer/train`: BPE with XLM-R's special tokens and language-smoothed sampling.
 * @module
 */
import { z } from "zod";
import { inputsOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  vocab_size: z.number().int().min(64).default(8000),
  alpha: z.number().min(0).max(1).default(0.3),
  character_coverage: z.number().min(0.5).max(1).default(0.9995),
  seed: z.number().int().default(0),
  /**
   * Task language codes (`eng_Latn`): train on the corpus languages that are one of these
   * (same ISO 639-3 language and script) rather than on every language of the corpora.
   */
  languages: z.array(z.string().regex(/^[a-z]{3}(_[A-Z][a-z]{3})?$/)).min(1).optional(),
});

/**
 * Writes `tokenizer.json` and `languages.json` (each language's share of the text it trained
 * on: every language of its corpora, or those that `languages` names).
 */
export const stage: StageType<typeof schema> = {
  type: "tokenizer/train",
  description: "train a BPE tokenizer.json (Metaspace, XLM-R specials, alpha-smoothed languages)",
  schema,
  async run(ctx) {
    const { readCorpora, textsByLanguage } = await import("../data/corpus.ts");
    const { trainBpe } = await import("../data/bpe_trainer.ts");
    const corpus = await readCorpora(inputsOfType(ctx, ["corpus/"]).map((c) => c.dir));
    const texts = textsByLanguage(corpus.paragraphs);
    if (ctx.params.languages) {
      const { corpusLanguagesOf } = await import("../data/languages.ts");
      const { UserInputError } = await import("../pipeline/errors.ts");
      const { matched, unmatched } = corpusLanguagesOf(ctx.params.languages, corpus.languages);
      if (unmatched.length > 0) {
        throw new UserInputError(`languages: no corpus text in ${unmatched.join(", ")}`);
      }
      for (const lang of [...texts.keys()]) if (!matched.includes(lang)) texts.delete(lang);
    }
    const t0 = performance.now();
    const json = trainBpe(texts, {
      vocabSize: ctx.params.vocab_size,
      alpha: ctx.params.alpha,
      characterCoverage: ctx.params.character_coverage,
      seed: ctx.params.seed,
      onProgress: (f, note) => ctx.progress(f, note),
    });
    await Deno.writeTextFile(`${ctx.out}/tokenizer.json`, JSON.stringify(json));
    const total = [...texts.values()].reduce((a, ts) => a + ts.reduce((b, t) => b + t.length, 0), 0);
    const shares = Object.fromEntries(
      Object.entries(corpus.languages).filter(([code]) => texts.has(code)).map((
        [code, l],
      ) => [code, { iso6393: l.iso6393, share: l.chars / total }]),
    );
    await Deno.writeTextFile(`${ctx.out}/languages.json`, JSON.stringify(shares));
    ctx.log(
      `trained ${ctx.params.vocab_size} tokens on ${texts.size} languages in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      }s`,
    );
  },
};
