/**
 * `corpus/sib200`: the unlabelled train and dev sentences of SIB-200 as pretraining text,
 * with a resource tier per language that decides how much of it pretraining sees. Test
 * sentences are never read: the schema has no way to ask for them.
 * @module
 */
import { z } from "zod";
import { inputPath, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  path: inputPath("dir"),
  splits: z.array(z.enum(["train", "dev"])).min(1).default(["train", "dev"]),
  /** Share of a language's sentences that each tier keeps. */
  tiers: z.record(z.string(), z.number().min(0).max(1)).default({ high: 1, mid: 0.25, low: 0 }),
  /** Tier of each language; a language not listed is in `default_tier`. */
  languages: z.record(z.string(), z.string()).default({}),
  default_tier: z.string().default("high"),
  /** Chooses which sentences a partial tier keeps (the same index_ids in every language of the tier). */
  seed: z.number().int().default(0),
});

/** Writes `paragraphs.jsonl` (lang, iso6393, script, text, align = `sib:<index_id>`, tier) and `languages.json`. */
export const stage: StageType<typeof schema> = {
  type: "corpus/sib200",
  description: "SIB-200 train/dev sentences (no labels, never test) as pretraining text, with resource tiers",
  schema,
  async run(ctx) {
    const { readSib200Split } = await import("../data/sib200.ts");
    const { languageFolders } = await import("../data/tsv.ts");
    const { scriptOf } = await import("../data/scripts.ts");
    const { shuffled } = await import("../kernels/random.ts");
    const { UserInputError } = await import("../pipeline/errors.ts");
    const p = ctx.params;
    const langs = languageFolders(p.path);
    for (const [lang, tier] of Object.entries(p.languages)) {
      if (!langs.includes(lang)) throw new UserInputError(`languages: '${lang}' is not under ${p.path}`);
      if (!(tier in p.tiers)) {
        throw new UserInputError(
          `languages.${lang}: unknown tier '${tier}' (tiers: ${Object.keys(p.tiers).join(", ")})`,
        );
      }
    }
    if (!(p.default_tier in p.tiers)) {
      throw new UserInputError(`default_tier: unknown tier '${p.default_tier}'`);
    }
    const lines: string[] = [];
    const meta: Record<string, unknown> = {};
    let keep: Map<string, Set<string>> | undefined;
    for (const [i, lang] of langs.entries()) {
      const tier = p.languages[lang] ?? p.default_tier;
      const rows = [];
      for (const split of p.splits) rows.push(...await readSib200Split(p.path, lang, split));
      if (!keep) {
        // One order of index_ids for every language, so a partial tier keeps parallel sentences.
        const ids = shuffled(rows.map((r) => r.id!), p.seed);
        keep = new Map(
          Object.entries(p.tiers).map(([t, f]) => [t, new Set(ids.slice(0, Math.round(f * ids.length)))]),
        );
      }
      const kept = rows.filter((r) => keep!.get(tier)!.has(r.id!));
      const script = scriptOf(rows.slice(0, 50).map((r) => r.text).join(" "));
      for (const r of kept) {
        lines.push(JSON.stringify({
          lang,
          iso6393: lang.split("_")[0],
          script,
          text: r.text,
          align: `sib:${r.id}`,
          tier,
        }));
      }
      meta[lang] = {
        iso6393: lang.split("_")[0],
        name: lang,
        script,
        tier,
        paragraphs: kept.length,
        available: rows.length,
        chars: kept.reduce((a, r) => a + r.text.length, 0),
      };
      ctx.progress((i + 1) / langs.length, lang);
    }
    await Deno.writeTextFile(`${ctx.out}/paragraphs.jsonl`, lines.join("\n") + "\n");
    await Deno.writeTextFile(`${ctx.out}/languages.json`, JSON.stringify(meta, null, 1));
    const byTier = Object.keys(p.tiers).map((t) =>
      `${t} ${Object.values(meta).filter((m) => (m as { tier: string }).tier === t).length}`
    );
    ctx.log(`${langs.length} languages (${byTier.join(", ")}), ${lines.length} sentences`);
  },
};
