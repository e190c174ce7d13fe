/**
 * The content-addressed store under `$GRADDROP_HOME`: entries are written to a temporary
 * directory and renamed into place only on success, so no partial output is ever reused.
 * @module
 */
import { sha256, sha256File } from "./hash.ts";
import { ownerTag, tagState } from "./lock.ts";
import type { Manifest } from "./types.ts";

/** Where things live under the store root. */
export class Store {
  constructor(readonly home: string) {
    for (const d of ["store", "tmp", "work", "locks"]) {
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

  /** Atomically publishes a finished temporary entry; the first writer wins. */
  commit(tmp: string, manifest: Manifest): void {
    Deno.writeTextFileSync(`${tmp}/manifest.json`, JSON.stringify(manifest, null, 2));
    try {
      Deno.renameSync(tmp, this.entry(manifest.key));
    } catch (e) {
      if (!this.manifest(manifest.key)) throw e;
      Deno.removeSync(tmp, { recursive: true });
    }
    try {
      Deno.removeSync(`${this.home}/work/${manifest.key}`, { recursive: true });
    } catch (e) {
      // An entry fetched from a remote cache never had a work directory.
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
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
export async function hashTree(dir: string): Promise<{ hash: string; files: number; bytes: number }> {
  const files = await listTree(dir);
  return { hash: treeHash(files), files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) };
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
