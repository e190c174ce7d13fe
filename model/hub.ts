/**
 * The Hugging Face Hub cache, as `huggingface_hub` lays it out: a model id `org/name` lives in
 * `$HF_HUB_CACHE` (default `$HF_HOME/hub`, `~/.cache/huggingface/hub`) as
 * `models--org--name/`, whose `refs/main` names the snapshot under `snapshots/<revision>/`
 * (files there are links into `blobs/`). A checkpoint path that is not a directory but names
 * a cached model resolves to that snapshot.
 * @module
 */
import { UserInputError } from "../pipeline/errors.ts";

/** The hub cache directory, from the environment as `huggingface_hub` reads it. */
export function hubCacheDir(env: (k: string) => string | undefined = (k) => Deno.env.get(k)): string {
  const cache = env("HF_HUB_CACHE");
  if (cache) return cache;
  const home = env("HF_HOME") ?? `${env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`}/huggingface`;
  return `${home}/hub`;
}

/** Whether `s` reads as a Hub model id (`name` or `org/name`, optional `@revision`). */
export function isModelId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?(@[\w.-]+)?$/.test(s);
}

/**
 * The snapshot directory of a cached model id, or undefined when it is not cached. A cached
 * model whose `refs/main` points at a missing snapshot is an error.
 *
 * @example
 * ```ts
 * import { hubSnapshot } from "./hub.ts";
 * const hub = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${hub}/models--FacebookAI--xlm-roberta-base/refs`, { recursive: true });
 * Deno.mkdirSync(`${hub}/models--FacebookAI--xlm-roberta-base/snapshots/abc`, { recursive: true });
 * Deno.writeTextFileSync(`${hub}/models--FacebookAI--xlm-roberta-base/refs/main`, "abc");
 * const dir = hubSnapshot("FacebookAI/xlm-roberta-base", hub);
 * if (!dir?.endsWith("snapshots/abc")) throw new Error(String(dir));
 * ```
 */
export function hubSnapshot(id: string, cache = hubCacheDir()): string | undefined {
  if (!isModelId(id)) return undefined;
  const [name, rev = "main"] = id.split("@");
  const repo = `${cache}/models--${name.replaceAll("/", "--")}`;
  try {
    if (!Deno.statSync(repo).isDirectory) return undefined;
  } catch {
    return undefined;
  }
  let revision = rev;
  try {
    revision = Deno.readTextFileSync(`${repo}/refs/${rev}`).trim();
  } catch {
    // A revision given as a commit hash has no ref file.
  }
  const snap = `${repo}/snapshots/${revision}`;
  try {
    if (Deno.statSync(snap).isDirectory) return snap;
  } catch {
    // reported below
  }
  throw new UserInputError(
    `${id}: found ${repo} in the Hugging Face cache, but no snapshot ${revision} under snapshots/ (download it again)`,
  );
}
