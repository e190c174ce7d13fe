/**
 * The bag-of-subwords baseline: tf-idf over the pieces the checkpoint's tokenizer makes (the
 * very ids the encoder reads, truncation included), fed to multinomial logistic regression.
 * Its L2 penalty is chosen on the source language's dev split, as any method's settings are.
 * It is the line a fine-tuned encoder must clear: everything it knows comes from the task's
 * labels and the tokenizer, nothing from pretraining.
 * @module
 */
import type { Shard } from "../data/shards.ts";
import {
  chooseL2OnDev,
  l2Normalise,
  predictSoftmax,
  type SoftmaxModel,
  type SoftmaxOptions,
  type SparseVector,
} from "./sparse_softmax.ts";

/** Piece counts of one shard row, without the ids in `skip` (special tokens). */
export function pieceCounts(s: Shard, row: number, skip: ReadonlySet<number>): Map<number, number> {
  const L = s.index.max_length;
  const counts = new Map<number, number>();
  for (const id of s.ids.subarray(row * L, row * L + s.lengths[row])) {
    if (!skip.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/**
 * Smoothed inverse document frequency of every id seen in the given rows, as scikit-learn's
 * default: `ln((1 + n) / (1 + df)) + 1`; ids never seen get the largest value.
 *
 * @example
 * ```ts
 * import { inverseDocumentFrequency } from "./bag_of_subwords.ts";
 * const idf = inverseDocumentFrequency([new Map([[5, 2]]), new Map([[5, 1], [6, 1]])], 8);
 * if (!(idf[6] > idf[5] && idf[7] > idf[6])) throw new Error("rarer ids must weigh more");
 * ```
 */
export function inverseDocumentFrequency(docs: Map<number, number>[], dim: number): Float64Array {
  const df = new Float64Array(dim);
  for (const d of docs) for (const id of d.keys()) df[id]++;
  return df.map((f) => Math.log((1 + docs.length) / (1 + f)) + 1);
}

/** Sublinear tf (1 + ln count) x idf, L2-normalised. */
export function tfidf(counts: Map<number, number>, idf: Float64Array): SparseVector {
  const index = Int32Array.from(counts.keys());
  const value = Float64Array.from(index, (id) => (1 + Math.log(counts.get(id)!)) * idf[id]);
  return l2Normalise({ index, value });
}

/** The result of fitting: the model, the idf it scores with, and dev accuracy per L2 value tried. */
export interface BagOfSubwords {
  model: SoftmaxModel;
  idf: Float64Array;
  skip: ReadonlySet<number>;
  l2: number;
  devAccuracy: { l2: number; accuracy: number }[];
}

/**
 * Fits on `train`'s rows, choosing L2 from `grid` by accuracy on `dev`'s rows (ties go to the
 * stronger penalty), then keeps the model trained with the chosen value.
 */
export function fitBagOfSubwords(
  train: { shard: Shard; rows: number[] },
  dev: { shard: Shard; rows: number[] },
  classes: number,
  dim: number,
  skip: ReadonlySet<number>,
  grid: number[],
  o: Omit<SoftmaxOptions, "l2">,
): BagOfSubwords {
  const trainCounts = train.rows.map((r) => pieceCounts(train.shard, r, skip));
  const idf = inverseDocumentFrequency(trainCounts, dim);
  const X = trainCounts.map((c) => tfidf(c, idf));
  const y = train.rows.map((r) => train.shard.labels[r]);
  const devX = dev.rows.map((r) => tfidf(pieceCounts(dev.shard, r, skip), idf));
  const devY = dev.rows.map((r) => dev.shard.labels[r]);
  const best = chooseL2OnDev(
    { X, labels: y },
    { X: devX, labels: devY },
    classes,
    dim,
    [...grid].sort((a, b) => b - a),
    o,
  );
  return { model: best.model, idf, skip, l2: best.l2, devAccuracy: best.tried };
}

/** Predicted class of each of a shard's rows. */
export function predictBagOfSubwords(m: BagOfSubwords, s: Shard, rows: number[]): Int32Array {
  return predictSoftmax(m.model, rows.map((r) => tfidf(pieceCounts(s, r, m.skip), m.idf)));
}
