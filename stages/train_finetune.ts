/**
 * `train/finetune`: fine-tunes a pretrained checkpoint on a task with one method.
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "../pipeline/stage.ts";
import { gradDropOptionErrors, GradDropOptions, METHODS } from "../train/methods.ts";

const schema = z.strictObject({
  method: z.enum(METHODS).default("full"),
  graddrop: GradDropOptions.default({}),
  unfreeze_every: z.union([z.number().int().min(1), z.literal("epoch"), z.literal("auto")]).default("auto"),
  childtuning_pf: z.number().min(0.01).max(1).default(0.3),
  childtuning_pd: z.number().min(0.01).max(1).default(0.3),
  childtuning_mask_head: z.boolean().default(true),
  lr_match_rate: z.number().min(0).max(0.99).default(0.5),
  lr: z.number().positive().default(5e-4),
  epochs: z.number().int().min(1).default(4),
  batch_size: z.number().int().min(1).default(16),
  /** Warmup steps, or with `warmup_ratio` that share of all steps (rounded) instead. */
  warmup: z.number().int().min(0).default(10),
  warmup_ratio: z.number().min(0).max(1).optional(),
  weight_decay: z.number().min(0).default(0.01),
  /** Discriminative fine-tuning: each layer below the head learns at this factor of the one above. */
  layer_lr_decay: z.number().positive().max(1).default(1),
  clip_norm: z.number().min(0).default(1.0),
  dropout: z.number().min(0).max(0.5).default(0.1),
  seed: z.number().int().default(1),
  select: z.enum(["last", "best-dev"]).default("last"),
  /** What the new classification head reads: `<s>` (RoBERTa's head), or the mean or max over tokens. */
  pooling: z.enum(["cls", "mean", "max"]).default("cls"),
  /**
   * Keep only the checkpoint's bottom k encoder layers (0: the classifier reads the embeddings);
   * the layers above are dropped before fine-tuning. Unset: all of them.
   */
  keep_layers: z.number().int().min(0).optional(),
  /**
   * LP-FT: full-batch AdamW steps fitting the new head on the frozen encoder's pooled vectors
   * before fine-tuning (train/head_fit.ts); 0 fine-tunes from the freshly drawn head.
   */
  head_fit_steps: z.number().int().min(0).default(0),
  head_fit_lr: z.number().positive().default(0.01),
  log_kept_every: z.number().int().min(0).default(5),
  bucket_by_length: z.boolean().default(true),
  backend: z.enum(["auto", "webgpu", "wasm", "cpu"]).default("auto"),
  fused: z.boolean().default(true),
  /** Micro-batches per step: `batch_size / accumulate` rows each, gradients summed, one update. */
  accumulate: z.number().int().min(1).default(1),
}).superRefine((p, ctx) => {
  if (p.batch_size % p.accumulate !== 0) {
    ctx.addIssue({
      code: "custom",
      path: ["accumulate"],
      message: "batch_size must be a multiple of accumulate",
    });
  }
  // At plan time, so a sweep over an option the method never reads fails before anything runs.
  for (const message of gradDropOptionErrors(p.method, p.graddrop)) {
    ctx.addIssue({ code: "custom", path: ["graddrop"], message });
  }
});

function tooManyLayers(keep: number | undefined, depth: number, checkpoint: string): string | undefined {
  if (keep === undefined || keep <= depth) return undefined;
  return `keep_layers is ${keep}, but ${checkpoint} has ${depth} layers`;
}

/** Labels of the task types whose label sets are fixed (the classifier's size in the memory plan). */
const TASK_LABELS: Record<string, number> = { "data/sib200": 7, "data/xnli": 3, "data/pawsx": 2 };

/** Writes `checkpoint/` (classifier, HF layout), `train_log.jsonl`, `dev_metrics.json`. */
export const stage: StageType<typeof schema> = {
  type: "train/finetune",
  description:
    "fine-tune a checkpoint on a task with full / frozen / gradual-unfreezing / GradDrop / Child-Tuning",
  schema,
  async environment(params) {
    const { resolveBackend } = await import("../platform/adapter.ts");
    return { backend: await resolveBackend(params.backend) };
  },
  async preflight(params, upstream) {
    const model = upstream.find((u) => u.type.startsWith("model/"));
    const data = upstream.find((u) => u.type.startsWith("data/"));
    if (model?.type !== "model/load" || typeof model.params.path !== "string") {
      return { summary: "memory: known once the upstream checkpoint exists", facts: {} };
    }
    const { readConfig } = await import("../model/checkpoint.ts");
    const { memoryPlan, describePlan, WEBGPU_BINDING } = await import("../train/memory_plan.ts");
    const { resolveBackend, probeAdapter } = await import("../platform/adapter.ts");
    let cfg;
    try {
      cfg = await readConfig(model.params.path);
    } catch {
      return { summary: `memory: ${model.params.path}/config.json not readable yet`, facts: {} };
    }
    const tooDeep = tooManyLayers(params.keep_layers, cfg.num_hidden_layers, model.params.path);
    if (tooDeep) return { summary: tooDeep, facts: {}, refuse: tooDeep };
    cfg = { ...cfg, num_hidden_layers: params.keep_layers ?? cfg.num_hidden_layers };
    const backend = await resolveBackend(params.backend);
    let binding: number | null = null;
    if (backend === "webgpu") {
      const a = await probeAdapter();
      binding = a
        ? Math.min(a.limits.maxStorageBufferBindingSize, a.limits.maxBufferSize)
        : WEBGPU_BINDING.hardware;
    }
    const T = typeof data?.params.max_length === "number" ? data.params.max_length : 128;
    const labels = (data && TASK_LABELS[data.type]) ?? 7;
    const plan = memoryPlan(
      cfg,
      { mlm: false, numLabels: labels },
      params.batch_size / params.accumulate,
      T,
      params.accumulate,
      backend,
      binding,
    );
    return { summary: describePlan(plan), facts: { memory: plan }, refuse: plan.problem };
  },
  async run(ctx) {
    const { readTask } = await import("../data/task.ts");
    const { initBackend } = await import("../model/backend.ts");
    const { loadCheckpoint, readConfig, saveCheckpoint } = await import("../model/checkpoint.ts");
    const { readShard } = await import("../data/shards.ts");
    const { finetune } = await import("../train/finetune.ts");
    const { resolveGradDrop, startsFromScratch } = await import("../train/methods.ts");
    const p = ctx.params;
    const backend = await initBackend(p.backend);
    const modelDir = `${inputOfType(ctx, ["model/"]).dir}/checkpoint`;
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const task = await readTask(taskDir);
    const [train, dev] = [await readShard(taskDir, "train"), await readShard(taskDir, "dev")];
    if (train.index.n === 0) {
      const { UserInputError } = await import("../pipeline/errors.ts");
      throw new UserInputError(
        `the task has no training rows (train languages: ${task.train_languages.join(", ")})`,
      );
    }
    const depth = (await readConfig(modelDir)).num_hidden_layers;
    const tooDeep = tooManyLayers(p.keep_layers, depth, modelDir);
    if (tooDeep) {
      const { UserInputError } = await import("../pipeline/errors.ts");
      throw new UserInputError(tooDeep);
    }
    const { cfg, params, report } = await loadCheckpoint(
      modelDir,
      { mlm: false, numLabels: task.labels.length },
      p.seed,
      { classifier_pooling: p.pooling, num_hidden_layers: p.keep_layers ?? depth },
    );
    if (cfg.num_hidden_layers < depth) ctx.log(`kept the bottom ${cfg.num_hidden_layers} of ${depth} layers`);
    if (report.replaced.length) {
      ctx.log(
        `the checkpoint's classifier is for another label count; replaced: ${report.replaced.join(", ")}`,
      );
    }
    if (startsFromScratch(p.method)) {
      const { reinitialise } = await import("../model/checkpoint.ts");
      const { seeds } = await import("../kernels/random.ts");
      reinitialise(params, cfg, { mlm: false, numLabels: task.labels.length }, seeds.randomInit(p.seed));
    }
    let headFit;
    if (p.head_fit_steps > 0) {
      const { fitHead } = await import("../train/head_fit.ts");
      const { accuracy } = await import("../train/finetune.ts");
      const losses = await fitHead(params, cfg, train, {
        steps: p.head_fit_steps,
        lr: p.head_fit_lr,
        weightDecay: p.weight_decay,
        clipNorm: p.clip_norm,
        fused: p.fused,
      });
      headFit = {
        loss_first: losses[0],
        loss_last: losses[losses.length - 1],
        dev_accuracy: await accuracy(params, cfg, dev),
      };
      ctx.log(
        `head fitted on the frozen encoder: loss ${headFit.loss_first.toFixed(3)} -> ${
          headFit.loss_last.toFixed(3)
        }, dev ${headFit.dev_accuracy.toFixed(3)}`,
      );
    }
    const graddrop = resolveGradDrop(p.method, p.graddrop);
    ctx.log(`${p.method} on ${backend.backend}: ${train.index.n} train / ${dev.index.n} dev examples`);
    const { log, dev: devAcc, selected, resumedAt } = await finetune(
      params,
      cfg,
      {
        method: p.method,
        graddrop,
        unfreeze_every: p.unfreeze_every,
        childtuning_pf: p.childtuning_pf,
        childtuning_pd: p.childtuning_pd,
        childtuning_mask_head: p.childtuning_mask_head,
        lr_match_rate: p.lr_match_rate,
      },
      train,
      dev,
      {
        lr: p.lr,
        epochs: p.epochs,
        batchSize: p.batch_size,
        warmup: p.warmup_ratio === undefined
          ? p.warmup
          : Math.round(p.warmup_ratio * p.epochs * Math.ceil(train.index.n / p.batch_size)),
        weightDecay: p.weight_decay,
        clipNorm: p.clip_norm,
        seed: p.seed,
        dropout: p.dropout,
        select: p.select,
        logKeptEvery: p.log_kept_every,
        fused: p.fused,
        bucketByLength: p.bucket_by_length,
        accumulate: p.accumulate,
        layerLrDecay: p.layer_lr_decay,
      },
      (row, total) => {
        if (row.step % 10 === 0 || row.dev_accuracy !== undefined) {
          ctx.progress(
            row.step / total,
            `step ${row.step}/${total} loss ${row.loss.toFixed(3)}${
              row.dev_accuracy !== undefined ? ` dev ${row.dev_accuracy.toFixed(3)}` : ""
            }`,
          );
        }
      },
      // A killed run (time limit, preemption) resumes from here; the engine removes it on success.
      { dir: `${ctx.work}/finetune` },
    );
    if (resumedAt !== undefined) ctx.log(`resumed from the checkpoint at step ${resumedAt}`);
    await saveCheckpoint(`${ctx.out}/checkpoint`, cfg, params, task.labels);
    await Deno.copyFile(`${taskDir}/tokenizer.json`, `${ctx.out}/checkpoint/tokenizer.json`);
    await Deno.writeTextFile(
      `${ctx.out}/train_log.jsonl`,
      log.map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${ctx.out}/dev_metrics.json`,
      JSON.stringify(
        {
          method: p.method,
          seed: p.seed,
          dev_accuracy: devAcc,
          dev_curve: log.filter((r) => r.dev_accuracy !== undefined).map((r) => ({
            epoch: r.epoch,
            step: r.step,
            accuracy: r.dev_accuracy,
          })),
          selected_epoch: selected,
          head_fit: headFit,
          graddrop: p.method.startsWith("graddrop") ? graddrop : undefined,
        },
        null,
        2,
      ),
    );
    await Deno.writeTextFile(`${ctx.out}/provenance.json`, JSON.stringify(backend));
    ctx.log(
      `dev accuracy by epoch: ${devAcc.map((a) => a.toFixed(3)).join(", ")} (selected epoch ${selected})`,
    );
  },
};
