/**
 * `model/export-onnx`: a checkpoint (a fine-tuned classifier, or a pretrained encoder) as a
 * standard ONNX model.
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({});

/**
 * Writes `model.onnx`, for a classifier also `head.onnx` (the head alone, for scoring moved
 * features), and copies `tokenizer.json` and `config.json` beside them.
 */
export const stage: StageType<typeof schema> = {
  type: "model/export-onnx",
  description:
    "export a checkpoint to ONNX (opset 17, HF initializer names): pooled vectors, and logits for a classifier",
  schema,
  async run(ctx) {
    const { readConfig, readCheckpointWeights } = await import("../model/checkpoint.ts");
    const { exportClassifier, exportHead } = await import("../eval/onnx_export.ts");
    const dir = `${inputOfType(ctx, ["train/", "model/"]).dir}/checkpoint`;
    const cfg = await readConfig(dir);
    const weights = await readCheckpointWeights(dir);
    const labels = weights.get("classifier.out_proj.bias")?.shape[0] ?? 0;
    const bytes = exportClassifier(cfg, weights, labels);
    await Deno.writeFile(`${ctx.out}/model.onnx`, bytes);
    if (labels > 0) await Deno.writeFile(`${ctx.out}/head.onnx`, exportHead(cfg, weights, labels));
    for (const f of ["config.json", "tokenizer.json"]) await Deno.copyFile(`${dir}/${f}`, `${ctx.out}/${f}`);
    ctx.log(`model.onnx: ${(bytes.length / 1e6).toFixed(2)} MB`);
  },
};
