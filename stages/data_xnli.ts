/**
 * `data/xnli`: sentence-pair classification in XGLUE's xnli TSV layout (English train,
 * per-language dev/test).
 * @module
 */
import { pairTaskStage } from "./data_tsv_task.ts";

/** The stage type. */
export const stage = pairTaskStage("xnli");
