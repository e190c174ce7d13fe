/**
 * `eval/classify`: runs the exported classifier in onnxruntime-web on every task language:
 * accuracy and macro-F1, and English <-> X retrieval kept by the fine-tuned encoder.
 * Source languages are scored on their test split when it has one, else on dev. Where the
 * task has unlabelled text per language, the rows carry the same after language centring.
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  provider: z.enum(["auto", "wasm", "webgpu"]).default("auto"),
  batch_size: z.number().int().min(1).default(64),
});

/** Writes `metrics.json` (a row per language), `predictions.jsonl` and `provenance.json` (the provider). */
export const stage: StageType<typeof schema> = {
  type: "eval/classify",
  description: "score an ONNX classifier per language with onnxruntime-web (accuracy, macro-F1, retrieval)",
  schema,
  async environment(params) {
    const { resolveProvider } = await import("../platform/adapter.ts");
    return { ep: await resolveProvider(params.provider) };
  },
  async run(ctx) {
    const { evaluateExport } = await import("../eval/evaluate.ts");
    const model = inputOfType(ctx, ["model/export"]).dir, taskDir = inputOfType(ctx, ["data/"]).dir;
    const { sess, rows, predictions } = await evaluateExport(
      model,
      taskDir,
      ctx.params.provider,
      ctx.progress,
    );
    ctx.log(`onnxruntime-web ${sess.provider} EP, one thread (${sess.reason})`);
    await Deno.writeTextFile(`${ctx.out}/metrics.json`, JSON.stringify({ rows }, null, 1));
    await Deno.writeTextFile(
      `${ctx.out}/predictions.jsonl`,
      predictions.map((p) => JSON.stringify(p)).join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${ctx.out}/provenance.json`,
      JSON.stringify({ ep: sess.provider, reason: sess.reason }),
    );
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const src = rows.filter((r) => r.split === "source").map((r) => r.accuracy ?? 0);
    const zs = rows.filter((r) => r.split === "test");
    ctx.log(
      `source accuracy ${mean(src).toFixed(3)}, zero-shot ${
        mean(zs.map((r) => r.accuracy ?? 0)).toFixed(3)
      } (${zs.length} langs), retrieval ${mean(zs.map((r) => r.retrieval ?? 0)).toFixed(3)}`,
    );
  },
};
