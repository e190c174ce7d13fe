/**
 * A character n-gram baseline: multinomial logistic regression on hashed character 1-4-grams,
 * trained with Adam on the source language ({@link trainSoftmax}). The SIB-200 paper's own non-neural baseline is an
 * n-gram MLP; this is the simplest thing of that kind, to say what a model without
 * pretraining gets from the same labels.
 * @module
 */
import { l2Normalise, predictSoftmax, type SoftmaxModel, trainSoftmax } from "./sparse_softmax.ts";

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
  return l2Normalise({ index: Int32Array.from(counts.keys()), value: Float64Array.from(counts.values()) });
}

/** A trained model: the linear model and the feature settings it was trained with. */
export interface NgramModel {
  model: SoftmaxModel;
  o: NgramOptions;
}

/** Trains on (text, label) pairs (see {@link trainSoftmax}). */
export function trainNgram(texts: string[], labels: number[], classes: number, o: NgramOptions): NgramModel {
  const X = texts.map((t) => features(t, o.nMin, o.nMax, o.buckets));
  return { model: trainSoftmax(X, labels, classes, o.buckets, o), o };
}

/** Predicted label of each text. */
export function predictNgram(m: NgramModel, texts: string[]): Int32Array {
  return predictSoftmax(m.model, texts.map((t) => features(t, m.o.nMin, m.o.nMax, m.o.buckets)));
}
