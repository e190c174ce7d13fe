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
});

/** Writes `metrics.json`: `{rows: [{language, retrieval, retrieval_en_to_x, retrieval_x_to_en, n, tier}]}`. */
export const stage: StageType<typeof schema> = {
  type: "eval/retrieval",
  description: "sentence retrieval English <-> X (top-1, mean-pooled vectors) with onnxruntime-web",
  schema,
  publish: ["metrics.json"],
  async run(ctx) {
    const { readTask } = await import("../data/task.ts");
    const { session } = await import("../eval/classify.ts");
    const { evaluateTask } = await import("../eval/evaluate.ts");
    const { readShard } = await import("../data/shards.ts");
    const model = inputOfType(ctx, ["model/export"]);
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const task = await readTask(taskDir);
    const sess = await session(`${model.dir}/model.onnx`);
    const shards = { dev: await readShard(taskDir, "dev"), test: await readShard(taskDir, "test") };
    const { rows } = await evaluateTask(sess, task, shards, ctx.progress, ctx.params.pivot);
    const out = rows.filter((r) => r.retrieval !== undefined).map((r) => ({
      language: r.language,
      retrieval: r.retrieval,
      retrieval_en_to_x: r.retrieval_en_to_x,
      retrieval_x_to_en: r.retrieval_x_to_en,
      n: r.n,
      tier: task.languages[r.language].tier ?? null,
    }));
    await Deno.writeTextFile(`${ctx.out}/metrics.json`, JSON.stringify({ rows: out }, null, 1));
    const byTier = new Map<string, number[]>();
    for (const r of out) byTier.set(r.tier ?? "all", [...byTier.get(r.tier ?? "all") ?? [], r.retrieval!]);
    ctx.log(
      [...byTier].map(([t, xs]) => `${t}: ${(100 * xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)}%`)
        .join(", "),
    );
  },
};
