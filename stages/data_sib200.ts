/**
 * `data/sib200`: SIB-200 topic classification from a directory a user gives.
 * @module
 */
import type { StageType } from "../pipeline/stage.ts";
import { runTsvTask, tsvTaskSchema } from "./data_tsv_task.ts";

const schema = tsvTaskSchema("eng_Latn");

/** Writes a task directory from `<path>/<lang>/{train,dev,test}.tsv`. */
export const stage: StageType<typeof schema> = {
  type: "data/sib200",
  description: "SIB-200 topic classification (7 labels) from <path>/<lang>/{train,dev,test}.tsv",
  schema,
  async run(ctx) {
    const { SIB200_LABELS, readSib200Split } = await import("../data/sib200.ts");
    const { languageFolders } = await import("../data/tsv.ts");
    const langs = languageFolders(ctx.params.path);
    await runTsvTask(ctx, "sib200", SIB200_LABELS, langs, (l, s) => readSib200Split(ctx.params.path, l, s));
  },
};
