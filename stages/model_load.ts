/**
 * `model/load`: a checkpoint from disk (HF `config.json` + `model.safetensors` (+
 * `tokenizer.json`), e.g. a real XLM-R, or the one this project ships under `models/`),
 * checked tensor by tensor before anything trains on it. When the directory has a
 * `provenance.json`, every file it lists must match its sha256.
 * @module
 */
import { z } from "zod";
import { inputPath, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({ path: inputPath("dir") });

/** Validates the checkpoint and copies it (and whatever came with it) to `checkpoint/`. */
export const stage: StageType<typeof schema> = {
  type: "model/load",
  description: "use an HF-layout XLM-R checkpoint from disk (sha256-checked when it has a provenance.json)",
  schema,
  async run(ctx) {
    const { loadCheckpoint, disposeParams } = await import("../model/checkpoint.ts");
    const { verifyProvenance } = await import("../pipeline/export_entry.ts");
    const dir = ctx.params.path;
    const prov = await verifyProvenance(dir);
    const { params, cfg } = await loadCheckpoint(dir, { mlm: false, numLabels: 0 }, 0);
    disposeParams(params);
    await Deno.mkdir(`${ctx.out}/checkpoint`);
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && !e.name.startsWith(".")) {
        await Deno.copyFile(`${dir}/${e.name}`, `${ctx.out}/checkpoint/${e.name}`);
      }
    }
    ctx.log(
      `loaded ${dir}: ${cfg.num_hidden_layers} layers, hidden ${cfg.hidden_size}, vocab ${cfg.vocab_size}${
        prov ? `; sha256 matches provenance.json (${prov.pipeline}/${prov.instance})` : "; no provenance.json"
      }`,
    );
  },
};
