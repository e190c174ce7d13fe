/**
 * A character n-gram baseline: multinomial logistic regression on hashed character 1-4-grams,
 * trained with Adam on the source language. The SIB-200 paper's own non-neural baseline is an
 * n-gram MLP; this is the simplest thing of that kind, to say what a model without
 * pretraining gets from the same labels.
 * @module
 */
import { mulberry32, shuffled } from "./../kernels/random.ts";

/** Baseline settings. */
export interface NgramOptions {
  nMin: number;
  nMax: number;
  /** Hash buckets (features). */
  buckets: number;
  epochs: number;
  lr: number;
  l2: number;
  seed: number;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Hashed character n-gram counts of a text (lower-cased, words padded with spaces), L2-normalised.
 *
 * @example
 * ```ts
 * import { features } from "./char_ngram.ts";
 * const f = features("ab", 1, 2, 1024);
 * if (f.index.length === 0 || Math.abs(f.value.reduce((a, v) => a + v * v, 0) - 1) > 1e-9) throw new Error("bad features");
 * ```
 */
export function features(
  text: string,
  nMin: number,
  nMax: number,
  buckets: number,
): { index: Int32Array; value: Float64Array } {
  const s = ` ${text.toLowerCase().replace(/\s+/g, " ").trim()} `;
  const counts = new Map<number, number>();
  const chars = [...s];
  for (let n = nMin; n <= nMax; n++) {
    for (let i = 0; i + n <= chars.length; i++) {
      const b = fnv1a(`${n}|${chars.slice(i, i + n).join("")}`) % buckets;
      counts.set(b, (counts.get(b) ?? 0) + 1);
    }
  }
  const index = Int32Array.from(counts.keys());
  const value = Float64Array.from(counts.values());
  const norm = Math.sqrt(value.reduce((a, v) => a + v * v, 0)) || 1;
  for (let i = 0; i < value.length; i++) value[i] /= norm;
  return { index, value };
}

/** A trained model: weights `[classes, buckets]` and biases. */
export interface NgramModel {
  w: Float64Array;
  b: Float64Array;
  classes: number;
  o: NgramOptions;
}

/** Trains on (text, label) pairs with mini-batches of one and Adam (sparse updates, lazy moments). */
export function trainNgram(texts: string[], labels: number[], classes: number, o: NgramOptions): NgramModel {
  const X = texts.map((t) => features(t, o.nMin, o.nMax, o.buckets));
  const w = new Float64Array(classes * o.buckets), b = new Float64Array(classes);
  const mw = new Float64Array(w.length), vw = new Float64Array(w.length);
  const mb = new Float64Array(classes), vb = new Float64Array(classes);
  const rand = mulberry32(o.seed);
  // Small random init so seeds differ even before the order does.
  for (let i = 0; i < w.length; i += 97) w[i] = (rand() - 0.5) * 1e-3;
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  let t = 0;
  const logits = new Float64Array(classes);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (const i of shuffled(X.map((_, k) => k), o.seed * 7919 + epoch)) {
      t++;
      const x = X[i];
      let max = -Infinity;
      for (let c = 0; c < classes; c++) {
        let z = b[c];
        for (let k = 0; k < x.index.length; k++) z += w[c * o.buckets + x.index[k]] * x.value[k];
        logits[c] = z;
        max = Math.max(max, z);
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += logits[c] = Math.exp(logits[c] - max);
      const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
      for (let c = 0; c < classes; c++) {
        const g = logits[c] / sum - (c === labels[i] ? 1 : 0);
        mb[c] = b1 * mb[c] + (1 - b1) * g;
        vb[c] = b2 * vb[c] + (1 - b2) * g * g;
        b[c] -= o.lr * (mb[c] / bc1) / (Math.sqrt(vb[c] / bc2) + eps);
        for (let k = 0; k < x.index.length; k++) {
          const j = c * o.buckets + x.index[k];
          const gw = g * x.value[k] + o.l2 * w[j];
          mw[j] = b1 * mw[j] + (1 - b1) * gw;
          vw[j] = b2 * vw[j] + (1 - b2) * gw * gw;
          w[j] -= o.lr * (mw[j] / bc1) / (Math.sqrt(vw[j] / bc2) + eps);
        }
      }
    }
  }
  return { w, b, classes, o };
}

/** Predicted label of each text. */
export function predictNgram(m: NgramModel, texts: string[]): Int32Array {
  return Int32Array.from(texts, (t) => {
    const x = features(t, m.o.nMin, m.o.nMax, m.o.buckets);
    let best = 0, bestZ = -Infinity;
    for (let c = 0; c < m.classes; c++) {
      let z = m.b[c];
      for (let k = 0; k < x.index.length; k++) z += m.w[c * m.o.buckets + x.index[k]] * x.value[k];
      if (z > bestZ) [best, bestZ] = [c, z];
    }
    return best;
  });
}
