/**
 * How much of an evaluation set occurs in a pretraining corpus: the share of test items whose
 * normalised text (NFC, case-folded, whitespace collapsed) is a corpus text, and the share of
 * their word 8-grams that occur in the corpus. Both are 0 for a leak-free evaluation.
 * (Word 8-grams say little for scripts written without spaces, such as Thai or Khmer; exact
 * matches still catch a copied sentence there.)
 * @module
 */

/** Contamination of one language's test items. */
export interface Overlap {
  items: number;
  /** Share of items whose whole normalised text is in the corpus. */
  exact: number;
  /** Share of the items' word 8-grams found in the corpus (0 when they have none). */
  ngram8: number;
}

/** The figures a task records in `task.json`. */
export interface Contamination {
  exact_share: number;
  ngram8_share: number;
  items: number;
  per_language: Record<string, Overlap>;
}

/**
 * NFC, case-folded, whitespace collapsed.
 *
 * @example
 * ```ts
 * import { normaliseText } from "./contamination.ts";
 * if (normaliseText("  The   CAT\tsat ") !== "the cat sat") throw new Error("not normalised");
 * ```
 */
export function normaliseText(s: string): string {
  return s.normalize("NFC").toLowerCase().replace(/\s+/gu, " ").trim();
}

function ngrams(words: string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= words.length; i++) out.push(words.slice(i, i + n).join(" "));
  return out;
}

/** An index of a corpus's normalised texts and word 8-grams. */
export class CorpusIndex {
  private readonly texts = new Set<string>();
  private readonly grams = new Set<string>();

  /** Adds corpus texts. */
  add(texts: Iterable<string>): void {
    for (const t of texts) {
      const n = normaliseText(t);
      this.texts.add(n);
      for (const g of ngrams(n.split(" "), 8)) this.grams.add(g);
    }
  }

  /**
   * Overlap of some evaluation texts with the corpus.
   *
   * @example
   * ```ts
   * import { CorpusIndex } from "./contamination.ts";
   * const idx = new CorpusIndex();
   * idx.add(["one two three four five six seven eight nine"]);
   * const o = idx.overlap(["One two three four five six seven eight nine", "a new sentence"]);
   * if (o.exact !== 0.5 || o.ngram8 !== 1) throw new Error(JSON.stringify(o));
   * ```
   */
  overlap(texts: string[]): Overlap {
    let exact = 0, hits = 0, total = 0;
    for (const t of texts) {
      const n = normaliseText(t);
      if (this.texts.has(n)) exact++;
      for (const g of ngrams(n.split(" "), 8)) {
        total++;
        if (this.grams.has(g)) hits++;
      }
    }
    return {
      items: texts.length,
      exact: texts.length ? exact / texts.length : 0,
      ngram8: total ? hits / total : 0,
    };
  }
}

/** Contamination per language and overall (item-weighted). */
export function contamination(index: CorpusIndex, byLanguage: Map<string, string[]>): Contamination {
  const per: Record<string, Overlap> = {};
  let items = 0, exact = 0, grams = 0;
  for (const [lang, texts] of byLanguage) {
    const o = index.overlap(texts);
    per[lang] = o;
    items += o.items;
    exact += o.exact * o.items;
    grams += o.ngram8 * o.items;
  }
  return {
    exact_share: items ? exact / items : 0,
    ngram8_share: items ? grams / items : 0,
    items,
    per_language: per,
  };
}
