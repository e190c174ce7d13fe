/**
 * The scheduler: walks a plan in dependency order, `jobs` instances at a time; reuses what
 * the store (or a remote cache) holds under each instance's key, runs the rest through a
 * {@link Runner}, commits what they wrote, and records the run. `staleness` answers the
 * same question without running anything (`status`, `--dry-run`, `plan`).
 * @module
 */
import { fileURLToPath } from "node:url";
import { cacheKey, explain, type FileDetails, type Keyer } from "./keys.ts";
import type { BuildLog, LatestParts } from "./records.ts";
import { type Runner, StageCrashed } from "./runner.ts";
import { hashTree, type Store } from "./store.ts";
import { tryLock } from "./lock.ts";
import { fault } from "./fault.ts";
import type { Instance, Plan } from "./plan.ts";
import type { WorkerSpec } from "./worker.ts";
import type { InputRef } from "./stage.ts";
import type { KeyParts, Manifest, PushOutcome, StageResult, StaleInfo } from "./types.ts";
import { UserInputError } from "./errors.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A remote cache as the scheduler uses it. */
export interface RemoteStore {
  fetchEntry(key: string, store: Store): Promise<"hit" | "miss">;
  /** Uploads a local entry; never throws, says how it went. */
  pushEntry(key: string, store: Store): Promise<PushOutcome>;
  /** The entry's manifest on the remote (to plan without downloading), if it has one. */
  manifest(key: string): Promise<Manifest | undefined>;
}

/** Which instances to rerun although cached. */
export type Force = Set<string> | "all";

/** Options for {@link execute}. */
export interface ExecuteOptions {
  jobs: number;
  force: Force;
  /** Where progress lines go (stderr in the CLI). */
  progress: (line: string) => void;
  /** Directory for published results, e.g. `results/<pipeline>`. */
  resultsDir?: string;
  /** Environment added for every stage process (e.g. Mesa's shader cache, thread counts). */
  env: Record<string, string>;
  runner: Runner;
  keyer: Keyer;
  log: BuildLog;
  /** Aborted on SIGINT/SIGTERM: running stages are stopped, nothing partial is kept. */
  signal: AbortSignal;
  remote?: { store: RemoteStore; push: boolean };
  /** Seconds without output before a stage is killed, when its declaration sets no `timeout`. */
  defaultTimeout: number;
  /** Stack traces of failing stages on the terminal (`--debug`). */
  debug: boolean;
}

/**
 * Times a stage that died of a native crash runs again. Such a crash (llvmpipe's WebGPU has
 * segfaulted under memory pressure) is not the stage's doing; stages are deterministic and
 * resume from their work directory, so the rerun gives the same bytes. Once: a crash that
 * repeats is a bug to see, not to hide.
 */
const CRASH_RETRIES = 1;

/** Whether `force` names this instance (by id or by stage). */
function isForced(force: Force, inst: Instance): boolean {
  return force === "all" || force.has(inst.id) || force.has(inst.stage);
}

/**
 * Says for each instance whether it is cached or stale, and why, without running anything.
 * Forced instances count as stale, and so does everything downstream of a stale instance.
 *
 * @example
 * ```ts ignore
 * for (const s of await staleness(plan, plan.instances, store, keyer, log, new Set())) console.log(s.id, s.state);
 * ```
 */
export async function staleness(
  plan: Plan,
  instances: Instance[],
  store: Store,
  keyer: Keyer,
  log: BuildLog,
  force: Force,
  remote?: RemoteStore,
): Promise<StaleInfo[]> {
  const outHash = new Map<string, string>();
  const prev = log.latest(plan.pipeline);
  const out: StaleInfo[] = [];
  for (const inst of instances) {
    const ups = inst.needs.flatMap((n) => n.ids);
    const unknown = ups.filter((u) => !outHash.has(u));
    if (unknown.length > 0) {
      const list = `${unknown.slice(0, 3).join(", ")}${unknown.length > 3 ? ", ..." : ""}`;
      out.push({ id: inst.id, state: "stale", key: null, reasons: [`upstream will run: ${list}`] });
      continue;
    }
    let parts: Awaited<ReturnType<Keyer["parts"]>>;
    try {
      parts = await keyer.parts(inst, Object.fromEntries(ups.map((u) => [u, outHash.get(u)!])));
    } catch (e) {
      if (e instanceof UserInputError) throw new UserInputError(`${inst.id}: ${e.message}`);
      throw e;
    }
    const key = cacheKey(parts);
    // Sizes only: planning stays quick, and a damaged entry is not promised as cached.
    const damage = store.manifest(key) && await store.check(key, "sizes");
    const local = damage ? undefined : store.manifest(key);
    const m = local ?? (isForced(force, inst) ? undefined : await remote?.manifest(key));
    if (m && !isForced(force, inst)) {
      outHash.set(inst.id, m.outputHash);
      out.push({ id: inst.id, state: "cached", key, reasons: [], ...(local ? {} : { remote: true }) });
    } else {
      const reasons = m
        ? ["forced"]
        : damage
        ? [`its store entry is damaged: ${damage}`]
        : explain(prev[inst.id], parts);
      out.push({ id: inst.id, state: "stale", key, reasons });
    }
  }
  return out;
}

/**
 * Runs the given instances of a plan, reusing cached entries.
 *
 * @example
 * ```ts ignore
 * const results = await execute(plan, plan.instances, store, { jobs: 2, force: new Set(), ... });
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
  const ran: LatestParts = {};
  const pending = [...instances];
  const running = new Map<string, Promise<void>>();

  const resolveOne = async (inst: Instance) => {
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    let key: string | undefined;
    try {
      const ups = inst.needs.flatMap((n) => n.ids);
      const { details, ...parts } = await opts.keyer.parts(
        inst,
        Object.fromEntries(ups.map((u) => [u, outHash.get(u)!])),
      );
      key = cacheKey(parts);
      keys.set(inst.id, key);
      ran[inst.id] = { ...parts, key, details } as KeyParts & { key: string; details: FileDetails };
      const forced = isForced(opts.force, inst);
      const reuse = async (how: "cached" | "remote", note = "") => {
        const m = store.manifest(key!);
        if (!m) return false;
        // Never serve rot: a damaged entry is moved aside and recomputed.
        const problem = await store.check(key!);
        if (problem) {
          const aside = store.quarantine(key!);
          opts.progress(
            `[${inst.id}] store entry ${store.entry(key!)} is damaged (${problem}); moved to ${aside}`,
          );
          return false;
        }
        outHash.set(inst.id, m.outputHash);
        const result: StageResult = { id: inst.id, status: how, key, seconds: seconds() };
        results.set(inst.id, result);
        opts.progress(`[${inst.id}] ${how === "remote" ? "cached (remote)" : "cached"}${note}`);
        // An entry whose push was cut short (a kill, a dead server) reaches the remote now.
        if (how === "cached" && opts.remote?.push) {
          result.push = await opts.remote.store.pushEntry(key!, store);
        }
        return true;
      };
      if (!forced && await reuse("cached")) return;
      if (
        !forced && opts.remote && (await opts.remote.store.fetchEntry(key, store)) === "hit" &&
        await reuse("remote")
      ) {
        return;
      }
      let release: (() => void) | undefined;
      let waited = false;
      while (!(release = tryLock(`${store.home}/locks/${key}.lock`))) {
        if (opts.signal.aborted) throw new Error("interrupted");
        if (!waited) opts.progress(`[${inst.id}] waiting: another run is computing it`);
        waited = true;
        await new Promise((r) => setTimeout(r, 250));
        if (await reuse("cached", " (computed by another run)")) return;
      }
      try {
        // Another run may have finished it while we waited; a forced rerun only yields to that.
        if ((!forced || waited) && await reuse("cached", " (computed by another run)")) return;
        if (store.manifest(key)) Deno.removeSync(store.entry(key), { recursive: true });
        else if (existsDir(store.entry(key))) {
          // An entry without a readable manifest would block the commit: it is damaged too.
          opts.progress(
            `[${inst.id}] store entry ${store.entry(key)} has no manifest; moved to ${store.quarantine(key)}`,
          );
        }
        const manifest = await runInstance(plan, inst, key, parts, store, results, opts);
        outHash.set(inst.id, manifest.outputHash);
        opts.log.saveTiming(plan.pipeline, inst.stage, inst.type, manifest.seconds);
        const result: StageResult = { id: inst.id, status: "ran", key, seconds: manifest.seconds };
        results.set(inst.id, result);
        opts.progress(`[${inst.id}] done in ${fmtSeconds(manifest.seconds)}`);
        if (opts.remote?.push) result.push = await opts.remote.store.pushEntry(key, store);
      } finally {
        release();
      }
    } catch (e) {
      const message = (e as Error).message;
      const interrupted = opts.signal.aborted;
      results.set(inst.id, {
        id: inst.id,
        status: interrupted ? "interrupted" : "failed",
        key,
        seconds: seconds(),
        error: message,
      });
      if (!interrupted) opts.progress(`[${inst.id}] FAILED after ${fmtSeconds(seconds())}: ${message}`);
    }
  };

  while (pending.length > 0 || running.size > 0) {
    for (let i = 0; i < pending.length && !opts.signal.aborted;) {
      const inst = pending[i];
      const ups = inst.needs.flatMap((n) => n.ids);
      if (ups.some((u) => !results.has(u))) {
        i++;
        continue;
      }
      const bad = ups.find((u) => !["ran", "cached", "remote"].includes(results.get(u)!.status));
      if (!bad && running.size >= opts.jobs) break;
      pending.splice(i, 1);
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
    if (opts.signal.aborted && running.size === 0) break;
    if (running.size > 0) await Promise.race(running.values());
    else if (pending.length > 0) throw new Error(`scheduler stuck on ${pending.map((p) => p.id).join(", ")}`);
  }
  for (const inst of pending) {
    results.set(inst.id, { id: inst.id, status: "interrupted", seconds: 0, error: "not started" });
  }
  if (!opts.signal.aborted) {
    fault("buildlog");
    opts.log.record(plan.pipeline, ran);
    if (opts.resultsDir) publish(plan.instances, store, keys, results, opts.resultsDir);
  }
  return instances.map((i) => results.get(i.id)!);
}

async function runInstance(
  plan: Plan,
  inst: Instance,
  key: string,
  parts: KeyParts,
  store: Store,
  results: Map<string, StageResult>,
  opts: ExecuteOptions,
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
  const last = opts.log.eta(plan.pipeline, inst.stage, inst.type);
  const lastNote = !last
    ? ""
    : last.sameStage
    ? ` (ETA ~${fmtSeconds(last.seconds)} from an earlier run)`
    : ` (the last ${inst.type} stage took ${fmtSeconds(last.seconds)})`;
  opts.progress(`[${inst.id}] running${lastNote}`);
  let lastShown = 0;
  // The pace is measured from the first progress report, so set-up and a resumed run's
  // earlier steps do not skew it.
  let first: { at: number; fraction: number } | undefined;
  const runOnce = (attempt: number) =>
    opts.runner.run({
      id: inst.id,
      specPath: `${tmp}/spec.json`,
      logPath: `${tmp}/log.txt`,
      env: {
        ...opts.env,
        GRADDROP_HOME: store.home,
        GRADDROP_ATTEMPT: String(attempt),
        ...(opts.debug ? { GRADDROP_DEBUG: "1" } : {}),
      },
      signal: opts.signal,
      debug: opts.debug,
      timeoutSeconds: inst.timeout ?? opts.defaultTimeout,
      stallSeconds: Math.max(120, 3 * (last?.seconds ?? 0)),
      onProgress: (fraction, note) => {
        const now = performance.now();
        first ??= { at: now, fraction };
        if (now - lastShown > 2000 || fraction >= 1) {
          lastShown = now;
          const left = timeLeft(first.fraction, fraction, (now - first.at) / 1000);
          opts.progress(
            `[${inst.id}] ${(fraction * 100).toFixed(0)}% ${note}${
              left === undefined ? "" : `, ~${fmtSeconds(left)} left`
            }`,
          );
        }
      },
      onLine: (line) => opts.progress(`[${inst.id}] ${line}`),
      onStall: (s) =>
        opts.progress(
          `[${inst.id}] stalled? no progress for ${s} s${lastNote}`,
        ),
    });
  try {
    for (let attempt = 1;; attempt++) {
      try {
        await runOnce(attempt);
        break;
      } catch (e) {
        if (!(e instanceof StageCrashed) || attempt > CRASH_RETRIES) throw e;
        // What the crashed attempt wrote is not trusted; its work directory is (checkpoints are renamed into place).
        Deno.removeSync(spec.out, { recursive: true });
        Deno.mkdirSync(spec.out);
        opts.progress(
          `[${inst.id}] ${e.message} (a native fault, not the stage's error); running it again, attempt ${
            attempt + 1
          } of ${CRASH_RETRIES + 1}`,
        );
      }
    }
  } catch (e) {
    const failure = `${store.home}/work/${key}/last-failure.log`;
    try {
      Deno.renameSync(`${tmp}/log.txt`, failure);
    } catch {
      // No log was written (the runner failed before the stage started).
    }
    Deno.removeSync(tmp, { recursive: true });
    const message = diskFull(e, store) ?? (e as Error).message;
    throw new Error(message === "interrupted" ? message : `${message} (log: ${failure})`);
  }
  try {
    fault("stage-finished");
    return await commitInstance(plan, inst, key, parts, store, tmp, started);
  } catch (e) {
    // A full disk or any other failure here keeps nothing: the half-made entry goes.
    Deno.removeSync(tmp, { recursive: true });
    const full = diskFull(e, store);
    throw full ? new Error(full) : e;
  }
}

/** One line for a full disk met by the engine itself (the stage's log, the commit), else undefined. */
function diskFull(e: unknown, store: Store): string | undefined {
  if ((e as { code?: string }).code !== "ENOSPC") return undefined;
  return `disk full while writing to ${store.home}: ${(e as Error).message}`;
}

/** Hashes what the stage wrote and commits it with its manifest. */
async function commitInstance(
  plan: Plan,
  inst: Instance,
  key: string,
  parts: KeyParts,
  store: Store,
  tmp: string,
  started: Date,
): Promise<Manifest> {
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
    inputFiles: parts.inputFiles,
    environment: parts.environment,
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
  store.commit(tmp, manifest, tree.list);
  return manifest;
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
    })
      .outputSync();
    gitCommit = r.success ? new TextDecoder().decode(r.stdout).trim() : undefined;
  } catch {
    gitCommit = undefined;
  }
  return gitCommit;
}

function publish(
  instances: Instance[],
  store: Store,
  keys: Map<string, string>,
  results: Map<string, StageResult>,
  dir: string,
): void {
  const folder = publishFolders(instances);
  for (const inst of instances) {
    const files = inst.definition.publish ?? [];
    const r = results.get(inst.id);
    if (files.length === 0 || !r || !["ran", "cached", "remote"].includes(r.status)) continue;
    for (const f of files) {
      const target = folder(inst, f) ? `${dir}/${inst.id}` : dir;
      Deno.mkdirSync(target, { recursive: true });
      fault("publish");
      try {
        Deno.copyFileSync(`${store.entry(keys.get(inst.id)!)}/out/${f}`, `${target}/${f}`);
      } catch {
        // A stage may publish a file only in some configurations.
      }
    }
  }
}

/**
 * Whether an instance publishes a file into a folder of its own under the results directory:
 * always for a matrix cell; for a plain stage, when a later stage of the plan publishes a file
 * of the same name, which keeps the top-level spot (so two stages never overwrite each other's
 * file, whichever of them a run includes).
 *
 * @example
 * ```ts ignore
 * const folder = publishFolders(plan.instances);
 * folder(checkpointRetrieval, "metrics.json"); // true: the analysis publishes metrics.json too
 * ```
 */
export function publishFolders(instances: Instance[]): (inst: Instance, file: string) => boolean {
  const last = new Map<string, string>();
  for (const inst of instances) {
    if (Object.keys(inst.matrix).length > 0) continue;
    for (const f of inst.definition.publish ?? []) last.set(f, inst.id);
  }
  return (inst, file) => Object.keys(inst.matrix).length > 0 || last.get(file) !== inst.id;
}

function existsDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * `12.3s`, `4m05s` or `7h02m`.
 *
 * @example
 * ```ts
 * import { fmtSeconds } from "./execute.ts";
 * if (fmtSeconds(245) !== "4m05s") throw new Error(fmtSeconds(245));
 * if (fmtSeconds(25_320) !== "7h02m") throw new Error(fmtSeconds(25_320));
 * ```
 */
export function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Seconds a stage has left at the pace it has kept since its first progress report (at
 * `fromFraction`, `elapsed` seconds ago), or undefined before that pace means anything
 * (under 30 s, or no progress yet) and once it is done.
 *
 * @example
 * ```ts
 * import { timeLeft } from "./execute.ts";
 * // Resumed at 5%, now at 10% after 10 minutes: 90% to go at 5% per 10 minutes.
 * if (timeLeft(0.05, 0.1, 600) !== 10_800) throw new Error("pace");
 * if (timeLeft(0.05, 0.05, 600) !== undefined) throw new Error("no progress yet");
 * ```
 */
export function timeLeft(fromFraction: number, fraction: number, elapsed: number): number | undefined {
  if (elapsed < 30 || fraction >= 1 || fraction <= fromFraction) return undefined;
  return Math.round(elapsed * (1 - fraction) / (fraction - fromFraction));
}
