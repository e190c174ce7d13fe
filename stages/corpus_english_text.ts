/**
 * `corpus/english-text`: openly licensed English text from registry packages (State of the
 * Union addresses, WordNet glosses; see `data/english_text.ts`) in the corpus layout, so a
 * pretraining segment can read more English than SIB-200 and the UDHR hold.
 * @module
 */
import { z } from "zod";
import type { StageType } from "../pipeline/stage.ts";
import { ENGLISH_SOURCES } from "../data/english_text.ts";

const schema = z.strictObject({
  sources: z.array(z.enum(ENGLISH_SOURCES)).min(1).default([...ENGLISH_SOURCES]),
});

/** Writes `paragraphs.jsonl` and `languages.json` (one entry per source, as its own language code). */
export const stage: StageType<typeof schema> = {
  type: "corpus/english-text",
  description:
    "openly licensed English text from npm packages: State of the Union addresses, WordNet glosses",
  schema,
  async run(ctx) {
    const { englishText } = await import("../data/english_text.ts");
    const lines: string[] = [];
    const langs: Record<string, unknown> = {};
    for (const source of ctx.params.sources) {
      const texts = await englishText(source);
      for (const t of texts) lines.push(JSON.stringify(t));
      langs[texts[0].lang] = {
        iso6393: "eng",
        name: `English (${source})`,
        script: "Latin",
        paragraphs: texts.length,
        chars: texts.reduce((a, t) => a + t.text.length, 0),
      };
      ctx.log(
        `${source}: ${texts.length} texts, ${
          texts.reduce((a, t) => a + t.text.split(/\s+/).length, 0)
        } words`,
      );
    }
    await Deno.writeTextFile(`${ctx.out}/paragraphs.jsonl`, lines.join("\n") + "\n");
    await Deno.writeTextFile(`${ctx.out}/languages.json`, JSON.stringify(langs, null, 1));
  },
};
