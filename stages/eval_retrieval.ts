/**
 * `eval/retrieval`: English <-> X sentence retrieval with an exported encoder (no classifier
 * needed): the pretrained checkpoint's cross-lingual alignment, which fine-tuning can keep
 * or lose. Items are matched across languages by the dataset's item id (SIB-200's index_id).
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  /** Language the others are retrieved against; default: the task's first training language. */
  pivot: z.string().optional(),
  provider: z.enum(["auto", "wasm", "webgpu"]).default("auto"),
});

/**
 * Writes `metrics.json`: `{rows: [{language, retrieval, retrieval_en_to_x, retrieval_x_to_en,
 * retrieval_centred?, retrieval_unlabelled?, n, tier}]}`. Where the task has unlabelled text
 * (SIB-200's dev sentences with `unlabelled_dev`): `retrieval_centred`, and
 * `retrieval_unlabelled`, retrieval over that text itself (sentences pretraining may have
 * read; test is what says what the checkpoint aligns).
 */
export const stage: StageType<typeof schema> = {
  type: "eval/retrieval",
  description: "sentence retrieval English <-> X (top-1, mean-pooled vectors) with onnxruntime-web",
  schema,
  publish: ["metrics.json"],
  async environment(params) {
    const { resolveProvider } = await import("../platform/adapter.ts");
    return { ep: await resolveProvider(params.provider) };
  },
  async run(ctx) {
    const { evaluateExport } = await import("../eval/evaluate.ts");
    const { shardRetrieval } = await import("../eval/shard_retrieval.ts");
    const { mean } = await import("../eval/stats.ts");
    const model = inputOfType(ctx, ["model/export"]).dir, taskDir = inputOfType(ctx, ["data/"]).dir;
    const { task, rows, unlabelled } = await evaluateExport(
      model,
      taskDir,
      ctx.params.provider,
      ctx.progress,
      ctx.params.pivot,
    );
    const onUnlabelled = unlabelled
      ? shardRetrieval(unlabelled.shard, unlabelled.inference, ctx.params.pivot ?? task.train_languages[0])
      : new Map();
    const out = rows.filter((r) => r.retrieval !== undefined).map((r) => ({
      language: r.language,
      retrieval: r.retrieval!,
      retrieval_en_to_x: r.retrieval_en_to_x,
      retrieval_x_to_en: r.retrieval_x_to_en,
      ...(r.retrieval_centred === undefined ? {} : { retrieval_centred: r.retrieval_centred }),
      ...(onUnlabelled.has(r.language) ? { retrieval_unlabelled: onUnlabelled.get(r.language)!.top1 } : {}),
      n: r.n,
      tier: task.languages[r.language].tier ?? null,
    }));
    await Deno.writeTextFile(`${ctx.out}/metrics.json`, JSON.stringify({ rows: out }, null, 1));
    const tierMeans = (of: (r: typeof out[number]) => number | undefined) => {
      const byTier = new Map<string, number[]>();
      for (const r of out) {
        const v = of(r);
        if (v !== undefined) byTier.set(r.tier ?? "all", [...byTier.get(r.tier ?? "all") ?? [], v]);
      }
      return [...byTier].map(([t, xs]) => `${t}: ${(100 * mean(xs)).toFixed(1)}%`).join(", ");
    };
    ctx.log(`test ${tierMeans((r) => r.retrieval)}`);
    if (unlabelled) ctx.log(`unlabelled text ${tierMeans((r) => r.retrieval_unlabelled)}`);
  },
};
