/**
 * From corpora to packed pretraining sequences: MLM documents (each language's texts in
 * corpus order) and TLM pairs (English with each translation sharing its `align` key),
 * packed to `maxLength`, with each sequence's tokens per language.
 * @module
 */
import type { Corpus, CorpusText } from "./corpus.ts";
import { type LoadedTokenizer, pieces } from "./encoding.ts";
import { packDocument, packPairs } from "./packing.ts";
import { shuffled } from "../kernels/random.ts";
import { sha256 } from "../pipeline/hash.ts";

/** Options for {@link pretrainingSequences}. */
export interface PretrainingDataOptions {
  maxLength: number;
  /** TLM (and contrast) on every non-UDHR pair (SIB-style `align` keys). */
  tlmPairs: boolean;
  /** Share of non-English UDHR paragraphs paired with English for TLM and contrast. */
  tlmUdhrFraction: number;
  /** `align`-key prefixes (`cldr:`) whose pairs go into TLM but not into the contrast's `pairs`. */
  contrastExclude?: string[];
  seed: number;
}

/** A language as pretraining counts it. */
export interface PretrainLanguage {
  lang: string;
  iso6393: string;
  script: string;
  tier?: string;
}

/** Packed sequences and what they hold. */
export interface PretrainingData {
  seqs: Int32Array[];
  /** Tokens per language index, per sequence. */
  seqLangs: Map<number, number>[];
  languages: PretrainLanguage[];
  /** Tokens per language index in one pass over `seqs`. */
  tokensPerEpoch: number[];
  tlmSequences: number;
  /** Translation pairs for the contrastive objective: English `<s> a </s>` and the other side `<s> b </s>`. */
  pairs: { a: Int32Array; b: Int32Array }[];
  /** sha256 over the corpus texts (lang, align, text), in order: names the corpus a checkpoint saw. */
  corpusHash: string;
}

const isEnglish = (t: CorpusText) => t.iso6393 === "eng";

/**
 * Builds the sequences. MLM documents come first (languages in code order), TLM pairs after,
 * shuffled by `seed` before packing; the training loop shuffles sequences again each epoch.
 *
 * @example
 * ```ts ignore
 * const data = pretrainingSequences(await readCorpora(dirs), tok, { maxLength: 128, tlmPairs: true, tlmUdhrFraction: 0.2, seed: 0 });
 * ```
 */
export function pretrainingSequences(
  corpus: Corpus,
  tok: LoadedTokenizer,
  o: PretrainingDataOptions,
): PretrainingData {
  const ids = { bos: tok.bos, eos: tok.eos };
  const langIndex = new Map<string, number>();
  const languages: PretrainLanguage[] = [];
  for (const t of corpus.paragraphs) {
    if (langIndex.has(t.lang)) continue;
    langIndex.set(t.lang, languages.length);
    languages.push({
      lang: t.lang,
      iso6393: t.iso6393,
      script: t.script,
      ...(t.tier ? { tier: t.tier } : {}),
    });
  }
  const cache = new Map<string, number[]>();
  const enc = (text: string) => {
    let v = cache.get(text);
    if (!v) cache.set(text, v = pieces(tok, text));
    return v;
  };
  const docs = new Map<string, number[][]>();
  for (const t of corpus.paragraphs) {
    let d = docs.get(t.lang);
    if (!d) docs.set(t.lang, d = []);
    d.push(enc(t.text));
  }
  const packed = [...docs.keys()].sort().flatMap((l) =>
    packDocument(docs.get(l)!, langIndex.get(l)!, ids, o.maxLength)
  );
  const english = new Map<string, CorpusText>();
  for (const t of corpus.paragraphs) {
    if (isEnglish(t) && t.align && !english.has(t.align)) english.set(t.align, t);
  }
  const pairs: { a: number[]; la: number; b: number[]; lb: number }[] = [];
  const aligned: { a: Int32Array; b: Int32Array }[] = [];
  const row = (x: number[]) => Int32Array.from([tok.bos, ...x.slice(0, o.maxLength - 2), tok.eos]);
  const udhr = corpus.paragraphs.filter((t) =>
    !isEnglish(t) && t.align?.startsWith("udhr:") && english.has(t.align)
  );
  const udhrKeep = new Set(shuffled(udhr, o.seed).slice(0, Math.round(udhr.length * o.tlmUdhrFraction)));
  for (const t of corpus.paragraphs) {
    if (isEnglish(t) || !t.align) continue;
    const en = english.get(t.align);
    if (!en) continue;
    const fromUdhr = t.align.startsWith("udhr:");
    if (fromUdhr ? !udhrKeep.has(t) : !o.tlmPairs) continue;
    const e = { x: enc(en.text), l: langIndex.get(en.lang)! },
      x = { x: enc(t.text), l: langIndex.get(t.lang)! };
    if (!o.contrastExclude?.some((prefix) => t.align!.startsWith(prefix))) {
      aligned.push({ a: row(e.x), b: row(x.x) });
    }
    // Alternate which side comes first, so neither language always sits at the start.
    const [first, second] = pairs.length % 2 === 0 ? [e, x] : [x, e];
    pairs.push({ a: first.x, la: first.l, b: second.x, lb: second.l });
  }
  const tlm = packPairs(shuffled(pairs, o.seed + 1), ids, o.maxLength);
  const all = [...packed, ...tlm];
  const tokensPerEpoch = languages.map(() => 0);
  for (const s of all) for (const [l, n] of s.langs) tokensPerEpoch[l] += n;
  return {
    seqs: all.map((s) => s.ids),
    seqLangs: all.map((s) => s.langs),
    languages,
    tokensPerEpoch,
    tlmSequences: tlm.length,
    pairs: aligned,
    corpusHash: corpusHash(corpus),
  };
}

/** sha256 over a corpus's texts (language, align key, text), in order: names the corpus a checkpoint saw. */
export function corpusHash(corpus: Corpus): string {
  return sha256(corpus.paragraphs.map((t) => `${t.lang}\t${t.align ?? ""}\t${t.text}`).join("\n"));
}
