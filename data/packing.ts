/**
 * Sequence packing for pretraining: sentences of one language run together into sequences
 * of up to `T` tokens (`<s> a </s> b </s> ...`), so no step computes on padding; TLM pairs
 * (`<s> en </s></s> x </s>`) are packed the same way. Each sequence remembers how many of
 * its tokens belong to which language, so pretraining can report what it actually saw.
 * @module
 */

/** A packed sequence and its tokens per language (specials not counted). */
export interface Packed {
  ids: Int32Array;
  langs: Map<number, number>;
}

/** Special ids packing needs. */
export interface PackIds {
  bos: number;
  eos: number;
}

/**
 * Packs the sentences of one language (a "document") into sequences of at most `T` tokens.
 * A sentence longer than `T - 2` is cut into pieces.
 *
 * @example
 * ```ts
 * import { packDocument } from "./packing.ts";
 * const seqs = packDocument([[5, 6], [7, 8, 9], [10]], 0, { bos: 0, eos: 2 }, 8);
 * // [0,5,6,2,7,8,9,2] and [0,10,2]
 * if (seqs.length !== 2 || seqs[0].ids.length !== 8) throw new Error("unexpected packing");
 * ```
 */
export function packDocument(sentences: number[][], lang: number, ids: PackIds, T: number): Packed[] {
  const out: Packed[] = [];
  let cur: number[] = [ids.bos];
  let count = 0;
  const flush = () => {
    if (count > 0) out.push({ ids: Int32Array.from(cur), langs: new Map([[lang, count]]) });
    cur = [ids.bos];
    count = 0;
  };
  for (const s of sentences) {
    for (let i = 0; i < s.length; i += T - 2) {
      const piece = s.slice(i, i + T - 2);
      if (cur.length + piece.length + 1 > T) flush();
      cur.push(...piece, ids.eos);
      count += piece.length;
    }
  }
  flush();
  return out;
}

/**
 * Packs translation pairs for TLM: each pair is `</s>`-joined as RoBERTa joins a sentence
 * pair, longer side trimmed first so a pair fits in `T - 1`; pairs then run together.
 *
 * @example
 * ```ts
 * import { packPairs } from "./packing.ts";
 * const seqs = packPairs([{ a: [5, 6], la: 0, b: [7], lb: 1 }], { bos: 0, eos: 2 }, 16);
 * // [0, 5, 6, 2, 2, 7, 2]
 * if (seqs[0].ids.length !== 7 || seqs[0].langs.get(1) !== 1) throw new Error("unexpected pair");
 * ```
 */
export function packPairs(
  pairs: { a: number[]; la: number; b: number[]; lb: number }[],
  ids: PackIds,
  T: number,
): Packed[] {
  const out: Packed[] = [];
  let cur: number[] = [ids.bos];
  let langs = new Map<number, number>();
  const flush = () => {
    if (cur.length > 1) out.push({ ids: Int32Array.from(cur), langs });
    cur = [ids.bos];
    langs = new Map();
  };
  for (const pair of pairs) {
    const a = pair.a.slice(), b = pair.b.slice();
    while (a.length + b.length + 3 > T - 1) (a.length >= b.length ? a : b).pop();
    if (cur.length + a.length + b.length + 3 > T) flush();
    cur.push(...a, ids.eos, ids.eos, ...b, ids.eos);
    langs.set(pair.la, (langs.get(pair.la) ?? 0) + a.length);
    langs.set(pair.lb, (langs.get(pair.lb) ?? 0) + b.length);
  }
  flush();
  return out;
}
