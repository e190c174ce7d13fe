/**
 * Reading the XGLUE-style XNLI / PAWS-X TSV layouts (`<path>/<lang>/<split>.tsv`) into
 * labelled sentence pairs.
 * @module
 */
import type { Example } from "./task.ts";
import { readTsv } from "./tsv.ts";
import { UserInputError } from "../pipeline/errors.ts";

/** Sentence-pair task layouts as XGLUE distributes them. */
export const PAIR_TASKS = {
  xnli: { labels: ["entailment", "neutral", "contradiction"], columns: ["premise", "hypothesis", "label"] },
  pawsx: { labels: ["0", "1"], columns: ["sentence1", "sentence2", "label"] },
} as const;

/**
 * Reads a pair-task split file (`<path>/<lang>/<split>.tsv` with the task's columns).
 */
export async function readPairSplit(
  task: keyof typeof PAIR_TASKS,
  path: string,
  lang: string,
  split: "train" | "dev" | "test",
): Promise<Example[]> {
  const spec = PAIR_TASKS[task];
  const file = `${path}/${lang}/${split}.tsv`;
  const rows = await readTsv(file, [...spec.columns]);
  return rows.map(({ line, row }) => {
    const label = row[spec.columns[2]];
    if (!(spec.labels as readonly string[]).includes(label)) {
      throw new UserInputError(
        `${file}:${line}: unknown label '${label}' (labels: ${spec.labels.join(", ")})`,
      );
    }
    return { text: row[spec.columns[0]], text_b: row[spec.columns[1]], label, lang, split };
  });
}
