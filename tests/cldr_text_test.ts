import assert from "node:assert/strict";
import { CLDR_LOCALES, cldrText } from "../data/cldr_text.ts";
import { contamination, CorpusIndex } from "../data/contamination.ts";
import { sib200TestSentences } from "./helpers.ts";

const TASK_LANGUAGES = Object.keys(CLDR_LOCALES);

Deno.test("cldr text: every task language, each record aligned to English's, none an untranslated English fallback", async () => {
  const records = await cldrText(TASK_LANGUAGES, ["emoji", "languages", "territories"]);
  const english = new Map(records.filter((r) => r.iso6393 === "eng").map((r) => [r.align, r.text]));
  // Pinned CLDR 48.2: 1,966 emoji, 693 language names less 27 alternative forms, 316 territories less 21.
  assert.equal(english.size, 1966 + 666 + 295);
  const byLang = Map.groupBy(records, (r) => r.lang);
  assert.equal(byLang.size, 24);
  for (const [lang, rs] of byLang) {
    assert.ok(rs.length > 2000, `${lang}: ${rs.length} records`);
    if (lang === "eng_cldr") continue;
    for (const r of rs) {
      assert.ok(english.has(r.align), `${lang} ${r.align} has no English side`);
      assert.notEqual(r.text, english.get(r.align), `${lang} ${r.align} is English's text`);
    }
  }
  const amharic = byLang.get("amh_cldr")!;
  // A few mix scripts ("n-ary ድምር"); scriptOf names the most frequent.
  const ethiopic = amharic.filter((r) => r.script === "Ethiopic").length;
  assert.ok(
    ethiopic / amharic.length > 0.99,
    `${ethiopic} of ${amharic.length} Amharic records in Ethiopic script`,
  );
});

Deno.test("cldr text: a language CLDR does not cover is named in the error", async () => {
  await assert.rejects(() => cldrText(["eng_Latn", "xyz_Latn"], ["emoji"]), /no CLDR locale for xyz_Latn/);
});

Deno.test("cldr text: no SIB-200 test sentence (any language) is in it, not even by word 8-grams", async () => {
  const texts = (await cldrText(TASK_LANGUAGES, ["emoji", "languages", "territories"])).map((t) => t.text);
  const index = new CorpusIndex();
  index.add(texts);
  assert.equal(contamination(index, new Map([["eng", [texts[0]]]])).exact_share, 1);
  const tests = await sib200TestSentences();
  const c = contamination(index, tests);
  assert.equal(c.items, 24 * 204);
  assert.equal(c.exact_share, 0);
  assert.equal(c.ngram8_share, 0);
});
