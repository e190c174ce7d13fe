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
import { UserInputError } from "../pipeline/errors.ts";

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
  "full-lr-matched",
  "random-init",
] as const;
export type Method = typeof METHODS[number];

/**
 * Whether a method starts from freshly initialised weights instead of the checkpoint's:
 * `random-init` is `full` without pretraining, the control for what pretraining adds.
 */
export function startsFromScratch(method: Method): boolean {
  return method === "random-init";
}

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
  /**
   * Scale each masked tensor's learning rate to undo the step GradDrop takes away: 1/sqrt(1 - p)
   * when masking the gradient (Adam's moments shrink by keep and sqrt(keep)), 1/(1 - p) when
   * masking the update (a tensor moves a full Adam step in a share 1 - p of steps).
   */
  lr_compensation: z.boolean().optional(),
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
  lr_compensation: false,
};

/** What each GradDrop preset sets before the user's own options. */
const PRESETS: Partial<Record<Method, Partial<GradDrop>>> = {
  "graddrop": {},
  // "A stochastic, sparse gradual unfreezing": a dropped layer does not move at all that step.
  "graddrop-layer": {
    granularity: "layer",
    depth_profile: "linear",
    rate_bottom: 0.8,
    rate_top: 0.2,
    mask_target: "update",
  },
  "graddrop-anneal": { schedule: "linear", rate_end: 0 },
  "graddrop-unfreeze": {},
};

/**
 * What is wrong with the user's GradDrop options for `method`, before anything runs: an option
 * the method's drop-rate math never reads (`rate` under a linear depth profile, which reads
 * `rate_bottom` and `rate_top`, or those two under a uniform one; `rate_end` under a constant
 * schedule), since a sweep over it would label identical runs as different settings; or a
 * schedule with nowhere to go (a `linear` or `per-epoch` schedule and no `rate_end`, from the
 * user or the preset).
 *
 * @example
 * ```ts
 * import { gradDropOptionErrors } from "./methods.ts";
 * const [why] = gradDropOptionErrors("graddrop-layer", { rate: 0.3 });
 * if (!why.includes("graddrop.rate") || !why.includes("graddrop-layer")) throw new Error(why);
 * if (gradDropOptionErrors("graddrop", { rate: 0.3 }).length) throw new Error();
 * if (!gradDropOptionErrors("graddrop", { schedule: "linear" })[0].includes("rate_end")) throw new Error();
 * if (gradDropOptionErrors("graddrop-anneal", { rate: 0.3 }).length) throw new Error();
 * ```
 */
export function gradDropOptionErrors(method: Method, user: z.infer<typeof GradDropOptions>): string[] {
  if (!method.startsWith("graddrop")) return [];
  const preset = PRESETS[method] ?? {};
  const errors: string[] = [];
  const profile = user.depth_profile ?? preset.depth_profile ?? GRADDROP_DEFAULTS.depth_profile;
  if (profile === "linear" && user.rate !== undefined) {
    errors.push(
      `graddrop.rate is ignored by ${method}: its linear depth profile reads graddrop.rate_bottom and graddrop.rate_top (vary those, or set graddrop.depth_profile: uniform)`,
    );
  }
  const unread = (["rate_bottom", "rate_top"] as const).filter((k) => user[k] !== undefined);
  if (profile === "uniform" && unread.length) {
    errors.push(
      `graddrop.${unread.join(" and graddrop.")} ${
        unread.length > 1 ? "are" : "is"
      } ignored by ${method}: its uniform depth profile reads graddrop.rate (or set graddrop.depth_profile: linear)`,
    );
  }
  const schedule = user.schedule ?? preset.schedule ?? GRADDROP_DEFAULTS.schedule;
  if (schedule === "constant" && user.rate_end !== undefined) {
    errors.push(
      `graddrop.rate_end is ignored by ${method}: its schedule is constant (set graddrop.schedule: linear or per-epoch)`,
    );
  }
  if (schedule !== "constant" && user.rate_end === undefined && preset.rate_end === undefined) {
    errors.push(
      `graddrop.schedule '${schedule}' moves p to graddrop.rate_end, which ${method} does not set: give graddrop.rate_end (0 anneals to no dropping)`,
    );
  }
  return errors;
}

/** Defaults, then the preset, then the user's options; what `gradDropOptionErrors` finds is an error. */
export function resolveGradDrop(method: Method, user: z.infer<typeof GradDropOptions>): GradDrop {
  const [error] = gradDropOptionErrors(method, user);
  if (error) throw new UserInputError(error);
  const out = { ...GRADDROP_DEFAULTS, ...PRESETS[method] };
  for (const [k, v] of Object.entries(user)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
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
  /** Steps between unfreezing one more layer, "epoch", or "auto" (the L + 2 stages spread over the run). */
  unfreeze_every: number | "epoch" | "auto";
  childtuning_pf: number;
  childtuning_pd: number;
  /** Child-Tuning-F masks the classification head too (as the reference code does). */
  childtuning_mask_head: boolean;
  /**
   * `full-lr-matched` trains the encoder at sqrt(1 - lr_match_rate) x lr: full fine-tuning at
   * GradDrop's effective step. The head keeps lr, as under GradDrop, which never masks it.
   */
  lr_match_rate: number;
}

/** One tensor's fate this step. */
export interface Fate {
  mode: MaskMode;
  mask?: MaskSpec;
  /** Drop probability used (for logs); 0 when unmasked. */
  rate: number;
  /** Multiplies the step's learning rate for this tensor (1 unless a method says otherwise). */
  lrScale: number;
}

/** Steps per unfreezing stage for `auto`: the head alone, L layers, then the embeddings, evenly over the run. */
function autoUnfreezeEvery(totalSteps: number, L: number): number {
  return Math.max(1, Math.floor(totalSteps / (L + 2)));
}

/** How many encoder layers are unfrozen (from the top) at this step; L+1 means embeddings too. */
function unfrozenCount(c: MethodConfig, s: StepCtx, L: number): number {
  if (c.unfreeze_every === "epoch") return s.epoch;
  const every = c.unfreeze_every === "auto" ? autoUnfreezeEvery(s.totalSteps, L) : c.unfreeze_every;
  return Math.floor(s.step / every);
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
      const k = unfrozenCount(c, s, L);
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
 * import { fateOf, resolveGradDrop } from "./methods.ts";
 * const cfg = {
 *   method: "graddrop" as const,
 *   graddrop: resolveGradDrop("graddrop", {}),
 *   unfreeze_every: "auto" as const,
 *   childtuning_pf: 0.3,
 *   childtuning_pd: 0.3,
 *   childtuning_mask_head: true,
 *   lr_match_rate: 0.5,
 * };
 * const ctx = { step: 3, epoch: 0, totalSteps: 100, epochs: 1, stepsPerEpoch: 100, seed: 1 };
 * const fate = fateOf(cfg, "roberta.encoder.layer.0.output.dense.weight", 0, 4, [512, 128], 7, ctx);
 * if (fate?.mode !== "gradient" || fate.rate !== 0.5) throw new Error(JSON.stringify(fate));
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
    if (layer >= L && !c.childtuning_mask_head) return { mode: "none", rate: 0, lrScale: 1 };
    const keep = c.childtuning_pf;
    const mask = maskSpec({
      seed: seeds.childTuningF(s.seed),
      step: s.step,
      stream,
      keep,
      divisor: 1,
      rescale: true,
    });
    return { mode: "gradient", mask, rate: 1 - keep, lrScale: 1 };
  }
  if (c.method === "full-lr-matched") {
    return { mode: "none", rate: 0, lrScale: layer >= L ? 1 : Math.sqrt(1 - c.lr_match_rate) };
  }
  if (!isGradDrop) return { mode: "none", rate: 0, lrScale: 1 };
  const g = c.graddrop;
  if (g.exclude.some((re) => new RegExp(re).test(name))) return { mode: "none", rate: 0, lrScale: 1 };
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
  // The expected step under the mask: sqrt(keep) of Adam's for a masked gradient, keep of it for a masked update.
  const keep = 1 - rate;
  const compensation = g.mask_target === "update" ? 1 / keep : 1 / Math.sqrt(keep);
  return { mode: g.mask_target, mask, rate, lrScale: g.lr_compensation && rate < 1 ? compensation : 1 };
}

/** Child-Tuning-D's Fisher pool, as the reference code picks it: encoder layers' parameters only. */
export function inChildTuningDPool(name: string): boolean {
  return /\.encoder\.layer\./.test(name);
}

/**
 * Child-Tuning-D's mask from the Fisher information of the pool: keep every element at or
 * above the (1 - pd) percentile (numpy's linear interpolation), as the reference code does.
 *
 * @example
 * ```ts
 * import { childTuningDMasks } from "./methods.ts";
 * const masks = childTuningDMasks(new Map([["w", Float32Array.from([1, 2, 3, 4])]]), 0.5);
 * if (masks.get("w")!.join(",") !== "0,0,1,1") throw new Error(masks.get("w")!.join(","));
 * ```
 */
export function childTuningDMasks(fisher: Map<string, Float32Array>, pd: number): Map<string, Float32Array> {
  const all = new Float32Array([...fisher.values()].reduce((a, f) => a + f.length, 0));
  let o = 0;
  for (const f of fisher.values()) {
    all.set(f, o);
    o += f.length;
  }
  all.sort();
  const pos = (1 - pd) * (all.length - 1), lo = Math.floor(pos);
  const polar = lo + 1 < all.length ? all[lo] + (all[lo + 1] - all[lo]) * (pos - lo) : all[lo];
  return new Map([...fisher].map(([n, f]) => [n, Float32Array.from(f, (x) => (x >= polar ? 1 : 0))]));
}
