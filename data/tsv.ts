/**
 * Strict TSV reading for task files: UTF-8 checked, header checked, every bad row named by
 * file and line.
 * @module
 */
import { UserInputError } from "../pipeline/errors.ts";

/**
 * Reads a TSV with a header row into records keyed by column name.
 *
 * @example
 * ```ts ignore
 * const rows = await readTsv("sib200/eng_Latn/train.tsv", ["index_id", "category", "text"]);
 * ```
 */
export async function readTsv(
  path: string,
  columns: string[],
): Promise<{ line: number; row: Record<string, string> }[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    throw new UserInputError(`${path}: missing file`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const lines = bytes.subarray(0, firstBadUtf8(bytes)).filter((b) => b === 10).length + 1;
    throw new UserInputError(`${path}:${lines}: not valid UTF-8`);
  }
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const header = lines[0].split("\t");
  const idx = columns.map((c) => header.indexOf(c));
  const missing = columns.filter((_, i) => idx[i] < 0);
  if (missing.length) {
    throw new UserInputError(
      `${path}:1: missing column(s) ${missing.join(", ")} (header: ${header.join(", ")})`,
    );
  }
  const out: { line: number; row: Record<string, string> }[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] === "") continue;
    const cells = lines[i].split("\t");
    if (cells.length !== header.length) {
      throw new UserInputError(
        `${path}:${i + 1}: expected ${header.length} tab-separated fields, found ${cells.length}`,
      );
    }
    out.push({ line: i + 1, row: Object.fromEntries(columns.map((c, j) => [c, cells[idx[j]]])) });
  }
  return out;
}

function firstBadUtf8(bytes: Uint8Array): number {
  const dec = new TextDecoder("utf-8", { fatal: true });
  let lo = 0, hi = bytes.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    try {
      dec.decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid;
    }
  }
  return lo;
}

/** Language folders under a task directory (every non-hidden subdirectory). */
export function languageFolders(path: string): string[] {
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
