/**
 * Reading a `corpus/udhr` output.
 * @module
 */
import type { UdhrParagraph } from "./udhr.ts";

/** Per-declaration metadata written by `corpus/udhr`. */
export interface CorpusLanguage {
  iso6393: string;
  bcp47: string;
  name: string;
  script: string;
  paragraphs: number;
  articles: number;
  chars: number;
}

/** Paragraphs and language metadata of a corpus directory. */
export async function readCorpus(
  dir: string,
): Promise<{ paragraphs: UdhrParagraph[]; languages: Record<string, CorpusLanguage> }> {
  const text = await Deno.readTextFile(`${dir}/paragraphs.jsonl`);
  const paragraphs = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as UdhrParagraph);
  const languages = JSON.parse(await Deno.readTextFile(`${dir}/languages.json`));
  return { paragraphs, languages };
}

/** Groups paragraph texts by language code. */
export function textsByLanguage(paragraphs: UdhrParagraph[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of paragraphs) {
    let a = out.get(p.lang);
    if (!a) out.set(p.lang, a = []);
    a.push(p.text);
  }
  return out;
}
