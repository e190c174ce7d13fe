/**
 * What a task records about the pretraining behind it: how much of its test set occurs in
 * the pretraining corpora (contamination), how many pretraining tokens each task language
 * had and in which resource tier, and whether the corpora given are the ones the checkpoint
 * saw (its provenance names the corpus hash).
 * @module
 */
import { readCorpora } from "./corpus.ts";
import { type Contamination, contamination, CorpusIndex } from "./contamination.ts";
import { sameLanguage } from "./languages.ts";
import { readJson } from "../pipeline/json_file.ts";

/** Per task language. */
export interface LanguageFacts {
  pretrain_tokens: number | null;
  tier: string | null;
}

/** What {@link pretrainingFacts} finds. */
export interface PretrainingFacts {
  contamination: Contamination | null;
  languages: Map<string, LanguageFacts>;
  warnings: string[];
}

interface TokenEntry {
  lang: string;
  iso6393: string;
  script: string;
  tier?: string;
  tokens: number;
}

/**
 * Facts for the test texts of each task language, from the corpus directories and a
 * checkpoint directory (its `tokens_by_language.json` and `provenance.json`, where present).
 *
 * @example
 * ```ts ignore
 * const facts = await pretrainingFacts(corpusDirs, `${modelDir}/checkpoint`, testTexts);
 * ```
 */
export async function pretrainingFacts(
  corpusDirs: string[],
  checkpointDir: string | undefined,
  testTexts: Map<string, string[]>,
): Promise<PretrainingFacts> {
  const warnings: string[] = [];
  let cont: Contamination | null = null;
  const tiers = new Map<string, string>();
  if (corpusDirs.length > 0) {
    const corpus = await readCorpora(corpusDirs);
    const index = new CorpusIndex();
    index.add(corpus.paragraphs.map((p) => p.text));
    cont = contamination(index, testTexts);
    for (const [lang, meta] of Object.entries(corpus.languages)) if (meta.tier) tiers.set(lang, meta.tier);
    const { corpusHash } = await import("./pretraining_data.ts");
    // Every segment of a continued pretraining must have read the corpora given, or the
    // contamination figures would not cover what the checkpoint saw.
    const { checkpointProvenance, segmentsOf } = await import("../model/segments.ts");
    const prov = checkpointDir ? checkpointProvenance(checkpointDir) : undefined;
    const segHashes = new Set(segmentsOf(prov).map((s) => s.corpus_sha256));
    const want = prov?.stage?.corpus_sha256 ?? prov?.corpus_sha256;
    if (want) segHashes.add(want);
    if (segHashes.size > 1) {
      warnings.push(
        `the checkpoint's pretraining segments read ${segHashes.size} different corpora (provenance.json): contamination figures describe only the corpora given`,
      );
    } else if (segHashes.size === 1 && !segHashes.has(corpusHash(corpus))) {
      warnings.push(
        "the corpora given are not the ones the checkpoint was pretrained on (corpus sha256 differs from its provenance.json): contamination figures describe the corpora given",
      );
    } else if (checkpointDir && !want) {
      warnings.push(
        "the checkpoint has no provenance naming its corpus: contamination is measured against the corpora given",
      );
    }
  }
  const tokens = checkpointDir
    ? readJson<Record<string, TokenEntry> | undefined>(
      `${checkpointDir}/tokens_by_language.json`,
      undefined,
    ) ??
      readJson<Record<string, TokenEntry> | undefined>(
        `${checkpointDir}/../tokens_by_language.json`,
        undefined,
      )
    : undefined;
  const languages = new Map<string, LanguageFacts>();
  for (const lang of testTexts.keys()) {
    const entries = Object.values(tokens ?? {}).filter((e) => sameLanguage(lang, e));
    languages.set(lang, {
      pretrain_tokens: tokens ? entries.reduce((a, e) => a + e.tokens, 0) : null,
      tier: tiers.get(lang) ?? entries.find((e) => e.tier)?.tier ?? null,
    });
  }
  return { contamination: cont, languages, warnings };
}
