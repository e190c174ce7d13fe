/**
 * `tokenizer/load`: a user's own `tokenizer.json` (e.g. XLM-R's) from a path.
 * @module
 */
import { z } from "zod";
import { inputPath, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({ path: inputPath("any") });

/** Checks the tokenizer loads and has XLM-R's specials, then copies it. */
export const stage: StageType<typeof schema> = {
  type: "tokenizer/load",
  description: "use an existing tokenizer.json from disk",
  schema,
  async run(ctx) {
    const { loadTokenizer } = await import("../data/encoding.ts");
    const file = ctx.params.path.endsWith(".json") ? ctx.params.path : `${ctx.params.path}/tokenizer.json`;
    const t = await loadTokenizer(file);
    await Deno.copyFile(file, `${ctx.out}/tokenizer.json`);
    ctx.log(`loaded ${file}: vocabulary ${t.vocabSize}, <mask>=${t.mask}`);
  },
};
