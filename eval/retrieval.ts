/**
 * Sentence retrieval English <-> X: for every item (a sentence and its translations, matched
 * by the dataset's item id), is the nearest X vector to the English one (cosine) its own
 * translation, and the other way round? Top-1 accuracy per direction and their mean. With
 * random vectors it is 1 / (number of items).
 * @module
 */

/** Retrieval accuracy between one language and English. */
export interface RetrievalScore {
  /** Mean of the two directions. */
  top1: number;
  en_to_x: number;
  x_to_en: number;
  items: number;
}

function normalised(v: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += v[i * d + k] ** 2;
    const inv = 1 / Math.sqrt(s || 1);
    for (let k = 0; k < d; k++) out[i * d + k] = v[i * d + k] * inv;
  }
  return out;
}

/**
 * Top-1 retrieval between `en` and `x`, row-aligned: row i of each is item i (`n` x `d`).
 *
 * @example
 * ```ts
 * import { retrieval } from "./retrieval.ts";
 * const en = Float32Array.from([1, 0, 0, 1]), x = Float32Array.from([0.9, 0.1, 0.2, 0.8]);
 * const r = retrieval(en, x, 2, 2);
 * if (r.top1 !== 1) throw new Error(`expected perfect retrieval, got ${r.top1}`);
 * ```
 */
export function retrieval(en: Float32Array, x: Float32Array, n: number, d: number): RetrievalScore {
  const a = normalised(en, n, d), b = normalised(x, n, d);
  const sim = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a[i * d + k] * b[j * d + k];
      sim[i * n + j] = s;
    }
  }
  let ex = 0, xe = 0;
  for (let i = 0; i < n; i++) {
    let bestRow = 0, bestCol = 0;
    for (let j = 1; j < n; j++) {
      if (sim[i * n + j] > sim[i * n + bestRow]) bestRow = j;
      if (sim[j * n + i] > sim[bestCol * n + i]) bestCol = j;
    }
    if (bestRow === i) ex++;
    if (bestCol === i) xe++;
  }
  return { top1: (ex + xe) / (2 * n), en_to_x: ex / n, x_to_en: xe / n, items: n };
}

/**
 * Retrieval of every language against `pivot`, from row-wise vectors with item ids and
 * languages: only items present in both languages count.
 */
export function retrievalByLanguage(
  pooled: Float32Array,
  d: number,
  items: Int32Array,
  langs: string[],
  pivot: string,
): Map<string, RetrievalScore> {
  const rowOf = new Map<string, Map<number, number>>();
  langs.forEach((l, r) => {
    if (items[r] < 0) return;
    let m = rowOf.get(l);
    if (!m) rowOf.set(l, m = new Map());
    m.set(items[r], r);
  });
  const base = rowOf.get(pivot);
  const out = new Map<string, RetrievalScore>();
  if (!base) return out;
  for (const [l, m] of rowOf) {
    if (l === pivot) continue;
    const shared = [...m.keys()].filter((i) => base.has(i)).sort((a, b) => a - b);
    if (shared.length < 2) continue;
    const take = (rows: number[]) => {
      const v = new Float32Array(rows.length * d);
      rows.forEach((r, i) => v.set(pooled.subarray(r * d, (r + 1) * d), i * d));
      return v;
    };
    out.set(
      l,
      retrieval(take(shared.map((i) => base.get(i)!)), take(shared.map((i) => m.get(i)!)), shared.length, d),
    );
  }
  return out;
}
