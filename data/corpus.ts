/**
 * Pretraining corpora as stages write them: `paragraphs.jsonl` (one text per line with its
 * language, script and an alignment key shared by translations of the same text) and
 * `languages.json` (per-language metadata). `corpus/udhr`, `corpus/sib200` and
 * `corpus/english-text` write this layout; UDHR records carry their article and paragraph
 * as well.
 * @module
 */

/** One text of a corpus. */
export interface CorpusText {
  /** The corpus's own language code (`eng`, `cmn_hans`, `eng_Latn`). */
  lang: string;
  iso6393: string;
  /** Script name as `data/scripts.ts` detects it (`Latin`, `Han`, ...). */
  script: string;
  text: string;
  /** Texts with the same key are translations of each other (e.g. `udhr:3.0`, `sib:431`). */
  align?: string;
  /** Resource tier the corpus stage assigned, where it assigns one. */
  tier?: string;
}

/** Per-language metadata a corpus writes. */
export interface CorpusLanguage {
  iso6393: string;
  name: string;
  script: string;
  paragraphs: number;
  chars: number;
  tier?: string;
  [extra: string]: unknown;
}

/** A corpus directory in memory. */
export interface Corpus<T extends CorpusText = CorpusText> {
  paragraphs: T[];
  languages: Record<string, CorpusLanguage>;
}

/** Paragraphs and language metadata of a corpus directory. UDHR paragraphs get `udhr:<article>.<paragraph>` keys. */
async function readCorpus<T extends CorpusText = CorpusText>(dir: string): Promise<Corpus<T>> {
  const text = await Deno.readTextFile(`${dir}/paragraphs.jsonl`);
  const paragraphs = text.split("\n").filter(Boolean).map((l) => {
    const p = JSON.parse(l) as T & { article?: number; paragraph?: number };
    if (p.align === undefined && p.article !== undefined) p.align = `udhr:${p.article}.${p.paragraph}`;
    return p;
  });
  const languages = JSON.parse(await Deno.readTextFile(`${dir}/languages.json`));
  return { paragraphs, languages };
}

/** Every corpus among `dirs`, concatenated in order. */
export async function readCorpora(dirs: string[]): Promise<Corpus> {
  const out: Corpus = { paragraphs: [], languages: {} };
  for (const d of dirs) {
    const c = await readCorpus(d);
    out.paragraphs.push(...c.paragraphs);
    for (const [k, v] of Object.entries(c.languages)) {
      const prev = out.languages[k];
      out.languages[k] = prev
        ? { ...prev, paragraphs: prev.paragraphs + v.paragraphs, chars: prev.chars + v.chars }
        : v;
    }
  }
  return out;
}

/** Groups paragraph texts by language code. */
export function textsByLanguage(paragraphs: CorpusText[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of paragraphs) {
    let a = out.get(p.lang);
    if (!a) out.set(p.lang, a = []);
    a.push(p.text);
  }
  return out;
}
