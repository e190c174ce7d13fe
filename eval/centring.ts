/**
 * Language centring at test time (Libovický, Rosa and Fraser, 2020, "On the Language
 * Neutrality of Pre-trained Multilingual Representations"): a multilingual encoder's
 * sentence vectors carry a per-language offset, so a head fitted on English reads another
 * language's vectors off-centre. Subtracting each language's mean vector, estimated on
 * unlabelled text of that language, and adding the source language's puts every language
 * where the head was fitted. No label of the target language is read.
 * @module
 */

/**
 * Mean vector per language over rows of `vectors` (`langs.length` x `d`, row-major).
 *
 * @example
 * ```ts
 * import { languageMeans } from "./centring.ts";
 * const m = languageMeans(Float32Array.from([1, 2, 3, 4, 10, 10]), 2, ["en", "en", "fr"]);
 * if (m.get("en")!.join() !== "2,3" || m.get("fr")!.join() !== "10,10") throw new Error("means");
 * ```
 */
export function languageMeans(vectors: Float32Array, d: number, langs: string[]): Map<string, Float64Array> {
  const sums = new Map<string, Float64Array>(), counts = new Map<string, number>();
  langs.forEach((l, r) => {
    let s = sums.get(l);
    if (!s) sums.set(l, s = new Float64Array(d));
    for (let k = 0; k < d; k++) s[k] += vectors[r * d + k];
    counts.set(l, (counts.get(l) ?? 0) + 1);
  });
  for (const [l, s] of sums) for (let k = 0; k < d; k++) s[k] /= counts.get(l)!;
  return sums;
}

/**
 * Each row moved by its language's mean: `v − mean[lang] + target` (`target` absent: zero).
 * Rows of a language without a mean are left out: the result holds the kept rows in order,
 * and `rows` says which they were.
 *
 * @example
 * ```ts
 * import { centre } from "./centring.ts";
 * const means = new Map([["fr", Float64Array.from([10, 10])], ["en", Float64Array.from([1, 1])]]);
 * const c = centre(Float32Array.from([11, 9, 5, 5]), 2, ["fr", "xx"], means, means.get("en"));
 * if (c.vectors.join() !== "2,0" || c.rows.join() !== "0") throw new Error("centre");
 * ```
 */
export function centre(
  vectors: Float32Array,
  d: number,
  langs: string[],
  means: Map<string, Float64Array>,
  target?: Float64Array,
): { vectors: Float32Array; rows: number[] } {
  const rows = langs.flatMap((l, r) => means.has(l) ? [r] : []);
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    const m = means.get(langs[r])!;
    for (let k = 0; k < d; k++) out[i * d + k] = vectors[r * d + k] - m[k] + (target ? target[k] : 0);
  });
  return { vectors: out, rows };
}
