/**
 * The content-addressed store under `$GRADDROP_HOME`: entries are written to a temporary
 * directory and renamed into place only on success, so no partial output is ever reused.
 * @module
 */
import { sha256, sha256File } from "./hash.ts";

/** Provenance and identity of one cache entry. */
export interface Manifest {
  key: string;
  id: string;
  stage: string;
  type: string;
  pipeline: string;
  params: Record<string, unknown>;
  /** Upstream instance id -> its output hash. */
  inputs: Record<string, string>;
  code: { hash: string; parts: Record<string, string> };
  outputHash: string;
  files: number;
  bytes: number;
  deno: string;
  git?: string;
  provenance?: Record<string, unknown>;
  started: string;
  finished: string;
  seconds: number;
}

/** Where things live under the store root. */
export class Store {
  constructor(readonly home: string) {
    for (const d of ["store", "tmp", "work", "locks", "runs"]) {
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

  /** A fresh temporary entry directory, private to this process. */
  tmp(key: string): string {
    const dir = `${this.home}/tmp/${key}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}`;
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
export function du(path: string): number {
  const st = Deno.statSync(path);
  if (!st.isDirectory) return st.size;
  let n = 0;
  for (const e of Deno.readDirSync(path)) n += du(`${path}/${e.name}`);
  return n;
}
