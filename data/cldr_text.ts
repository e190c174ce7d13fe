/**
 * Parallel short texts in every task language from the Unicode CLDR (`npm:cldr-annotations-full`,
 * `npm:cldr-localenames-full`, Unicode License v3): each emoji's name and keywords, and the
 * names of languages and territories, as each locale's translators wrote them. Records that
 * translate one another share an `align` key (`cldr:emoji:😀`, `cldr:language:fr`,
 * `cldr:territory:FR`), so pretraining pairs them with English for TLM and the contrast
 * exactly as it pairs SIB-200's sentences.
 * @module
 */
import { fileURLToPath } from "node:url";
import type { CorpusText } from "./corpus.ts";
import { scriptOf } from "./scripts.ts";

/** The CLDR collections this module reads. */
export const CLDR_SOURCES = ["emoji", "languages", "territories"] as const;
/** One of {@link CLDR_SOURCES}. */
export type CldrSource = typeof CLDR_SOURCES[number];

/** The CLDR locale of each SIB-200 language code (FLORES codes: ISO 639-3 and script). */
export const CLDR_LOCALES: Record<string, string> = {
  eng_Latn: "en",
  arb_Arab: "ar",
  bul_Cyrl: "bg",
  deu_Latn: "de",
  ell_Grek: "el",
  fra_Latn: "fr",
  hin_Deva: "hi",
  ita_Latn: "it",
  nld_Latn: "nl",
  pol_Latn: "pl",
  por_Latn: "pt",
  rus_Cyrl: "ru",
  spa_Latn: "es",
  tha_Thai: "th",
  tur_Latn: "tr",
  vie_Latn: "vi",
  // CLDR's `zh` is Simplified Chinese; `swh` is CLDR's `sw`; CLDR's `qu` (Quechua, region
  // Peru) stands for Ayacucho Quechua (`quy`), the nearest it has.
  zho_Hans: "zh",
  urd_Arab: "ur",
  swh_Latn: "sw",
  khm_Khmr: "km",
  amh_Ethi: "am",
  hau_Latn: "ha",
  yor_Latn: "yo",
  quy_Latn: "qu",
};

/** One entry of a collection: its key and its text in one locale. */
export interface CldrEntry {
  key: string;
  text: string;
}

function packageFile(pkg: string, path: string): string {
  return fileURLToPath(new URL(`./${path}`, import.meta.resolve(pkg)));
}

async function readJson(pkg: string, path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(packageFile(pkg, path)));
}

/**
 * An emoji's annotation as one text: its name, then the keywords that are not the name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(emojiText({ tts: ["grinning face"], default: ["face", "grin", "grinning face"] }), "grinning face: face, grin");
 * ```
 */
export function emojiText(a: { tts?: string[]; default?: string[] }): string | undefined {
  const name = a.tts?.[0];
  if (!name) return undefined;
  const keywords = (a.default ?? []).filter((k) => k !== name);
  return keywords.length ? `${name}: ${keywords.join(", ")}` : name;
}

/**
 * Every entry of one collection in one CLDR locale, in the file's order. Alternative forms
 * (`-alt-short`, `-alt-variant`) are left out: each key has one text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const names = await cldrEntries("territories", "fr");
 * assert.equal(names.find((e) => e.key === "DE")?.text, "Allemagne");
 * ```
 */
export async function cldrEntries(source: CldrSource, locale: string): Promise<CldrEntry[]> {
  if (source === "emoji") {
    const d = await readJson("cldr-annotations-full", `annotations/${locale}/annotations.json`);
    const all = (d.annotations as { annotations: Record<string, { tts?: string[]; default?: string[] }> })
      .annotations;
    return Object.entries(all).flatMap(([key, a]) => {
      const text = emojiText(a);
      return text ? [{ key, text }] : [];
    });
  }
  const d = await readJson("cldr-localenames-full", `main/${locale}/${source}.json`);
  const names = (d.main as Record<string, { localeDisplayNames: Record<string, Record<string, string>> }>)[
    locale
  ].localeDisplayNames[source];
  return Object.entries(names).filter(([key]) => !key.includes("-alt-")).map(([key, text]) => ({
    key,
    text,
  }));
}

/**
 * The records of `languages` (SIB-200 codes, English among them) from `sources`, language by
 * language. A language's record is kept only where English has the same key and the text is
 * not English's own (CLDR falls back to English where a translation is missing), so every
 * non-English record is a translation. Each language's code is `<iso6393>_cldr`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const records = await cldrText(["eng_Latn", "hau_Latn"], ["territories"]);
 * const germany = records.filter((r) => r.align === "cldr:territory:DE").map((r) => r.text);
 * assert.deepEqual(germany, ["Germany", "Jamus"]);
 * ```
 */
export async function cldrText(languages: string[], sources: readonly CldrSource[]): Promise<CorpusText[]> {
  const out: CorpusText[] = [];
  const unknown = languages.filter((l) => !(l in CLDR_LOCALES));
  if (unknown.length) {
    throw new Error(
      `no CLDR locale for ${unknown.join(", ")} (known: ${Object.keys(CLDR_LOCALES).join(", ")})`,
    );
  }
  const kind = { emoji: "emoji", languages: "language", territories: "territory" } as const;
  for (const source of sources) {
    const english = new Map((await cldrEntries(source, "en")).map((e) => [e.key, e.text]));
    for (const lang of languages) {
      const iso6393 = lang.split("_")[0];
      for (const e of await cldrEntries(source, CLDR_LOCALES[lang])) {
        const en = english.get(e.key);
        if (en === undefined || (iso6393 !== "eng" && e.text === en)) continue;
        out.push({
          lang: `${iso6393}_cldr`,
          iso6393,
          script: scriptOf(e.text),
          text: e.text,
          align: `cldr:${kind[source]}:${e.key}`,
        });
      }
    }
  }
  return out;
}
