/**
 * `model/load`: a user's own checkpoint (HF `config.json` + `model.safetensors`, e.g. a real
 * XLM-R) from a directory, checked tensor by tensor before anything trains on it.
 * @module
 */
import { z } from "zod";
import { inputPath, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({ path: inputPath("dir") });

/** Validates the checkpoint and copies it to `checkpoint/`. */
export const stage: StageType<typeof schema> = {
  type: "model/load",
  description: "use an existing HF-layout XLM-R checkpoint from disk",
  schema,
  async run(ctx) {
    const { loadCheckpoint, disposeParams } = await import("../model/checkpoint.ts");
    const { params, cfg } = await loadCheckpoint(ctx.params.path, { mlm: false, numLabels: 0 }, 0);
    disposeParams(params);
    await Deno.mkdir(`${ctx.out}/checkpoint`);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) {
      await Deno.copyFile(`${ctx.params.path}/${f}`, `${ctx.out}/checkpoint/${f}`).catch(() => {
        if (f !== "tokenizer.json") throw new Error(`${ctx.params.path}/${f}: missing`);
      });
    }
    ctx.log(
      `loaded ${ctx.params.path}: ${cfg.num_hidden_layers} layers, hidden ${cfg.hidden_size}, vocab ${cfg.vocab_size}`,
    );
  },
};
