/**
 * Executes a plan against the store: computes each instance's cache key, reuses what is
 * cached, runs the rest (each in its own Deno subprocess, `jobs` at a time), and explains
 * what is stale and why.
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { canonicalJson, sha256 } from "./hash.ts";
import { fingerprint } from "./fingerprint.ts";
import { du, hashTree, type Manifest, Store } from "./store.ts";
import { tryLock } from "./lock.ts";
import type { Instance, Plan } from "./plan.ts";
import { PROGRESS_PREFIX, type WorkerSpec } from "./worker.ts";
import { gpuEnv } from "../platform/gpu_env.ts";
import type { InputRef } from "./stage.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

/** Outcome of one instance in a run. */
export interface StageResult {
  id: string;
  status: "ran" | "cached" | "failed" | "skipped";
  key?: string;
  seconds: number;
  error?: string;
}

/** Why an instance would (or would not) run. */
export interface StaleInfo {
  id: string;
  state: "cached" | "stale";
  key?: string;
  reasons: string[];
}

interface KeyParts {
  type: string;
  params: Record<string, unknown>;
  inputs: Record<string, string>;
  code: { hash: string; parts: Record<string, string> };
}

/** The components of an instance's key given its inputs' output hashes. */
function keyParts(inst: Instance, inputs: Record<string, string>): KeyParts {
  return { type: inst.type, params: inst.params, inputs, code: fingerprint(inst.modulePath) };
}

/** Cache key: sha256 over type, canonical params, input output-hashes and code fingerprint. */
export function cacheKey(p: KeyParts): string {
  return sha256(canonicalJson({ type: p.type, params: p.params, inputs: p.inputs, code: p.code.hash }));
}

type RunRecord = Record<string, KeyParts & { key: string }>;

function readRuns(store: Store, pipeline: string): RunRecord {
  try {
    return JSON.parse(Deno.readTextFileSync(`${store.home}/runs/${pipeline}.json`));
  } catch {
    return {};
  }
}

function writeRuns(store: Store, pipeline: string, update: RunRecord): void {
  const path = `${store.home}/runs/${pipeline}.json`;
  const merged = { ...readRuns(store, pipeline), ...update };
  const tmp = `${path}.${Deno.pid}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(merged));
  Deno.renameSync(tmp, path);
}

/** Human reasons why `now` differs from the previous run's parts. */
function explain(prev: (KeyParts & { key: string }) | undefined, now: KeyParts): string[] {
  if (!prev) return ["never run"];
  const why: string[] = [];
  for (const k of new Set([...Object.keys(prev.params), ...Object.keys(now.params)])) {
    const a = JSON.stringify(prev.params[k]), b = JSON.stringify(now.params[k]);
    if (a !== b) why.push(`param ${k}: ${a ?? "unset"} -> ${b ?? "unset"}`);
  }
  for (const k of new Set([...Object.keys(prev.inputs), ...Object.keys(now.inputs)])) {
    if (prev.inputs[k] !== now.inputs[k]) why.push(`input ${k} changed`);
  }
  if (prev.code.hash !== now.code.hash) {
    const files = new Set([...Object.keys(prev.code.parts), ...Object.keys(now.code.parts)]);
    const changed = [...files].filter((f) => prev.code.parts[f] !== now.code.parts[f]);
    why.push(`code changed: ${changed.slice(0, 4).join(", ")}${changed.length > 4 ? ", ..." : ""}`);
  }
  return why.length ? why : ["cache entry missing (removed or never finished)"];
}

/**
 * Says for each instance whether it is cached or stale, and why, without running anything.
 *
 * @example
 * ```ts
 * for (const s of staleness(plan, plan.instances, new Store(".graddrop"))) console.log(s.id, s.state);
 * ```
 */
export function staleness(plan: Plan, instances: Instance[], store: Store): StaleInfo[] {
  const outHash = new Map<string, string>();
  const prev = readRuns(store, plan.pipeline);
  const out: StaleInfo[] = [];
  for (const inst of instances) {
    const ups = inst.needs.flatMap((n) => n.ids);
    const unknown = ups.filter((u) => !outHash.has(u));
    if (unknown.length > 0) {
      out.push({
        id: inst.id,
        state: "stale",
        reasons: [`upstream will run: ${unknown.slice(0, 3).join(", ")}${unknown.length > 3 ? ", ..." : ""}`],
      });
      continue;
    }
    const parts = keyParts(inst, Object.fromEntries(ups.map((u) => [u, outHash.get(u)!])));
    const key = cacheKey(parts);
    const m = store.manifest(key);
    if (m) {
      outHash.set(inst.id, m.outputHash);
      out.push({ id: inst.id, state: "cached", key, reasons: [] });
    } else {
      out.push({ id: inst.id, state: "stale", key, reasons: explain(prev[inst.id], parts) });
    }
  }
  return out;
}

/** Options for {@link execute}. */
export interface ExecuteOptions {
  jobs: number;
  force: Set<string> | "all";
  /** Where progress lines go (stderr in the CLI). */
  progress: (line: string) => void;
  /** Directory for published results, e.g. `results/<pipeline>`. */
  resultsDir?: string;
}

interface Timings {
  [stage: string]: number;
}

function loadTimings(store: Store): Timings {
  try {
    return JSON.parse(Deno.readTextFileSync(`${store.home}/timings.json`));
  } catch {
    return {};
  }
}

function saveTiming(store: Store, name: string, seconds: number): void {
  const t = loadTimings(store);
  t[name] = seconds;
  const path = `${store.home}/timings.json`;
  Deno.writeTextFileSync(`${path}.${Deno.pid}`, JSON.stringify(t));
  Deno.renameSync(`${path}.${Deno.pid}`, path);
}

let gitCommit: string | undefined | null = null;
function gitHead(): string | undefined {
  if (gitCommit !== null) return gitCommit;
  try {
    const r = new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    gitCommit = r.success ? new TextDecoder().decode(r.stdout).trim() : undefined;
  } catch {
    gitCommit = undefined;
  }
  return gitCommit;
}

/**
 * Runs the given instances of a plan, reusing cached entries.
 *
 * @example
 * ```ts
 * const results = await execute(plan, plan.instances, new Store(".graddrop"), { jobs: 1, force: new Set(), progress: console.error });
 * ```
 */
export async function execute(
  plan: Plan,
  instances: Instance[],
  store: Store,
  opts: ExecuteOptions,
): Promise<StageResult[]> {
  const results = new Map<string, StageResult>();
  const outHash = new Map<string, string>();
  const keys = new Map<string, string>();
  const runs: RunRecord = {};
  const timings = loadTimings(store);
  const pending = [...instances];
  const running = new Map<string, Promise<void>>();

  const resolveOne = async (inst: Instance) => {
    const t0 = performance.now();
    const ups = inst.needs.flatMap((n) => n.ids);
    const parts = keyParts(inst, Object.fromEntries(ups.map((u) => [u, outHash.get(u)!])));
    const key = cacheKey(parts);
    keys.set(inst.id, key);
    runs[inst.id] = { ...parts, key };
    const forced = opts.force === "all" || opts.force.has(inst.id) || opts.force.has(inst.stage);
    let release: (() => void) | undefined;
    let waited = false;
    const reuse = (how: string) => {
      const m = store.manifest(key);
      if (!m || (forced && !waited)) return false;
      outHash.set(inst.id, m.outputHash);
      results.set(inst.id, { id: inst.id, status: "cached", key, seconds: (performance.now() - t0) / 1000 });
      opts.progress(`[${inst.id}] cached${how}`);
      return true;
    };
    while (true) {
      if (reuse(waited ? " (computed by another run)" : "")) return;
      release = tryLock(`${store.home}/locks/${key}.lock`);
      if (release) break;
      if (!waited) opts.progress(`[${inst.id}] waiting: another run is computing it`);
      waited = true;
      await new Promise((r) => setTimeout(r, 250));
    }
    try {
      // Another run may have finished it between our check and taking the lock.
      if (reuse(" (computed by another run)")) return;
      if (store.manifest(key)) Deno.removeSync(store.entry(key), { recursive: true });
      const eta = timings[`${plan.pipeline}/${inst.stage}`] ?? timings[inst.type];
      opts.progress(`[${inst.id}] running${eta ? ` (ETA ~${fmtSeconds(eta)} from an earlier run)` : ""}`);
      const manifest = await runInstance(plan, inst, key, parts, store, opts, results);
      outHash.set(inst.id, manifest.outputHash);
      saveTiming(store, `${plan.pipeline}/${inst.stage}`, manifest.seconds);
      saveTiming(store, inst.type, manifest.seconds);
      results.set(inst.id, { id: inst.id, status: "ran", key, seconds: manifest.seconds });
      opts.progress(`[${inst.id}] done in ${fmtSeconds(manifest.seconds)}`);
    } catch (e) {
      const seconds = (performance.now() - t0) / 1000;
      results.set(inst.id, { id: inst.id, status: "failed", key, seconds, error: (e as Error).message });
      opts.progress(`[${inst.id}] FAILED after ${fmtSeconds(seconds)}: ${(e as Error).message}`);
    } finally {
      release?.();
    }
  };

  while (pending.length > 0 || running.size > 0) {
    let started = false;
    for (let i = 0; i < pending.length;) {
      const inst = pending[i];
      const ups = inst.needs.flatMap((n) => n.ids);
      if (ups.some((u) => !results.has(u))) {
        i++;
        continue;
      }
      const bad = ups.find((u) =>
        results.get(u)!.status === "failed" || results.get(u)!.status === "skipped"
      );
      if (!bad && running.size >= opts.jobs) break;
      pending.splice(i, 1);
      started = true;
      if (bad) {
        results.set(inst.id, {
          id: inst.id,
          status: "skipped",
          seconds: 0,
          error: `needs ${bad}, which did not finish`,
        });
        opts.progress(`[${inst.id}] skipped: needs ${bad}`);
        continue;
      }
      running.set(inst.id, resolveOne(inst).finally(() => running.delete(inst.id)));
    }
    if (running.size > 0) await Promise.race(running.values());
    else if (!started && pending.length > 0) {
      throw new Error(`scheduler stuck on ${pending.map((p) => p.id).join(", ")}`);
    }
  }
  writeRuns(store, plan.pipeline, runs);
  if (opts.resultsDir) publish(instances, store, keys, results, opts.resultsDir);
  return instances.map((i) => results.get(i.id)!);
}

async function runInstance(
  plan: Plan,
  inst: Instance,
  key: string,
  parts: KeyParts,
  store: Store,
  opts: ExecuteOptions,
  results: Map<string, StageResult>,
): Promise<Manifest> {
  const started = new Date();
  const tmp = store.tmp(key);
  const inputs: InputRef[] = inst.needs.flatMap((n) =>
    n.ids.map((id) => {
      const up = plan.byId.get(id)!;
      return {
        stage: n.stage,
        type: up.type,
        id,
        matrix: up.matrix,
        params: up.params,
        dir: `${store.entry(results.get(id)!.key!)}/out`,
      };
    })
  );
  const spec: WorkerSpec = {
    id: inst.id,
    type: inst.type,
    modulePath: inst.modulePath,
    params: inst.params,
    matrix: inst.matrix,
    inputs,
    out: `${tmp}/out`,
    work: store.work(key),
  };
  Deno.writeTextFileSync(`${tmp}/spec.json`, JSON.stringify(spec, null, 2));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/pipeline/worker.ts`, `${tmp}/spec.json`],
    env: {
      ...gpuEnv(store.home),
      GRADDROP_HOME: store.home,
      // Cores per concurrently running stage, so multi-threaded stages do not oversubscribe.
      GRADDROP_THREADS: String(Math.max(1, Math.floor(navigator.hardwareConcurrency / opts.jobs))),
    },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const log = await Deno.open(`${tmp}/log.txt`, { write: true, create: true });
  const enc = new TextEncoder();
  let lastProgress = 0;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith(PROGRESS_PREFIX)) {
          const [frac, ...note] = line.slice(PROGRESS_PREFIX.length).split(" ");
          const now = performance.now();
          if (now - lastProgress > 2000 || Number(frac) >= 1) {
            lastProgress = now;
            opts.progress(`[${inst.id}] ${(Number(frac) * 100).toFixed(0)}% ${note.join(" ")}`);
          }
        } else {
          await log.write(enc.encode(line + "\n"));
          if (line.trim() && !line.includes("approve-scripts") && !/^\s*[│╭╰]/.test(line)) {
            opts.progress(`[${inst.id}] ${line}`);
          }
        }
      }
    }
    if (buf) await log.write(enc.encode(buf + "\n"));
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  log.close();
  if (!status.success) {
    const tail = Deno.readTextFileSync(`${tmp}/log.txt`).trim().split("\n").filter((l) =>
      l.startsWith("error:")
    ).pop();
    Deno.renameSync(`${tmp}/log.txt`, `${store.home}/work/${key}/last-failure.log`);
    Deno.removeSync(tmp, { recursive: true });
    throw new Error(
      `${
        tail?.slice(7) ?? `exited with ${status.signal ?? status.code}`
      } (log: ${store.home}/work/${key}/last-failure.log)`,
    );
  }
  Deno.removeSync(`${tmp}/spec.json`);
  const tree = await hashTree(`${tmp}/out`);
  let provenance: Record<string, unknown> | undefined;
  try {
    provenance = JSON.parse(Deno.readTextFileSync(`${tmp}/out/provenance.json`));
  } catch {
    provenance = undefined;
  }
  const finished = new Date();
  const manifest: Manifest = {
    key,
    id: inst.id,
    stage: inst.stage,
    type: inst.type,
    pipeline: plan.pipeline,
    params: inst.params,
    inputs: parts.inputs,
    code: parts.code,
    outputHash: tree.hash,
    files: tree.files,
    bytes: tree.bytes,
    deno: Deno.version.deno,
    git: gitHead(),
    provenance,
    started: started.toISOString(),
    finished: finished.toISOString(),
    seconds: (finished.getTime() - started.getTime()) / 1000,
  };
  store.commit(tmp, manifest);
  return manifest;
}

function publish(
  instances: Instance[],
  store: Store,
  keys: Map<string, string>,
  results: Map<string, StageResult>,
  dir: string,
): void {
  for (const inst of instances) {
    const files = inst.definition.publish ?? [];
    const r = results.get(inst.id);
    if (files.length === 0 || !r || (r.status !== "ran" && r.status !== "cached")) continue;
    const target = Object.keys(inst.matrix).length > 0 ? `${dir}/${inst.id}` : dir;
    Deno.mkdirSync(target, { recursive: true });
    for (const f of files) {
      const src = `${store.entry(keys.get(inst.id)!)}/out/${f}`;
      try {
        Deno.copyFileSync(src, `${target}/${f}`);
      } catch {
        // A stage may publish a file only in some configurations.
      }
    }
  }
}

/**
 * Removes store entries that no pipeline in the file reaches any more.
 * Returns the removed keys and bytes freed.
 */
export function gc(plans: Plan[], store: Store): { removed: string[]; bytes: number } {
  const live = new Set<string>();
  for (const plan of plans) {
    for (const s of staleness(plan, plan.instances, store)) if (s.key) live.add(s.key);
  }
  const removed: string[] = [];
  let bytes = 0;
  for (const key of store.keys()) {
    if (live.has(key)) continue;
    bytes += du(store.entry(key));
    Deno.removeSync(store.entry(key), { recursive: true });
    removed.push(key);
  }
  for (const e of Deno.readDirSync(`${store.home}/tmp`)) {
    const pid = Number(e.name.split(".")[1]);
    try {
      Deno.statSync(`/proc/${pid}`);
    } catch {
      bytes += du(`${store.home}/tmp/${e.name}`);
      Deno.removeSync(`${store.home}/tmp/${e.name}`, { recursive: true });
    }
  }
  return { removed, bytes };
}

/** `12.3s` or `4m05s`. */
export function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
}
