/**
 * `tokenizer/load`: a user's own tokenizer from a path: a `tokenizer.json` of any model type
 * the tokenizers library reads, a SentencePiece `.model` (converted as Hugging Face converts
 * XLM-R's; `tokenizer_conversion.json` says how), or a directory holding either.
 * @module
 */
import { z } from "zod";
import { inputPath, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({ path: inputPath("any") });

/** Checks the tokenizer loads and names its special tokens, then writes `tokenizer.json`. */
export const stage: StageType<typeof schema> = {
  type: "tokenizer/load",
  description: "use an existing tokenizer.json or SentencePiece .model from disk",
  schema,
  async run(ctx) {
    const { loadTokenizer, readTokenizerJson } = await import("../data/encoding.ts");
    const { file, json, conversion } = await readTokenizerJson(ctx.params.path);
    await Deno.writeTextFile(`${ctx.out}/tokenizer.json`, JSON.stringify(json));
    if (conversion) {
      await Deno.writeTextFile(
        `${ctx.out}/tokenizer_conversion.json`,
        JSON.stringify(conversion, null, 2) + "\n",
      );
    }
    const t = await loadTokenizer(ctx.out);
    ctx.log(
      `loaded ${file}${
        conversion ? " (converted from SentencePiece)" : ""
      }: vocabulary ${t.vocabSize}, <mask>=${t.mask}`,
    );
  },
};
