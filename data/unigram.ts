/**
 * SentencePiece's Unigram Viterbi, as `spm_encode` runs it (its `EncodeOptimized`) over a
 * whole sentence: each end position keeps a float32 best score, a candidate is formed in
 * float64 and must beat it strictly (so the first of equal candidates stays), an unmatched
 * character costs the lowest piece score minus 10, and with byte fallback an unknown
 * character becomes its UTF-8 byte pieces. `@huggingface/tokenizers` 0.2.0 scores per word
 * in float64 with another tie rule: two SIB-200 test sentences in 4,896 came out with
 * equal-scoring pieces in another order; with this, none.
 * @module
 */

interface TrieNode {
  next: Map<string, TrieNode>;
  id: number;
}

/** The encoder's view of a Unigram vocabulary. */
export interface UnigramSpec {
  vocab: [string, number][];
  unkId: number;
  byteFallback: boolean;
  /** Ids never matched in text (special tokens). */
  skip: Set<number>;
}

/**
 * A function from a pre-tokenised word (e.g. `▁Hello`) to its pieces; an unknown
 * character comes back as itself (the caller maps it to the unknown id).
 *
 * @example
 * ```ts
 * import { unigramEncoder } from "./unigram.ts";
 * const enc = unigramEncoder({
 *   vocab: [["<unk>", 0], ["▁a", -1], ["b", -2], ["▁ab", -2.5]], unkId: 0, byteFallback: false, skip: new Set([0]),
 * });
 * if (enc("▁ab").join(" ") !== "▁ab" || enc("▁abz").join(" ") !== "▁ab z") throw new Error("viterbi");
 * ```
 */
export function unigramEncoder(spec: UnigramSpec): (word: string) => string[] {
  const root: TrieNode = { next: new Map(), id: -1 };
  let min = Infinity;
  spec.vocab.forEach(([piece, score], id) => {
    if (spec.skip.has(id) || (spec.byteFallback && /^<0x[0-9A-F]{2}>$/.test(piece))) return;
    let node = root;
    for (const ch of piece) {
      let n = node.next.get(ch);
      if (!n) node.next.set(ch, n = { next: new Map(), id: -1 });
      node = n;
    }
    node.id = id;
    min = Math.min(min, score);
  });
  const scores = Float32Array.from(spec.vocab, ([, s]) => s);
  const unkScore = Math.fround(min - 10);
  return (word: string) => {
    const chars = [...word];
    const n = chars.length;
    const best = new Float32Array(n + 1);
    const from = new Int32Array(n + 1).fill(-1);
    const ids = new Int32Array(n + 1);
    for (let s = 0; s < n; s++) {
      if (s > 0 && from[s] === -1) continue;
      const here = best[s];
      let single = false;
      let node: TrieNode | undefined = root;
      for (let e = s; e < n && node; e++) {
        node = node.next.get(chars[e]);
        if (!node || node.id < 0) continue;
        if (e === s) single = true;
        const cand = scores[node.id] + here;
        if (from[e + 1] === -1 || cand > best[e + 1]) {
          best[e + 1] = cand;
          from[e + 1] = s;
          ids[e + 1] = node.id;
        }
      }
      if (!single) {
        const cand = unkScore + here;
        if (from[s + 1] === -1 || cand > best[s + 1]) {
          best[s + 1] = cand;
          from[s + 1] = s;
          ids[s + 1] = spec.unkId;
        }
      }
    }
    const out: string[] = [];
    for (let e = n; e > 0; e = from[e]) {
      const text = chars.slice(from[e], e).join("");
      if (ids[e] !== spec.unkId) out.push(spec.vocab[ids[e]][0]);
      else if (spec.byteFallback) {
        const bytes = [...new TextEncoder().encode(text)].reverse();
        out.push(...bytes.map((b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`));
      } else out.push(text);
    }
    return out.reverse();
  };
}
