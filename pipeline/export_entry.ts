/**
 * Copies part of a store entry out of the store with a `provenance.json` beside it, so a
 * file that leaves the cache (a checkpoint shipped in the repository) still says how it was
 * made and can be checked byte for byte.
 * @module
 */
import { sha256File } from "./hash.ts";
import type { Plan } from "./plan.ts";
import type { Store } from "./store.ts";
import type { Manifest } from "./types.ts";
import { UserInputError } from "./errors.ts";

/** What `provenance.json` holds. */
export interface Provenance {
  pipeline: string;
  instance: string;
  type: string;
  key: string;
  params: Record<string, unknown>;
  /** Every stage instance this one depends on, transitively, with its type and params. */
  upstream: Record<string, { type: string; params: Record<string, unknown> }>;
  code: { hash: string; parts: Record<string, string> };
  environment?: Record<string, string>;
  /** What the stage itself recorded (its own provenance.json). */
  stage?: Record<string, unknown>;
  git?: string;
  deno: string;
  finished: string;
  /** File name -> sha256 of every exported file. */
  sha256: Record<string, string>;
}

/**
 * Exports `out/<path>/*` (and `extra` files from `out/`) of the entry to `to`, writing
 * `provenance.json` last.
 *
 * @example
 * ```ts ignore
 * await exportEntry(store, manifest, plan, { path: "checkpoint", to: "models/small", extra: ["curve.jsonl"] });
 * ```
 */
export async function exportEntry(
  store: Store,
  m: Manifest,
  plan: Plan,
  o: { path: string; to: string; extra: string[]; baseDir: string },
): Promise<{ files: string[] }> {
  const src = `${store.entry(m.key)}/out/${o.path}`.replace(/\/+$/, "");
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(src)].filter((e) => e.isFile);
  } catch {
    throw new UserInputError(`--path ${o.path}: not a directory in ${m.id}'s output`);
  }
  Deno.mkdirSync(o.to, { recursive: true });
  const sha: Record<string, string> = {};
  const copy = async (from: string, name: string) => {
    Deno.copyFileSync(from, `${o.to}/${name}`);
    sha[name] = await sha256File(`${o.to}/${name}`);
  };
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) await copy(`${src}/${e.name}`, e.name);
  for (const f of o.extra) {
    try {
      await copy(`${store.entry(m.key)}/out/${f}`, f.split("/").pop()!);
    } catch {
      throw new UserInputError(`--with ${f}: not a file in ${m.id}'s output`);
    }
  }
  const upstream: Provenance["upstream"] = {};
  const visit = (id: string) => {
    for (const n of plan.byId.get(id)!.needs) {
      for (const u of n.ids) {
        if (upstream[u]) continue;
        const inst = plan.byId.get(u)!;
        upstream[u] = { type: inst.type, params: relativePaths(inst.params, o.baseDir) };
        visit(u);
      }
    }
  };
  visit(m.id);
  const prov: Provenance = {
    pipeline: m.pipeline,
    instance: m.id,
    type: m.type,
    key: m.key,
    params: relativePaths(m.params, o.baseDir),
    upstream,
    code: m.code,
    environment: m.environment,
    stage: m.provenance,
    git: m.git,
    deno: m.deno,
    finished: m.finished,
    sha256: sha,
  };
  Deno.writeTextFileSync(`${o.to}/provenance.json`, JSON.stringify(prov, null, 2) + "\n");
  return { files: Object.keys(sha) };
}

/**
 * Copies `<path>/*` of an instance's work directory (the resumable state of a run not yet
 * finished, e.g. a long pretraining) to `to`, so it can be committed and picked up on a
 * machine whose cache is empty. A stage replaces its checkpoint by renaming a finished copy
 * over it; a copy that meets the gap, or sees the directory change under it, tries again.
 *
 * @example
 * ```ts ignore
 * await exportWork(store, key, { id: "pretrain", path: "checkpoint", to: "models/shape-resume" });
 * ```
 */
export async function exportWork(
  store: Store,
  key: string,
  o: { id: string; path: string; to: string },
): Promise<{ files: string[] }> {
  const src = `${store.work(key)}/${o.path}`.replace(/\/+$/, "");
  for (let attempt = 0;; attempt++) {
    try {
      const before = Deno.statSync(src).ino;
      const names = [...Deno.readDirSync(src)].filter((e) => e.isFile).map((e) => e.name).sort();
      Deno.mkdirSync(o.to, { recursive: true });
      for (const n of names) Deno.copyFileSync(`${src}/${n}`, `${o.to}/${n}`);
      // A directory renamed over the old one mid-copy would mix two steps' files.
      if (Deno.statSync(src).ino === before) return { files: names };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (attempt === 3) {
      throw new UserInputError(
        `--path ${o.path}: not a directory in ${o.id}'s work directory (${src}), or it kept changing`,
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** Params with paths under `base` written relative to it, so provenance does not name this machine's directories. */
function relativePaths(params: Record<string, unknown>, base: string): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(params).map((
      [k, v],
    ) => [k, typeof v === "string" && v.startsWith(`${base}/`) ? v.slice(base.length + 1) : v]),
  );
}

/**
 * Checks every file a `provenance.json` in `dir` lists against its sha256; a directory
 * without one (a checkpoint a user brings) passes. Throws naming the file and both digests.
 */
export async function verifyProvenance(dir: string): Promise<Provenance | undefined> {
  let prov: Provenance;
  try {
    prov = JSON.parse(Deno.readTextFileSync(`${dir}/provenance.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new UserInputError(`${dir}/provenance.json: not valid JSON: ${(e as Error).message}`);
  }
  for (const [name, want] of Object.entries(prov.sha256 ?? {})) {
    let got: string;
    try {
      got = await sha256File(`${dir}/${name}`);
    } catch {
      throw new UserInputError(`${dir}/${name}: missing (provenance.json lists it)`);
    }
    if (got !== want) {
      throw new UserInputError(`${dir}/${name}: sha256 ${got} does not match provenance.json's ${want}`);
    }
  }
  return prov;
}
