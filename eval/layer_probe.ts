/**
 * Linear probes of a frozen encoder: multinomial logistic regression on each layer's
 * mean-pooled hidden states, standardised on the training rows, with its L2 penalty chosen on
 * dev. How much of the task a layer's representation holds, without fine-tuning's noise:
 * a measure of a checkpoint that needs no fine-tune.
 * @module
 */
import { chooseL2OnDev, predictSoftmax, type SparseVector } from "./sparse_softmax.ts";
import { scores } from "./stats.ts";

/** One layer's sentence vectors for the train, dev and test rows, and their labels. */
export interface ProbeData {
  train: Float32Array[];
  dev: Float32Array[];
  test: Float32Array[];
  labels: { train: Int32Array; dev: Int32Array; test: Int32Array };
}

/** One layer's probe: the L2 chosen on dev, and its accuracies. */
export interface ProbeResult {
  l2: number;
  dev_accuracy: number;
  /** Null when there are no test rows (a task whose source language is not tested). */
  test_accuracy: number | null;
  l2_dev_accuracy: { l2: number; accuracy: number }[];
}

/**
 * Vectors standardised by the mean and standard deviation of `fit` (a constant feature
 * becomes 0), as dense {@link SparseVector}s.
 *
 * @example
 * ```ts
 * import { standardise } from "./layer_probe.ts";
 * const [x] = standardise([Float32Array.of(1, 5), Float32Array.of(3, 5)], [Float32Array.of(2, 5)]);
 * if (x[0].value[0] !== 0 || x[0].value[1] !== 0) throw new Error("standardise");
 * ```
 */
export function standardise(fit: Float32Array[], ...sets: Float32Array[][]): SparseVector[][] {
  const dim = fit[0].length;
  const mean = new Float64Array(dim), sd = new Float64Array(dim);
  for (const x of fit) for (let j = 0; j < dim; j++) mean[j] += x[j] / fit.length;
  for (const x of fit) for (let j = 0; j < dim; j++) sd[j] += (x[j] - mean[j]) ** 2 / fit.length;
  for (let j = 0; j < dim; j++) sd[j] = Math.sqrt(sd[j]) || 1;
  const index = Int32Array.from({ length: dim }, (_, j) => j);
  return sets.map((set) =>
    set.map((x) => ({ index, value: Float64Array.from(x, (v, j) => (v - mean[j]) / sd[j]) }))
  );
}

/**
 * Fits one layer's probe for each L2 in `grid`, keeps the best on dev (the first in `grid`
 * order among ties), and scores it on test.
 *
 * @example
 * ```ts
 * import { fitProbe } from "./layer_probe.ts";
 * const v = (a: number) => Float32Array.of(a, -a);
 * const data = {
 *   train: [v(1), v(-1), v(2), v(-2)], dev: [v(1.5), v(-1.5)], test: [v(3), v(-3)],
 *   labels: { train: Int32Array.of(0, 1, 0, 1), dev: Int32Array.of(0, 1), test: Int32Array.of(0, 1) },
 * };
 * if (fitProbe(data, 2, [0.01], { epochs: 20, lr: 0.05, seed: 1 }).test_accuracy !== 1) throw new Error("probe");
 * ```
 */
export function fitProbe(
  d: ProbeData,
  classes: number,
  grid: number[],
  o: { epochs: number; lr: number; seed: number },
): ProbeResult {
  const [train, dev, test] = standardise(d.train, d.train, d.dev, d.test);
  const best = chooseL2OnDev(
    { X: train, labels: d.labels.train },
    { X: dev, labels: d.labels.dev },
    classes,
    d.train[0].length,
    grid,
    o,
  );
  return {
    l2: best.l2,
    dev_accuracy: best.accuracy,
    test_accuracy: test.length ? scores(d.labels.test, predictSoftmax(best.model, test)).accuracy : null,
    l2_dev_accuracy: best.tried,
  };
}
