/**
 * Every fine-tuning method, defined as what it does to each parameter tensor at each step:
 * frozen (no update), updated, or updated under a GradDrop mask with a given keep
 * probability, granularity and target. This file is the single source of each method's math.
 * @module
 */
import { z } from "zod";
import type { MaskMode } from "../kernels/fused_adamw.ts";
import { type MaskSpec, maskSpec } from "../kernels/mask_spec.ts";
import { seeds } from "../kernels/random.ts";

/** Method names, each a row of the comparison. */
export const METHODS = [
  "full",
  "frozen",
  "gradual-unfreezing",
  "graddrop",
  "graddrop-layer",
  "graddrop-anneal",
  "graddrop-unfreeze",
  "childtuning-f",
  "childtuning-d",
] as const;
export type Method = typeof METHODS[number];

/** GradDrop options; presets fill some of them in (see {@link resolveGradDrop}). */
export const GradDropOptions = z.strictObject({
  rate: z.number().min(0).max(1).optional(),
  rate_end: z.number().min(0).max(1).optional(),
  rescale: z.boolean().optional(),
  granularity: z.enum(["element", "row", "layer"]).optional(),
  schedule: z.enum(["constant", "linear", "per-epoch"]).optional(),
  depth_profile: z.enum(["uniform", "linear"]).optional(),
  rate_bottom: z.number().min(0).max(1).optional(),
  rate_top: z.number().min(0).max(1).optional(),
  resample: z.enum(["step", "epoch"]).optional(),
  mask_target: z.enum(["gradient", "update"]).optional(),
  exclude: z.array(z.string()).optional(),
});

/** GradDrop options with every field decided. */
export type GradDrop = Required<z.infer<typeof GradDropOptions>>;

const GRADDROP_DEFAULTS: GradDrop = {
  rate: 0.5,
  rate_end: 0.5,
  rescale: false,
  granularity: "element",
  schedule: "constant",
  depth_profile: "uniform",
  rate_bottom: 0.5,
  rate_top: 0.5,
  resample: "step",
  mask_target: "gradient",
  exclude: ["^classifier\\."],
};

/** What each GradDrop preset sets before the user's own options. */
export const PRESETS: Partial<Record<Method, Partial<GradDrop>>> = {
  "graddrop": {},
  "graddrop-layer": { granularity: "layer", depth_profile: "linear", rate_bottom: 0.8, rate_top: 0.2 },
  "graddrop-anneal": { schedule: "linear", rate_end: 0 },
  "graddrop-unfreeze": {},
};

/** Defaults, then the preset, then the user's options. */
export function resolveGradDrop(method: Method, user: z.infer<typeof GradDropOptions>): GradDrop {
  const out = { ...GRADDROP_DEFAULTS, ...PRESETS[method] };
  for (const [k, v] of Object.entries(user)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  if (user.rate !== undefined && user.rate_end === undefined && out.schedule === "constant") {
    out.rate_end = out.rate;
  }
  return out;
}

/** Where training is, for schedules. */
export interface StepCtx {
  step: number;
  epoch: number;
  totalSteps: number;
  epochs: number;
  stepsPerEpoch: number;
  seed: number;
}

/** Method configuration as the fine-tuning stage passes it. */
export interface MethodConfig {
  method: Method;
  graddrop: GradDrop;
  /** Steps between unfreezing one more layer, or "epoch". */
  unfreeze_every: number | "epoch";
  childtuning_pf: number;
  childtuning_pd: number;
}

/** One tensor's fate this step. */
export interface Fate {
  mode: MaskMode;
  mask?: MaskSpec;
  /** Drop probability used (for logs); 0 when unmasked. */
  rate: number;
}

/** Encoder layer of a tensor: -1 embeddings, 0..L-1 blocks, L for heads. */
export type LayerOf = (name: string) => number;

/** How many encoder layers are unfrozen (from the top) at this step; L+1 means embeddings too. */
export function unfrozenCount(c: MethodConfig, s: StepCtx): number {
  const stage = c.unfreeze_every === "epoch" ? s.epoch : Math.floor(s.step / c.unfreeze_every);
  return stage;
}

/** Whether a tensor trains at all this step under the method. */
export function trainable(c: MethodConfig, layer: number, L: number, s: StepCtx): boolean {
  const isHead = layer >= L;
  switch (c.method) {
    case "frozen":
      return isHead;
    case "gradual-unfreezing":
    case "graddrop-unfreeze": {
      if (isHead) return true;
      const k = unfrozenCount(c, s);
      // Stage k unfreezes layers L-1 .. L-k; embeddings (layer -1) come last, at k = L + 1.
      return layer >= 0 ? layer >= L - k : k >= L + 1;
    }
    default:
      return true;
  }
}

/** GradDrop drop probability for a tensor at a step: depth profile, then schedule towards rate_end. */
export function dropRate(g: GradDrop, layer: number, L: number, s: StepCtx): number {
  const depth = Math.min(1, Math.max(0, (layer + 1) / Math.max(1, L)));
  const r0 = g.depth_profile === "linear" ? g.rate_bottom + (g.rate_top - g.rate_bottom) * depth : g.rate;
  const progress = g.schedule === "linear"
    ? s.step / Math.max(1, s.totalSteps - 1)
    : g.schedule === "per-epoch"
    ? s.epoch / Math.max(1, s.epochs - 1)
    : 0;
  return r0 + (g.rate_end - r0) * progress;
}

/**
 * What happens to tensor `name` at step `s`: undefined when frozen.
 *
 * @example
 * ```ts
 * const fate = fateOf(cfg, "roberta.encoder.layer.0.output.dense.weight", 0, 4, [512, 128], 7, ctx);
 * ```
 */
export function fateOf(
  c: MethodConfig,
  name: string,
  layer: number,
  L: number,
  shape: number[],
  stream: number,
  s: StepCtx,
): Fate | undefined {
  if (!trainable(c, layer, L, s)) return undefined;
  const isGradDrop = c.method.startsWith("graddrop");
  if (c.method === "childtuning-f") {
    if (layer >= L) return { mode: "none", rate: 0 };
    const keep = c.childtuning_pf;
    const mask = maskSpec({
      seed: seeds.childTuningF(s.seed),
      step: s.step,
      stream,
      keep,
      divisor: 1,
      rescale: true,
    });
    return { mode: "gradient", mask, rate: 1 - keep };
  }
  if (!isGradDrop) return { mode: "none", rate: 0 };
  const g = c.graddrop;
  if (g.exclude.some((re) => new RegExp(re).test(name))) return { mode: "none", rate: 0 };
  const rate = dropRate(g, layer, L, s);
  const size = shape.reduce((a, b) => a * b, 1);
  const divisor = g.granularity === "element"
    ? 1
    : g.granularity === "row"
    ? (shape.length > 1 ? shape[1] : size)
    : size;
  // Layer granularity: every tensor of a layer shares one draw, so the stream is the layer.
  const streamId = g.granularity === "layer" ? seeds.layerStream(layer) : stream;
  const drawStep = g.resample === "epoch" ? s.epoch : s.step;
  const mask = maskSpec({
    seed: s.seed,
    step: drawStep,
    stream: streamId,
    keep: 1 - rate,
    divisor,
    rescale: g.rescale,
  });
  return { mode: g.mask_target, mask, rate };
}
