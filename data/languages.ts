/**
 * Matching a task's language codes (FLORES/SIB-200 style `eng_Latn`, `zho_Hans`) with the
 * languages a pretraining corpus counts (UDHR codes such as `eng`, `cmn_hans`, `deu_1996`,
 * with ISO 639-3 and a detected script), so each task language can be given the pretraining
 * tokens that were really in its language and script.
 * @module
 */

/** ISO 15924 code -> the script name `data/scripts.ts` detects. */
const SCRIPT_NAMES: Record<string, string> = {
  Latn: "Latin",
  Cyrl: "Cyrillic",
  Arab: "Arabic",
  Hans: "Han",
  Hant: "Han",
  Deva: "Devanagari",
  Grek: "Greek",
  Hebr: "Hebrew",
  Ethi: "Ethiopic",
  Thai: "Thai",
  Hang: "Hangul",
  Beng: "Bengali",
  Taml: "Tamil",
  Telu: "Telugu",
  Knda: "Kannada",
  Mlym: "Malayalam",
  Gujr: "Gujarati",
  Guru: "Gurmukhi",
  Orya: "Oriya",
  Sinh: "Sinhala",
  Mymr: "Myanmar",
  Khmr: "Khmer",
  Laoo: "Lao",
  Tibt: "Tibetan",
  Geor: "Georgian",
  Armn: "Armenian",
};

/** Macrolanguage codes a task uses for what a corpus files under an individual language. */
const ALIASES: Record<string, string[]> = { zho: ["zho", "cmn"], ara: ["ara", "arb"], swa: ["swa", "swh"] };

/** A corpus language as pretraining records it. */
export interface CorpusLanguageRef {
  lang: string;
  iso6393: string;
  script: string;
}

/**
 * Whether corpus language `c` is task language `task` (`iso_Scrp`): the same code, or the
 * same ISO 639-3 language (or its macrolanguage) in the same script.
 *
 * @example
 * ```ts
 * import { sameLanguage } from "./languages.ts";
 * if (!sameLanguage("zho_Hans", { lang: "cmn_hans", iso6393: "cmn", script: "Han" })) throw new Error("cmn is zho");
 * if (sameLanguage("zho_Hans", { lang: "cmn_hant", iso6393: "cmn", script: "Han" })) throw new Error("Hant is not Hans");
 * if (sameLanguage("vie_Latn", { lang: "vie_han", iso6393: "vie", script: "Han" })) throw new Error("wrong script");
 * ```
 */
export function sameLanguage(task: string, c: CorpusLanguageRef): boolean {
  if (c.lang === task) return true;
  const [iso, script] = task.split("_");
  if (!(ALIASES[iso] ?? [iso]).includes(c.iso6393)) return false;
  if (!script) return true;
  if (SCRIPT_NAMES[script] !== c.script) return false;
  const traditional = /hant/i.test(c.lang);
  return script === "Hant" ? traditional : !traditional;
}

/**
 * The corpus languages that are one of the task languages `tasks` (by {@link sameLanguage}),
 * and the task languages no corpus language matched.
 *
 * @example
 * ```ts
 * import { corpusLanguagesOf } from "./languages.ts";
 * const corpus = {
 *   eng: { iso6393: "eng", script: "Latin" },
 *   deu_1996: { iso6393: "deu", script: "Latin" },
 *   eng_Latn: { iso6393: "eng", script: "Latin" },
 * };
 * const { matched, unmatched } = corpusLanguagesOf(["eng_Latn", "yor_Latn"], corpus);
 * if (matched.join() !== "eng,eng_Latn" || unmatched.join() !== "yor_Latn") throw new Error("wrong match");
 * ```
 */
export function corpusLanguagesOf(
  tasks: string[],
  corpus: Record<string, { iso6393: string; script: string }>,
): { matched: string[]; unmatched: string[] } {
  const hit = new Set<string>();
  const matched = Object.entries(corpus).filter(([lang, c]) =>
    tasks.some((t) => sameLanguage(t, { lang, ...c }) && hit.add(t))
  ).map(([lang]) => lang);
  return { matched, unmatched: tasks.filter((t) => !hit.has(t)) };
}
