/**
 * The content-addressed store under `$GRADDROP_HOME`: entries are written to a temporary
 * directory and renamed into place only on success, so no partial output is ever reused.
 * @module
 */
import { sha256, sha256File } from "./hash.ts";
import { ownerTag, tagState } from "./lock.ts";
import { fault } from "./fault.ts";
import type { Manifest } from "./types.ts";

/**
 * On reuse, files up to this size are hashed as well as sized, within {@link HASH_BUDGET}
 * bytes per entry: metrics, configs and reports are checked in full, a checkpoint by size.
 */
const CHEAP_FILE = 1 << 20;
const HASH_BUDGET = 8 << 20;

/** Where things live under the store root. */
export class Store {
  constructor(readonly home: string) {
    for (const d of ["store", "tmp", "work", "locks", "corrupt"]) {
      Deno.mkdirSync(`${home}/${d}`, { recursive: true });
    }
  }

  /** Directory of a finished entry. */
  entry(key: string): string {
    return `${this.home}/store/${key}`;
  }

  /** The finished entry's manifest, or undefined when not cached. */
  manifest(key: string): Manifest | undefined {
    try {
      return JSON.parse(Deno.readTextFileSync(`${this.entry(key)}/manifest.json`));
    } catch {
      return undefined;
    }
  }

  /**
   * A fresh temporary entry directory, private to this process. It lies under the store home
   * (never the system's temp dir), so committing it is a rename within one filesystem, atomic
   * also on a shared one; its name carries the owner's {@link ownerTag} for `gc`.
   */
  tmp(key: string): string {
    const dir = `${this.home}/tmp/${key}.${ownerTag()}.${crypto.randomUUID().slice(0, 8)}`;
    Deno.mkdirSync(`${dir}/out`, { recursive: true });
    return dir;
  }

  /** The persistent work directory a stage may checkpoint into. */
  work(key: string): string {
    const dir = `${this.home}/work/${key}`;
    Deno.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /**
   * Atomically publishes a finished temporary entry; the first writer wins. `files` (the
   * output tree, as {@link listTree} gives it) is kept beside the manifest so that a reuse
   * can check every file's size and hash.
   */
  commit(tmp: string, manifest: Manifest, files: TreeFile[]): void {
    Deno.writeTextFileSync(`${tmp}/files.json`, JSON.stringify(files));
    fault("commit-manifest", `write '${tmp}/manifest.json'`);
    Deno.writeTextFileSync(`${tmp}/manifest.json`, JSON.stringify(manifest, null, 2));
    fault("commit-rename");
    try {
      Deno.renameSync(tmp, this.entry(manifest.key));
    } catch (e) {
      if (this.manifest(manifest.key)) Deno.removeSync(tmp, { recursive: true });
      else if (e instanceof Deno.errors.AlreadyExists || (e as { code?: string }).code === "ENOTEMPTY") {
        // A directory without a readable manifest is a damaged entry, not a winner: replace it.
        this.quarantine(manifest.key);
        Deno.renameSync(tmp, this.entry(manifest.key));
      } else throw e;
    }
    fault("commit-renamed");
    try {
      Deno.removeSync(`${this.home}/work/${manifest.key}`, { recursive: true });
    } catch (e) {
      // An entry fetched from a remote cache never had a work directory.
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /**
   * What is wrong with a finished entry, or undefined when it matches its manifest: every
   * file present with its recorded size and nothing extra (`sizes`), the content hash of
   * small files too (`reuse`, before an entry is used), or of every file and the output hash
   * (`full`, for `verify`).
   */
  async check(key: string, level: "sizes" | "reuse" | "full" = "reuse"): Promise<string | undefined> {
    const full = level === "full";
    const m = this.manifest(key);
    if (!m) return "manifest.json is missing or not JSON";
    const out = `${this.entry(key)}/out`;
    let listed: TreeFile[] | undefined;
    try {
      listed = JSON.parse(Deno.readTextFileSync(`${this.entry(key)}/files.json`));
    } catch {
      listed = undefined;
    }
    let found: Map<string, number>;
    try {
      found = sizes(out);
    } catch {
      return "out/ is missing";
    }
    if (!listed) {
      // An entry from before files.json: its manifest's count and bytes, and in full its hash.
      const bytes = [...found.values()].reduce((a, b) => a + b, 0);
      if (found.size !== m.files || bytes !== m.bytes) {
        return `holds ${found.size} files of ${bytes} bytes, its manifest says ${m.files} of ${m.bytes}`;
      }
      if (full && (await hashTree(out)).hash !== m.outputHash) {
        return "its files do not add up to its outputHash";
      }
      return undefined;
    }
    if (treeHash(listed) !== m.outputHash) return "files.json does not add up to the manifest's outputHash";
    for (const f of listed) {
      const size = found.get(f.path);
      if (size === undefined) return `out/${f.path} is missing`;
      if (size !== f.size) return `out/${f.path} has ${size} bytes, its manifest says ${f.size}`;
      found.delete(f.path);
    }
    const extra = [...found.keys()][0];
    if (extra !== undefined) return `out/${extra} is not in its manifest`;
    if (level === "sizes") return undefined;
    let budget = full ? Infinity : HASH_BUDGET;
    for (const f of listed) {
      if (!full && (f.size > CHEAP_FILE || f.size > budget)) continue;
      budget -= f.size;
      if (await sha256File(`${out}/${f.path}`) !== f.sha256) return `out/${f.path} does not match its sha256`;
    }
    return undefined;
  }

  /** Moves a damaged entry out of the store into `corrupt/`, for a person to look at; returns where. */
  quarantine(key: string): string {
    const aside = `${this.home}/corrupt/${key}.${Date.now()}`;
    try {
      Deno.renameSync(this.entry(key), aside);
    } catch (e) {
      // Another run moved it first.
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return aside;
  }

  /** Every key with a finished entry. */
  keys(): string[] {
    return [...Deno.readDirSync(`${this.home}/store`)].map((e) => e.name);
  }
}

/** One file of an entry's output tree. */
export interface TreeFile {
  /** Path relative to the tree's root, `/`-separated, e.g. `checkpoint/config.json`. */
  path: string;
  sha256: string;
  size: number;
}

/**
 * The files under a directory in the order {@link treeHash} needs: each directory's entries
 * sorted by name, depth first.
 */
export async function listTree(dir: string): Promise<TreeFile[]> {
  const files: TreeFile[] = [];
  const walk = async (sub: string) => {
    const entries = [...Deno.readDirSync(`${dir}/${sub}`)].sort((a, b) => a.name < b.name ? -1 : 1);
    for (const e of entries) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await walk(rel);
      else {
        files.push({
          path: rel,
          sha256: await sha256File(`${dir}/${rel}`),
          size: Deno.statSync(`${dir}/${rel}`).size,
        });
      }
    }
  };
  await walk("");
  return files;
}

/** The output hash of files listed by {@link listTree}. */
export function treeHash(files: TreeFile[]): string {
  return sha256(files.map((f) => `/${f.path}\t${f.sha256}`).join("\n"));
}

/** Hash over a directory's sorted file paths and contents; also counts files and bytes. */
export async function hashTree(
  dir: string,
): Promise<{ hash: string; files: number; bytes: number; list: TreeFile[] }> {
  const files = await listTree(dir);
  return {
    hash: treeHash(files),
    files: files.length,
    bytes: files.reduce((n, f) => n + f.size, 0),
    list: files,
  };
}

/** Size of every file under `dir`, by `/`-separated relative path. */
function sizes(dir: string, sub = "", out = new Map<string, number>()): Map<string, number> {
  for (const e of Deno.readDirSync(sub ? `${dir}/${sub}` : dir)) {
    const rel = sub ? `${sub}/${e.name}` : e.name;
    if (e.isDirectory) sizes(dir, rel, out);
    else out.set(rel, Deno.statSync(`${dir}/${rel}`).size);
  }
  return out;
}

/** Total bytes under a path. */
function du(path: string): number {
  const st = Deno.statSync(path);
  if (!st.isDirectory) return st.size;
  let n = 0;
  for (const e of Deno.readDirSync(path)) n += du(`${path}/${e.name}`);
  return n;
}

/** What {@link collectGarbage} removed (or would remove, on a dry run). */
export interface GcReport {
  removed: string[];
  bytes: number;
  kept: number;
  tmpBytes: number;
}

/** Temp dirs of another host's processes older than this are taken as abandoned. */
const FOREIGN_TMP_MAX_AGE_MS = 2 * 86400e3;

/**
 * Removes store entries whose key is not in `live`, and temp dirs of processes that are
 * gone: exactly for this host's, by age (two days) for another host's on a shared home.
 * With `dryRun`, only measures.
 */
export function collectGarbage(store: Store, live: Set<string>, dryRun: boolean): GcReport {
  const removed: string[] = [];
  let bytes = 0, kept = 0, tmpBytes = 0;
  for (const key of store.keys()) {
    if (live.has(key)) {
      kept++;
      continue;
    }
    bytes += du(store.entry(key));
    if (!dryRun) Deno.removeSync(store.entry(key), { recursive: true });
    removed.push(key);
  }
  for (const e of Deno.readDirSync(`${store.home}/tmp`)) {
    const state = tagState(e.name.split(".")[1] ?? "");
    if (state === "alive") continue;
    if (state === "elsewhere") {
      const mtime = Deno.statSync(`${store.home}/tmp/${e.name}`).mtime?.getTime() ?? Date.now();
      if (Date.now() - mtime < FOREIGN_TMP_MAX_AGE_MS) continue;
    }
    tmpBytes += du(`${store.home}/tmp/${e.name}`);
    if (!dryRun) Deno.removeSync(`${store.home}/tmp/${e.name}`, { recursive: true });
  }
  return { removed, bytes, kept, tmpBytes };
}

/**
 * The store home: `$GRADDROP_HOME`, else `.graddrop/` in the project root.
 *
 * @example
 * ```ts
 * import { defaultHome } from "./store.ts";
 * if (!defaultHome().length) throw new Error("empty home");
 * ```
 */
export function defaultHome(): string {
  return Deno.env.get("GRADDROP_HOME") ?? `${new URL("..", import.meta.url).pathname}.graddrop`;
}
