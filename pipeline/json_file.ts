/**
 * JSON files the engine keeps under `$GRADDROP_HOME` (run records, timings, the stat
 * cache): read with a fallback, written atomically (temp file + rename), so a reader never
 * sees half a file and a crash never leaves one.
 * @module
 */

/**
 * Parsed JSON at `path`, or `fallback` when the file is missing or unreadable.
 *
 * @example
 * ```ts
 * import { readJson } from "./json_file.ts";
 * const timings = readJson<Record<string, number>>("/nonexistent/timings.json", {});
 * if (Object.keys(timings).length !== 0) throw new Error("expected the fallback");
 * ```
 */
export function readJson<T>(path: string, fallback: T): T {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch {
    return fallback;
  }
}

/**
 * Writes `value` as JSON to `path` via a temp file in the same directory and a rename.
 *
 * @example
 * ```ts
 * import { readJson, writeJsonAtomic } from "./json_file.ts";
 * const dir = Deno.makeTempDirSync();
 * writeJsonAtomic(`${dir}/a.json`, { x: 1 });
 * if (readJson(`${dir}/a.json`, { x: 0 }).x !== 1) throw new Error("round trip failed");
 * ```
 */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(value));
  Deno.renameSync(tmp, path);
}
