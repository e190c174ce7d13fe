/**
 * Seeded randomness on the host, in one place: the mulberry32 stream, a seeded shuffle, and
 * every derivation of a sub-seed from a run's seed, each named once. (GradDrop's masks use
 * the stateless hash in `rng.ts` instead, because the GPU must compute the same bits.)
 *
 * A derivation only has to give distinct, reproducible streams; the constants are arbitrary
 * but fixed, since changing one changes every result computed with it.
 * @module
 */

/**
 * mulberry32: a small, fast 32-bit PRNG returning floats in [0, 1).
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./random.ts";
 * const rand = mulberry32(42);
 * const x = rand();
 * if (!(x >= 0 && x < 1)) throw new Error("out of range");
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seeded Fisher-Yates permutation of `xs` (a new array).
 *
 * @example
 * ```ts
 * import { shuffled } from "./random.ts";
 * const order = shuffled([0, 1, 2, 3], 7);
 * if (order.length !== 4 || new Set(order).size !== 4) throw new Error("not a permutation");
 * ```
 */
export function shuffled<T>(xs: T[], seed: number): T[] {
  const rand = mulberry32(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Named sub-seeds. Each takes the run's seed (and the step, epoch or index it varies with). */
export const seeds = {
  /** Order of training rows in an epoch. */
  epochOrder: (seed: number, epoch: number) => seed * 1000003 + epoch * 7919 + 1,
  /** Order of the length-bucketed batches of an epoch. */
  bucketOrder: (seed: number, epoch: number) => seed * 1000033 + epoch * 7907 + 3,
  /** Dropout masks of one training step (each dropout site then adds its own counter). */
  dropoutStep: (seed: number, step: number) => seed * 100003 + step,
  /** A data-parallel worker's share of a step (its rows differ, so its dropout masks must too). */
  dropoutWorker: (stepSeed: number, rank: number) => stepSeed + rank * 1000003,
  /** One dropout site within a step. */
  dropoutSite: (stepSeed: number, counter: number) => stepSeed * 7919 + counter,
  /** Order of translation pairs for the contrastive objective (apart from the sequence order). */
  pairOrder: (seed: number) => seed * 7 + 424243,
  /** Which tokens MLM predicts, and how they are corrupted, for one row of one step. */
  mlmRow: (seed: number, step: number, row: number) => (seed * 31 + step) * 65599 + row,
  /** Child-Tuning-D's pass over the training set: its batch order and its dropout. */
  fisherOrder: (seed: number) => seed * 1000003 + 424247,
  fisherDropout: (seed: number, batch: number) => seed * 100003 - 1 - batch,
  /** Child-Tuning-F's Bernoulli masks: a stream apart from GradDrop's, so the two never share draws. */
  childTuningF: (seed: number) => seed + 7777,
  /** `random-init`'s fresh weights: a stream apart from the head's initialisation. */
  randomInit: (seed: number) => seed * 1000037 + 424249,
  /**
   * Resampling for one named quantity of the analysis (a comparison's bootstrap, a correlation's
   * permutations): keyed by its name, so adding a method leaves every other draw unchanged.
   */
  analysis: (seed: number, key: string) => {
    let h = 0x811c9dc5;
    for (const ch of key) h = Math.imul(h ^ ch.codePointAt(0)!, 0x01000193);
    return (h ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  },
  /** GradDrop `layer` granularity: the mask stream shared by every tensor of a layer (-1 = embeddings). */
  layerStream: (layer: number) => 100000 + layer + 1,
} as const;
