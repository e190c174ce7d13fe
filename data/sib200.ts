/**
 * Reading SIB-200 (`<path>/<lang>/{train,dev,test}.tsv`, columns index_id, category, text)
 * and the XGLUE-style XNLI / PAWS-X TSV layouts into labelled examples.
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

/** Language folders under a task directory (every non-hidden subdirectory). */
export function sib200Languages(path: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(path)];
  } catch {
    throw new UserInputError(`${path}: directory not found (set it with --set stages.<stage>.with.path=DIR)`);
  }
  const langs = entries.filter((e) => e.isDirectory && !e.name.startsWith(".")).map((e) => e.name).sort();
  if (langs.length === 0) {
    throw new UserInputError(`${path}: no language folders (expected ${path}/<lang>/{train,dev,test}.tsv)`);
  }
  return langs;
}

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
