/**
 * `corpus/cldr`: parallel short texts from the Unicode CLDR (emoji names and keywords, names of
 * languages and territories; see `data/cldr_text.ts`) in the corpus layout, so a pretraining
 * segment can pair every task language with English beyond SIB-200 and the UDHR.
 * @module
 */
import { z } from "zod";
import type { StageType } from "../pipeline/stage.ts";
import { CLDR_LOCALES, CLDR_SOURCES } from "../data/cldr_text.ts";
import type { CorpusLanguage } from "../data/corpus.ts";

const schema = z.strictObject({
  sources: z.array(z.enum(CLDR_SOURCES)).min(1).default([...CLDR_SOURCES]),
  /** SIB-200 codes; English is always read, as every other language's alignment. */
  languages: z.array(z.enum(Object.keys(CLDR_LOCALES) as [string, ...string[]])).min(1).default(
    Object.keys(CLDR_LOCALES),
  ),
});

/** Writes `paragraphs.jsonl` and `languages.json` (one entry per language, `<iso6393>_cldr`). */
export const stage: StageType<typeof schema> = {
  type: "corpus/cldr",
  description:
    "parallel short texts in the task languages from the Unicode CLDR: emoji names and keywords, names of languages and territories",
  schema,
  async run(ctx) {
    const { cldrText } = await import("../data/cldr_text.ts");
    const languages = [...new Set(["eng_Latn", ...ctx.params.languages])];
    const texts = await cldrText(languages, ctx.params.sources);
    const langs: Record<string, CorpusLanguage> = {};
    for (const t of texts) {
      const l = langs[t.lang] ??= {
        iso6393: t.iso6393,
        name: `${t.iso6393} (CLDR)`,
        script: t.script,
        paragraphs: 0,
        chars: 0,
      };
      l.paragraphs++;
      l.chars += t.text.length;
    }
    await Deno.writeTextFile(
      `${ctx.out}/paragraphs.jsonl`,
      texts.map((t) => JSON.stringify(t)).join("\n") + "\n",
    );
    await Deno.writeTextFile(`${ctx.out}/languages.json`, JSON.stringify(langs, null, 1));
    ctx.log(
      `${Object.keys(langs).length} languages, ${texts.length} texts, ${
        texts.reduce((a, t) => a + t.text.split(/\s+/).length, 0)
      } words`,
    );
  },
};
