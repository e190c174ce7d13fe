/**
 * The dominant Unicode script of a text (a covariate for the analysis).
 * @module
 */
const SCRIPTS = [
  "Latin",
  "Cyrillic",
  "Arabic",
  "Han",
  "Devanagari",
  "Greek",
  "Hebrew",
  "Ethiopic",
  "Thai",
  "Hangul",
  "Hiragana",
  "Katakana",
  "Bengali",
  "Tamil",
  "Telugu",
  "Kannada",
  "Malayalam",
  "Gujarati",
  "Gurmukhi",
  "Oriya",
  "Sinhala",
  "Myanmar",
  "Khmer",
  "Lao",
  "Tibetan",
  "Georgian",
  "Armenian",
  "Thaana",
  "Cherokee",
  "Canadian_Aboriginal",
  "Tifinagh",
  "Vai",
  "Yi",
  "Mongolian",
  "Syriac",
  "Nko",
  "Bamum",
  "Javanese",
];
const RES = SCRIPTS.map((s) => [s, new RegExp(`\\p{Script=${s}}`, "u")] as const);

/**
 * Most frequent script among the letters of `text` (Hiragana/Katakana count as Japanese).
 *
 * @example
 * ```ts
 * scriptOf("Всеобщая декларация"); // "Cyrillic"
 * ```
 */
export function scriptOf(text: string): string {
  const counts = new Map<string, number>();
  for (const ch of text) {
    if (!/\p{L}/u.test(ch)) continue;
    const hit = RES.find(([, re]) => re.test(ch));
    const name = hit ? (hit[0] === "Hiragana" || hit[0] === "Katakana" ? "Japanese" : hit[0]) : "Other";
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  let best = "Other", n = 0;
  for (const [s, c] of counts) if (c > n) [best, n] = [s, c];
  return best;
}
