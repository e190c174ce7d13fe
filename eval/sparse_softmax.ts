/**
 * Multinomial logistic regression on sparse feature vectors, trained with Adam on
 * mini-batches of one (sparse updates, lazy moments): the linear model under the project's
 * non-neural baselines (character n-grams, bags of subwords).
 * @module
 */
import { mulberry32, shuffled } from "../kernels/random.ts";
import { scores } from "./stats.ts";

/** A sparse vector: feature indices and their values. */
export interface SparseVector {
  index: Int32Array;
  value: Float64Array;
}

/** Training settings. */
export interface SoftmaxOptions {
  epochs: number;
  lr: number;
  /** L2 penalty on the weights (not the biases), applied to the features a step touches. */
  l2: number;
  seed: number;
}

/** A trained model: weights `[classes, dim]` and biases. */
export interface SoftmaxModel {
  w: Float64Array;
  b: Float64Array;
  classes: number;
  dim: number;
}

/** Scales a sparse vector to unit L2 norm in place (a zero vector stays zero) and returns it. */
export function l2Normalise(x: SparseVector): SparseVector {
  const norm = Math.sqrt(x.value.reduce((a, v) => a + v * v, 0)) || 1;
  for (let i = 0; i < x.value.length; i++) x.value[i] /= norm;
  return x;
}

/**
 * Trains on (vector, label) pairs.
 *
 * @example
 * ```ts
 * import { predictSoftmax, trainSoftmax } from "./sparse_softmax.ts";
 * const x = (i: number) => ({ index: Int32Array.of(i), value: Float64Array.of(1) });
 * const m = trainSoftmax([x(0), x(1)], [0, 1], 2, 2, { epochs: 50, lr: 0.1, l2: 0, seed: 1 });
 * if (predictSoftmax(m, [x(0), x(1)]).join() !== "0,1") throw new Error("did not fit");
 * ```
 */
export function trainSoftmax(
  X: SparseVector[],
  labels: ArrayLike<number>,
  classes: number,
  dim: number,
  o: SoftmaxOptions,
): SoftmaxModel {
  const w = new Float64Array(classes * dim), b = new Float64Array(classes);
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
        for (let k = 0; k < x.index.length; k++) z += w[c * dim + x.index[k]] * x.value[k];
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
          const j = c * dim + x.index[k];
          const gw = g * x.value[k] + o.l2 * w[j];
          mw[j] = b1 * mw[j] + (1 - b1) * gw;
          vw[j] = b2 * vw[j] + (1 - b2) * gw * gw;
          w[j] -= o.lr * (mw[j] / bc1) / (Math.sqrt(vw[j] / bc2) + eps);
        }
      }
    }
  }
  return { w, b, classes, dim };
}

/** Predicted class of each vector (the first class wins ties). */
export function predictSoftmax(m: SoftmaxModel, X: SparseVector[]): Int32Array {
  return Int32Array.from(X, (x) => {
    let best = 0, bestZ = -Infinity;
    for (let c = 0; c < m.classes; c++) {
      let z = m.b[c];
      for (let k = 0; k < x.index.length; k++) z += m.w[c * m.dim + x.index[k]] * x.value[k];
      if (z > bestZ) [best, bestZ] = [c, z];
    }
    return best;
  });
}

/** A model fitted once per L2 value of a grid, the one with the best dev accuracy kept. */
export interface DevChoice {
  model: SoftmaxModel;
  l2: number;
  /** Its dev accuracy. */
  accuracy: number;
  /** Dev accuracy of every value tried, in grid order. */
  tried: { l2: number; accuracy: number }[];
}

/**
 * Trains on `train` once per L2 value in `grid`, in grid order, and keeps the model with the
 * best accuracy on `dev` (the first in grid order among ties: order the grid to say which way
 * ties go).
 *
 * @example
 * ```ts
 * import { chooseL2OnDev } from "./sparse_softmax.ts";
 * const x = (i: number) => ({ index: Int32Array.of(i), value: Float64Array.of(1) });
 * const data = { X: [x(0), x(1)], labels: [0, 1] };
 * const c = chooseL2OnDev(data, data, 2, 2, [1, 0], { epochs: 50, lr: 0.1, seed: 1 });
 * if (c.accuracy !== 1 || c.tried.length !== 2) throw new Error("chooseL2OnDev");
 * ```
 */
export function chooseL2OnDev(
  train: { X: SparseVector[]; labels: ArrayLike<number> },
  dev: { X: SparseVector[]; labels: ArrayLike<number> },
  classes: number,
  dim: number,
  grid: number[],
  o: Omit<SoftmaxOptions, "l2">,
): DevChoice {
  let best: DevChoice | undefined;
  const tried: { l2: number; accuracy: number }[] = [];
  for (const l2 of grid) {
    const model = trainSoftmax(train.X, train.labels, classes, dim, { ...o, l2 });
    const { accuracy } = scores(dev.labels, predictSoftmax(model, dev.X));
    tried.push({ l2, accuracy });
    if (!best || accuracy > best.accuracy) best = { model, l2, accuracy, tried };
  }
  if (!best) throw new Error("chooseL2OnDev: empty L2 grid");
  return best;
}
