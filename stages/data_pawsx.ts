/**
 * `data/pawsx`: sentence-pair classification in XGLUE's pawsx TSV layout (English train,
 * per-language dev/test), pairs encoded as `<s> A </s></s> B </s>`.
 * @module
 */
import type { StageType } from "./types.ts";
import { runTsvTask, tsvTaskSchema } from "./data_tsv_task.ts";

const schema = tsvTaskSchema("en");

/** Writes a task directory from `<path>/<lang>/{train,dev,test}.tsv`. */
export const stage: StageType<typeof schema> = {
  type: "data/pawsx",
  description: "pawsx sentence pairs from <path>/<lang>/{train,dev,test}.tsv",
  schema,
  async run(ctx) {
    const { PAIR_TASKS, readPairSplit, sib200Languages } = await import("../data/sib200.ts");
    const langs = sib200Languages(ctx.params.path);
    await runTsvTask(
      ctx,
      "pawsx",
      [...PAIR_TASKS.pawsx.labels],
      langs,
      (l, s) => readPairSplit("pawsx", ctx.params.path, l, s),
    );
  },
};
