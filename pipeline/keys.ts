/**
 * Cache keys and why they change: an instance's key hashes its stage type, its params (input
 * paths left out), the output hashes of its upstream instances (early cutoff), the content
 * of its input files, the environment its stage type reports, and its code fingerprint.
 * `explain` turns two sets of key parts into the reasons `status` and `--dry-run` print.
 * @module
 */
import { canonicalJson, sha256 } from "./hash.ts";
import { fingerprint } from "./fingerprint.ts";
import type { InputHasher } from "./input_files.ts";
import type { Instance } from "./plan.ts";
import { declaredInputPaths } from "./stage.ts";
import type { KeyParts } from "./types.ts";

/** Directory contents behind `KeyParts.inputFiles`, kept in run records to name a changed file. */
export type FileDetails = Record<string, Record<string, string>>;

/** Computes key parts; remembers each stage type's environment per params within a process. */
export class Keyer {
  private readonly envs = new Map<string, Promise<Record<string, string>>>();

  constructor(private readonly hasher: InputHasher) {}

  /** Key parts of `inst` given its upstream instances' output hashes. */
  async parts(
    inst: Instance,
    upstream: Record<string, string>,
  ): Promise<KeyParts & { details: FileDetails }> {
    const paths = declaredInputPaths(inst.definition.schema);
    const params: Record<string, unknown> = {};
    const inputFiles: Record<string, string> = {};
    const details: FileDetails = {};
    for (const [k, v] of Object.entries(inst.params)) {
      if (!paths.has(k) || typeof v !== "string") {
        params[k] = v;
        continue;
      }
      const h = this.hasher.hashDetailed(v, `with.${k}`);
      inputFiles[k] = h.sha256;
      if (h.entries) details[k] = h.entries;
    }
    return {
      type: inst.type,
      params,
      inputs: upstream,
      inputFiles,
      environment: await this.environment(inst),
      code: fingerprint(inst.modulePath),
      details,
    };
  }

  private environment(inst: Instance): Promise<Record<string, string>> {
    const hook = inst.definition.environment;
    if (!hook) return Promise.resolve({});
    const k = `${inst.type}|${canonicalJson(inst.params)}`;
    let p = this.envs.get(k);
    if (!p) this.envs.set(k, p = hook(inst.params));
    return p;
  }
}

/**
 * The cache key: sha256 over the parts that decide an output.
 *
 * @example
 * ```ts
 * import { cacheKey } from "./keys.ts";
 * const parts = { type: "t", params: {}, inputs: {}, inputFiles: {}, environment: {}, code: { hash: "c", parts: {} } };
 * if (cacheKey(parts) === cacheKey({ ...parts, environment: { backend: "wasm" } })) throw new Error("env must count");
 * ```
 */
export function cacheKey(p: KeyParts): string {
  return sha256(canonicalJson({
    type: p.type,
    params: p.params,
    inputs: p.inputs,
    inputFiles: p.inputFiles,
    environment: p.environment,
    code: p.code.hash,
  }));
}

function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) =>
    JSON.stringify(a[k]) !== JSON.stringify(b[k])
  );
}

/**
 * Human reasons why `now` differs from the parts of the last run (`prev`).
 *
 * @example
 * ```ts
 * import { explain } from "./keys.ts";
 * const base = { type: "t", params: { lr: 1 }, inputs: {}, inputFiles: {}, environment: {}, code: { hash: "c", parts: {} } };
 * const why = explain({ ...base, key: "k" }, { ...base, params: { lr: 2 } });
 * if (why[0] !== "param lr: 1 -> 2") throw new Error(why.join("; "));
 * ```
 */
export function explain(
  prev: (KeyParts & { key: string; details?: FileDetails }) | undefined,
  now: KeyParts & { details?: FileDetails },
): string[] {
  if (!prev) return ["never run"];
  const why: string[] = [];
  for (const k of changedKeys(prev.params, now.params)) {
    why.push(
      `param ${k}: ${JSON.stringify(prev.params[k]) ?? "unset"} -> ${
        JSON.stringify(now.params[k]) ?? "unset"
      }`,
    );
  }
  for (const k of changedKeys(prev.inputFiles ?? {}, now.inputFiles)) {
    const a = prev.details?.[k], b = now.details?.[k];
    const files = a && b ? changedKeys(a, b) : [];
    const named = files.length ? `: ${files.slice(0, 3).join(", ")}${files.length > 3 ? ", ..." : ""}` : "";
    why.push(`input file changed: with.${k}${named}`);
  }
  for (const k of changedKeys(prev.inputs, now.inputs)) why.push(`input ${k} changed`);
  for (const k of changedKeys(prev.environment ?? {}, now.environment)) {
    why.push(`environment ${k}: ${prev.environment?.[k] ?? "unset"} -> ${now.environment[k] ?? "unset"}`);
  }
  if (prev.code.hash !== now.code.hash) {
    const changed = changedKeys(prev.code.parts, now.code.parts);
    why.push(`code changed: ${changed.slice(0, 4).join(", ")}${changed.length > 4 ? ", ..." : ""}`);
  }
  return why.length ? why : ["cache entry missing (removed or never finished)"];
}
