/**
 * `data/xnli`: sentence-pair classification in XGLUE's xnli TSV layout (English train,
 * per-language dev/test), pairs encoded as `<s> A </s></s> B </s>`.
 * @module
 */
import type { StageType } from "./types.ts";
import { runTsvTask, tsvTaskSchema } from "./data_tsv_task.ts";

const schema = tsvTaskSchema("en");

/** Writes a task directory from `<path>/<lang>/{train,dev,test}.tsv`. */
export const stage: StageType<typeof schema> = {
  type: "data/xnli",
  description: "xnli sentence pairs from <path>/<lang>/{train,dev,test}.tsv",
  schema,
  async run(ctx) {
    const { PAIR_TASKS, readPairSplit, sib200Languages } = await import("../data/sib200.ts");
    const langs = sib200Languages(ctx.params.path);
    await runTsvTask(
      ctx,
      "xnli",
      [...PAIR_TASKS.xnli.labels],
      langs,
      (l, s) => readPairSplit("xnli", ctx.params.path, l, s),
    );
  },
};
