/**
 * A BPE tokenizer trainer that writes a Hugging Face `tokenizer.json`.
 *
 * BPE rather than Unigram: training is a deterministic greedy loop that runs in seconds on
 * the whole UDHR in TypeScript (Unigram's EM over a seed vocabulary is far costlier to write
 * and run), and `@huggingface/tokenizers` encodes BPE with the same Metaspace pre-tokenizer
 * XLM-R uses, so a user's own XLM-R `tokenizer.json` (Unigram) goes through the same code.
 * Written here because no npm package trains HF tokenizers in JS.
 * @module
 */
import { pcg } from "../kernels/rng.ts";

/** XLM-R's special tokens, in XLM-R's id order; `<mask>` is the last id, as in XLM-R. */
export const SPECIALS = { bos: "<s>", pad: "<pad>", eos: "</s>", unk: "<unk>", mask: "<mask>" } as const;

/** Trainer options. */
export interface BpeOptions {
  /** Total vocabulary including specials and the alphabet. */
  vocabSize: number;
  /** Language sampling exponent: q_i ∝ p_i^alpha (XLM-R uses 0.3). */
  alpha: number;
  /** Fraction of (smoothed) character mass the alphabet must cover; rarer characters become `<unk>`. */
  characterCoverage: number;
  /** Breaks ties between equally frequent pairs. */
  seed: number;
  /** Called now and then with progress in [0, 1]. */
  onProgress?: (fraction: number, note: string) => void;
}

/** Language weights w_i = q_i / p_i with p_i the language's share of characters. */
export function languageWeights(charsPerLang: Map<string, number>, alpha: number): Map<string, number> {
  const total = [...charsPerLang.values()].reduce((a, b) => a + b, 0);
  const p = new Map([...charsPerLang].map(([l, n]) => [l, n / total]));
  const z = [...p.values()].reduce((a, v) => a + v ** alpha, 0);
  return new Map([...p].map(([l, pi]) => [l, pi > 0 ? pi ** alpha / z / pi : 0]));
}

/** Metaspace pre-tokenization as the tokenizer.json declares it: words prefixed with ▁. */
export function preTokenize(text: string): string[] {
  return text.normalize("NFKC").split(/\s+/).filter((w) => w.length > 0).map((w) => `▁${w}`);
}

/**
 * Trains BPE on texts grouped by language and returns the `tokenizer.json` object.
 *
 * @example
 * ```ts
 * const tok = trainBpe(new Map([["eng", ["all human beings"]]]), { vocabSize: 300, alpha: 0.3, characterCoverage: 1, seed: 0 });
 * ```
 */
export function trainBpe(textsByLang: Map<string, string[]>, opts: BpeOptions): Record<string, unknown> {
  const chars = new Map<string, number>();
  for (const [l, texts] of textsByLang) chars.set(l, texts.reduce((a, t) => a + t.length, 0));
  const weights = languageWeights(chars, opts.alpha);
  const wordCounts = new Map<string, number>();
  for (const [l, texts] of textsByLang) {
    const w = weights.get(l)!;
    for (const t of texts) {
      for (const word of preTokenize(t)) wordCounts.set(word, (wordCounts.get(word) ?? 0) + w);
    }
  }
  const charMass = new Map<string, number>();
  for (const [word, c] of wordCounts) for (const ch of word) charMass.set(ch, (charMass.get(ch) ?? 0) + c);
  const byMass = [...charMass].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const totalMass = byMass.reduce((a, [, c]) => a + c, 0);
  const specials = [SPECIALS.bos, SPECIALS.pad, SPECIALS.eos, SPECIALS.unk];
  const vocab: string[] = [...specials];
  const ids = new Map<string, number>(vocab.map((t, i) => [t, i]));
  let covered = 0;
  for (const [ch, c] of byMass) {
    if (covered / totalMass >= opts.characterCoverage && ch !== "▁") continue;
    if (vocab.length >= opts.vocabSize - 1) break;
    ids.set(ch, vocab.length);
    vocab.push(ch);
    covered += c;
  }
  const words: Int32Array[] = [];
  const counts: number[] = [];
  for (const [word, c] of wordCounts) {
    words.push(Int32Array.from([...word], (ch) => ids.get(ch) ?? -1));
    counts.push(c);
  }
  const K = 1 << 20;
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: number) => {
    const s = words[wi];
    for (let i = 0; i + 1 < s.length; i++) {
      if (s[i] < 0 || s[i + 1] < 0) continue;
      const key = s[i] * K + s[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * counts[wi]);
      if (sign > 0) {
        let set = where.get(key);
        if (!set) where.set(key, set = new Set());
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);
  const heap = new PairHeap(opts.seed);
  for (const [key, c] of pairCount) heap.push(c, key);
  const merges: string[] = [];
  const target = opts.vocabSize - 1; // the last id is <mask>
  const start = vocab.length;
  while (vocab.length < target && heap.size > 0) {
    const [c, key] = heap.pop();
    const cur = pairCount.get(key) ?? 0;
    if (Math.abs(cur - c) > 1e-9 * Math.max(1, c)) {
      if (cur > 1e-9) heap.push(cur, key);
      continue;
    }
    if (cur <= 1e-9) break;
    const a = Math.floor(key / K), b = key % K;
    const merged = vocab[a] + vocab[b];
    let id = ids.get(merged);
    if (id === undefined) {
      id = vocab.length;
      ids.set(merged, id);
      vocab.push(merged);
    }
    merges.push(`${vocab[a]} ${vocab[b]}`);
    const touched = new Set<number>();
    for (const wi of where.get(key) ?? []) {
      const s = words[wi];
      let has = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) has = true;
      if (!has) continue;
      addPairs(wi, -1);
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(s[i]);
      }
      words[wi] = Int32Array.from(next);
      for (let i = 0; i + 1 < next.length; i++) touched.add(next[i] * K + next[i + 1]);
      addPairs(wi, 1);
    }
    pairCount.delete(key);
    for (const t of touched) {
      const tc = pairCount.get(t);
      if (tc && tc > 1e-9) heap.push(tc, t);
    }
    if (merges.length % 500 === 0) {
      opts.onProgress?.(
        (vocab.length - start) / (target - start),
        `${vocab.length}/${opts.vocabSize} tokens`,
      );
    }
  }
  vocab.push(SPECIALS.mask);
  return tokenizerJson(vocab, merges);
}

function tokenizerJson(vocab: string[], merges: string[]): Record<string, unknown> {
  const special = (content: string, id: number) => ({
    id,
    content,
    single_word: false,
    lstrip: content === SPECIALS.mask,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const vocabObj: Record<string, number> = {};
  vocab.forEach((t, i) => {
    if (!(t in vocabObj)) vocabObj[t] = i;
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      special(SPECIALS.bos, 0),
      special(SPECIALS.pad, 1),
      special(SPECIALS.eos, 2),
      special(SPECIALS.unk, 3),
      special(SPECIALS.mask, vocab.length - 1),
    ],
    normalizer: { type: "NFKC" },
    pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
    post_processor: {
      type: "RobertaProcessing",
      sep: [SPECIALS.eos, 2],
      cls: [SPECIALS.bos, 0],
      trim_offsets: true,
      add_prefix_space: true,
    },
    decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: SPECIALS.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObj,
      merges,
    },
  };
}

/** Max-heap of (count, pair key); ties broken by a seeded hash of the key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  constructor(private seed: number) {}
  get size(): number {
    return this.counts.length;
  }
  private tie(key: number): number {
    return pcg((key % 4294967296) ^ this.seed);
  }
  private above(i: number, j: number): boolean {
    const d = this.counts[i] - this.counts[j];
    return d > 0 || (d === 0 && this.tie(this.keys[i]) < this.tie(this.keys[j]));
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < this.counts.length && this.above(l, m)) m = l;
        if (r < this.counts.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}
