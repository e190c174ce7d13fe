/**
 * Files a stage reads from outside the store (data directories, checkpoints, CSVs) enter its
 * cache key by CONTENT: a file's sha256, a directory's hash over its sorted relative paths
 * and file hashes. A stat cache of (path, size, mtime, inode) -> sha256 under
 * `$GRADDROP_HOME` keeps reruns fast; a file whose stat changed is hashed again.
 * @module
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { readJson, writeJsonAtomic } from "./json_file.ts";
import { sha256 } from "./hash.ts";
import { UserInputError } from "./errors.ts";
import type { Instance } from "./plan.ts";
import { declaredInputPaths, declaredLookups } from "./stage.ts";

interface StatEntry {
  size: number;
  mtime: number;
  ino: number;
  sha256: string;
}

/** Content hashes of input paths, with a persistent stat cache. */
export class InputHasher {
  private readonly cache: Record<string, StatEntry>;
  private dirty = false;
  private readonly memo = new Map<string, { sha256: string; entries?: Record<string, string> }>();

  constructor(private readonly cachePath: string) {
    this.cache = readJson<Record<string, StatEntry>>(cachePath, {});
  }

  /**
   * sha256 of a file, or of a directory's tree (sorted `relative/path\tsha256` lines;
   * dot-files skipped). Throws a {@link UserInputError} naming `field` when the path is missing.
   *
   * @example
   * ```ts
   * import { InputHasher } from "./input_files.ts";
   * const dir = Deno.makeTempDirSync();
   * Deno.writeTextFileSync(`${dir}/a.txt`, "x");
   * const h = new InputHasher(`${dir}/stat_cache.json`);
   * const before = h.hash(`${dir}/a.txt`, "with.path");
   * Deno.writeTextFileSync(`${dir}/a.txt`, "y");
   * if (new InputHasher(`${dir}/stat_cache.json`).hash(`${dir}/a.txt`, "with.path") === before) {
   *   throw new Error("an edited file must hash differently");
   * }
   * ```
   */
  hash(path: string, field: string): string {
    return this.hashDetailed(path, field).sha256;
  }

  /** As {@link hash}, plus each file's hash for a directory (to say which file changed). */
  hashDetailed(path: string, field: string): { sha256: string; entries?: Record<string, string> } {
    const hit = this.memo.get(path);
    if (hit) return hit;
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(path);
    } catch {
      throw new UserInputError(`${field}: ${path} does not exist`);
    }
    const out = st.isDirectory ? this.hashDir(path) : { sha256: this.hashFile(path, st) };
    this.memo.set(path, out);
    return out;
  }

  /** Writes the stat cache back if anything was hashed afresh. */
  save(): void {
    if (this.dirty) writeJsonAtomic(this.cachePath, this.cache);
    this.dirty = false;
  }

  private hashFile(path: string, st: Deno.FileInfo): string {
    const mtime = st.mtime?.getTime() ?? 0, ino = st.ino ?? 0;
    const c = this.cache[path];
    if (c && c.size === st.size && c.mtime === mtime && c.ino === ino) return c.sha256;
    const h = createHash("sha256");
    const f = Deno.openSync(path);
    try {
      const buf = new Uint8Array(1 << 20);
      for (let n = f.readSync(buf); n !== null; n = f.readSync(buf)) h.update(buf.subarray(0, n));
    } finally {
      f.close();
    }
    const digest = h.digest("hex");
    this.cache[path] = { size: st.size, mtime, ino, sha256: digest };
    this.dirty = true;
    return digest;
  }

  private hashDir(root: string): { sha256: string; entries: Record<string, string> } {
    const rows: string[] = [];
    const entries: Record<string, string> = {};
    const walk = (rel: string) => {
      const children = [...Deno.readDirSync(`${root}${rel}`)].filter((e) => !e.name.startsWith("."))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const e of children) {
        const p = `${rel}/${e.name}`;
        const st = Deno.statSync(`${root}${p}`);
        if (st.isDirectory) walk(p);
        else {
          entries[p.slice(1)] = this.hashFile(`${root}${p}`, st);
          rows.push(`${p}\t${entries[p.slice(1)]}`);
        }
      }
    };
    walk("");
    return { sha256: sha256(rows.join("\n")), entries };
  }
}

/**
 * Resolves a declared input path: absolute paths stay, relative ones are taken from `base`.
 *
 * @example
 * ```ts
 * import { resolveInputPath } from "./input_files.ts";
 * if (resolveInputPath("data/../x", "/proj") !== "/proj/x") throw new Error("bad join");
 * ```
 */
export function resolveInputPath(path: string, base: string): string {
  return resolve(base, path);
}

/**
 * The declared input paths of `instances` that are missing or of the wrong kind (a file where
 * the stage reads a directory, or the reverse), one line each naming the instance and the
 * field. `run` checks them before anything starts, so a mistyped `--set ...path=` costs nothing.
 *
 * @example
 * ```ts ignore
 * const problems = inputPathProblems(plan.instances); // ["model: with.path: /models/x does not exist"]
 * ```
 */
export function inputPathProblems(instances: Instance[]): string[] {
  const out: string[] = [];
  for (const inst of instances) {
    for (const [k, kind] of declaredInputPaths(inst.definition.schema)) {
      const path = inst.params[k];
      if (typeof path !== "string") continue;
      let st: Deno.FileInfo | undefined;
      try {
        st = Deno.statSync(path);
      } catch {
        const lookup = declaredLookups(inst.definition.schema).get(k);
        out.push(`${inst.id}: with.${k}: ${path} does not exist${lookup ? ` (${lookup.describe})` : ""}`);
        continue;
      }
      if (kind === "dir" && !st.isDirectory) out.push(`${inst.id}: with.${k}: ${path} is not a directory`);
      if (kind === "file" && st.isDirectory) {
        out.push(`${inst.id}: with.${k}: ${path} is a directory, not a file`);
      }
    }
  }
  return out;
}
