/**
 * Reading SIB-200 (`<path>/<lang>/{train,dev,test}.tsv`, columns index_id, category, text)
 * into labelled examples.
 * @module
 */
import type { Example } from "./task.ts";
import { readTsv } from "./tsv.ts";
import { UserInputError } from "../pipeline/errors.ts";

/** SIB-200's seven topic labels. */
export const SIB200_LABELS = [
  "entertainment",
  "geography",
  "health",
  "politics",
  "science/technology",
  "sports",
  "travel",
];

/** Reads one split of one language; unknown labels are errors naming file and line. */
export async function readSib200Split(
  path: string,
  lang: string,
  split: "train" | "dev" | "test",
): Promise<Example[]> {
  const file = `${path}/${lang}/${split}.tsv`;
  const rows = await readTsv(file, ["index_id", "category", "text"]);
  return rows.map(({ line, row }) => {
    if (!SIB200_LABELS.includes(row.category)) {
      throw new UserInputError(
        `${file}:${line}: unknown label '${row.category}' (labels: ${SIB200_LABELS.join(", ")})`,
      );
    }
    if (!row.text.trim()) throw new UserInputError(`${file}:${line}: empty text`);
    return { id: row.index_id, text: row.text, label: row.category, lang, split };
  });
}
