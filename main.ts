/**
 * graddrop CLI. One function per command; each returns its exit code: 0 success, 1 a stage
 * failed, 2 bad config or usage, 130/143 interrupted by SIGINT/SIGTERM.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, type LoadedConfig } from "./pipeline/config.ts";
import { ConfigError, UserInputError } from "./pipeline/errors.ts";
import { type Instance, makePlan, type Plan, restrict } from "./pipeline/plan.ts";
import { execute, fmtSeconds, type Force, staleness } from "./pipeline/execute.ts";
import { collectGarbage, defaultHome, Store } from "./pipeline/store.ts";
import { Keyer } from "./pipeline/keys.ts";
import { InputHasher, inputPathProblems } from "./pipeline/input_files.ts";
import { BuildLog } from "./pipeline/records.ts";
import { SubprocessRunner } from "./pipeline/runner.ts";
import { builtinStageTypes } from "./stages/registry.ts";
import type { Preflight } from "./pipeline/stage.ts";
import { normaliseRemotePush, remoteArgs, remoteFromEnv } from "./pipeline/remote_config.ts";
import type { RemoteCache } from "./pipeline/remote.ts";
import type { SlurmFlags, SubmissionPlan } from "./pipeline/slurm.ts";
import type { StageResult } from "./pipeline/types.ts";

const USAGE = `usage: main.ts <command> [PIPELINE] [options]
  run      [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--only ID]... [--force [ID]]... [--dry-run] [--jobs N] [--json]
           [--remote URL] [--remote-push[=require]]
  status   [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--json] [--remote URL]
  plan     [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--json] [--remote URL]
  dag      [PIPELINE] [--config FILE] [--json | --mermaid]
  slurm    [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--submit] [--fan-out STAGE] [--partition P]
           [--account A] [--time T] [--cpus-per-task N] [--mem M] [--gres G] [--array-max N]
           [--dir DIR] [--task-home DIR] [--remote URL]
  slurm-fan-in PIPELINE --dir DIR [--array-job ID] [--missing-only]   (what the fan-in job runs)
  gc       [--config FILE] [--dry-run] [--keep-days N]
  verify   [--dry-run] [--json]   (every store entry against its manifest, hashes included)
  export   PIPELINE --id INSTANCE --path DIR_IN_OUTPUT --to DIR [--with FILE]... [--work]
           (--work: from the instance's work directory, e.g. an unfinished run's resumable state)
  analyze  --metrics FILE [--primary A:B[,A:B...]] [--baseline METHOD] [--json]
  readme-results --analysis FILE [--snapshot PATH] [--readme README.md] | readme-results --check
  diff     DIR_A DIR_B [--json]
  doctor   [--json] [--expect-gpu]
  tokenize --tokenizer PATH [--pieces] [--special]   (lines on stdin, one JSON array per line)
common: --debug (stack traces), --help`;

interface Values {
  config: string;
  set: string[];
  only: string[];
  force: string[];
  "dry-run": boolean;
  jobs?: string;
  json: boolean;
  mermaid: boolean;
  "keep-days"?: string;
  debug: boolean;
  help: boolean;
  remote?: string;
  "remote-push"?: string;
  id?: string;
  path?: string;
  to?: string;
  with: string[];
  submit: boolean;
  partition?: string;
  account?: string;
  time?: string;
  "cpus-per-task"?: string;
  mem?: string;
  gres?: string;
  "array-max"?: string;
  "fan-out"?: string;
  "task-home"?: string;
  dir?: string;
  "array-job"?: string;
  "missing-only": boolean;
  work: boolean;
}

function parse(argv: string[]): { values: Values; positionals: string[] } {
  const { values, positionals } = parseArgs({
    args: normaliseRemotePush(normaliseForce(argv)),
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: "string", default: "pipelines.yaml" },
      set: { type: "string", multiple: true, default: [] },
      only: { type: "string", multiple: true, default: [] },
      force: { type: "string", multiple: true, default: [] },
      "dry-run": { type: "boolean", default: false },
      jobs: { type: "string" },
      json: { type: "boolean", default: false },
      mermaid: { type: "boolean", default: false },
      "keep-days": { type: "string" },
      debug: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      ...remoteArgs,
      id: { type: "string" },
      path: { type: "string" },
      to: { type: "string" },
      with: { type: "string", multiple: true, default: [] },
      submit: { type: "boolean", default: false },
      partition: { type: "string" },
      account: { type: "string" },
      time: { type: "string" },
      "cpus-per-task": { type: "string" },
      mem: { type: "string" },
      gres: { type: "string" },
      "array-max": { type: "string" },
      "fan-out": { type: "string" },
      "task-home": { type: "string" },
      dir: { type: "string" },
      "array-job": { type: "string" },
      "missing-only": { type: "boolean", default: false },
      work: { type: "boolean", default: false },
    },
  });
  return { values: values as Values, positionals };
}

/** `--force` with no value (last, or before another flag) means every stage. */
function normaliseForce(argv: string[]): string[] {
  return argv.flatMap((
    a,
    i,
  ) => (a === "--force" && (i + 1 >= argv.length || argv[i + 1].startsWith("-")) ? ["--force=*"] : [a]));
}

async function main(argv: string[]): Promise<number> {
  // These parse their own flags.
  if (argv[0] === "analyze") {
    const { analyzeCommand } = await import("./eval/analyze_command.ts");
    return await analyzeCommand(argv.slice(1));
  }
  if (argv[0] === "readme-results") {
    const { readmeResultsCommand } = await import("./eval/readme_results.ts");
    return await readmeResultsCommand(argv.slice(1));
  }
  if (argv[0] === "diff") {
    const { diffCommand } = await import("./eval/diff_command.ts");
    return await diffCommand(argv.slice(1));
  }
  if (argv[0] === "tokenize") {
    const { tokenizeCommand } = await import("./data/tokenize_command.ts");
    return await tokenizeCommand(argv.slice(1));
  }
  if (argv[0] === "doctor") {
    const { doctorCommand } = await import("./platform/doctor.ts");
    return await doctorCommand(argv.slice(1));
  }
  const { values, positionals } = parse(argv);
  const [command, pipeline, ...extra] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new ConfigError(`unexpected argument '${extra[0]}'\n${USAGE}`);
  switch (command) {
    case "run":
      return await runCommand(values, pipeline);
    case "status":
      return await statusCommand(values, pipeline);
    case "plan":
      return await planCommand(values, pipeline);
    case "dag":
      return await dagCommand(values, pipeline);
    case "gc":
      return await gcCommand(values, pipeline);
    case "verify":
      return await verifyCommand(values, pipeline);
    case "export":
      return await exportCommand(values, pipeline);
    case "slurm":
      return await slurmCommand(values, pipeline);
    case "slurm-fan-in":
      return await slurmFanInCommand(values, pipeline);
    default:
      throw new ConfigError(`unknown command '${command}'\n${USAGE}`);
  }
}

interface Context {
  cfg: LoadedConfig;
  plan: Plan;
  store: Store;
  keyer: Keyer;
  hasher: InputHasher;
  log: BuildLog;
  remote?: { cache: RemoteCache; push: boolean; requirePush: boolean };
}

/** Whether each instance of the plan is cached (locally or on the remote), nothing forced. */
function stalenessOfAll(ctx: Context): ReturnType<typeof staleness> {
  return staleness(ctx.plan, ctx.plan.instances, ctx.store, ctx.keyer, ctx.log, new Set(), ctx.remote?.cache);
}

async function context(values: Values, pipeline: string | undefined): Promise<Context> {
  const cfg = await loadConfig(values.config, pipeline, values.set);
  // Stage types may probe the WebGPU adapter here (their `environment`): give this process
  // the same Mesa settings the stages get, or Vulkan complains about XDG_RUNTIME_DIR.
  const { gpuEnv } = await import("./platform/gpu_env.ts");
  for (const [k, v] of Object.entries(gpuEnv(defaultHome()))) if (!Deno.env.get(k)) Deno.env.set(k, v);
  const name = pipeline ?? cfg.order[0];
  const plan = await makePlan(cfg, name, builtinStageTypes);
  const store = new Store(defaultHome());
  const hasher = new InputHasher(`${store.home}/stat_cache.json`);
  const remoteCfg = remoteFromEnv(values);
  let remote: Context["remote"];
  if (remoteCfg) {
    const { RemoteCache } = await import("./pipeline/remote.ts");
    remote = {
      cache: new RemoteCache({
        url: remoteCfg.url,
        token: remoteCfg.token,
        timeoutMs: remoteCfg.timeoutMs,
        minBytesPerSecond: remoteCfg.minBytesPerSecond,
        warn: (l) => console.error(l),
      }),
      push: remoteCfg.push,
      requirePush: remoteCfg.requirePush,
    };
  }
  return { cfg, plan, store, keyer: new Keyer(hasher), hasher, log: new BuildLog(store.home), remote };
}

/** The instances `--force` names (ids or stage names); `*` is every one. */
function forceSet(values: Values, plan: Plan): Force {
  if (values.force.includes("*")) return "all";
  const known = new Set(plan.instances.flatMap((i) => [i.id, i.stage]));
  for (const f of values.force) {
    if (!known.has(f)) {
      throw new ConfigError(
        `--force ${f}: no such stage or instance in pipeline '${plan.pipeline}' (stages: ${
          [...new Set(plan.instances.map((i) => i.stage))].join(", ")
        })`,
      );
    }
  }
  return new Set(values.force);
}

async function runCommand(values: Values, pipeline: string | undefined): Promise<number> {
  const ctx = await context(values, pipeline);
  const instances = restrict(ctx.plan, values.only);
  const force = forceSet(values, ctx.plan);
  const problems = inputPathProblems(instances);
  if (problems.length > 0) throw new ConfigError(problems.join("; "));
  const pre = await preflights(ctx.plan, instances);
  if (values["dry-run"]) {
    const code = await printStaleness(ctx, instances, force, values.json, "would run", pre);
    await refuseUnfit(ctx, instances, force, pre);
    return code;
  }
  await refuseUnfit(ctx, instances, force, pre);
  const jobs = Number(values.jobs ?? navigator.hardwareConcurrency);
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new ConfigError(`--jobs ${values.jobs}: expected a positive integer`);
  }
  const { gpuEnv } = await import("./platform/gpu_env.ts");
  const abort = new AbortController();
  const onSignal = (sig: "SIGINT" | "SIGTERM") => () => {
    if (!abort.signal.aborted) console.error(`${sig}: stopping running stages; nothing partial is kept`);
    abort.abort(sig);
  };
  const handlers = { SIGINT: onSignal("SIGINT"), SIGTERM: onSignal("SIGTERM") };
  for (const [sig, h] of Object.entries(handlers)) Deno.addSignalListener(sig as Deno.Signal, h);
  const t0 = performance.now();
  try {
    const results = await execute(ctx.plan, instances, ctx.store, {
      jobs,
      force,
      progress: (line) => console.error(line),
      resultsDir: `${dirname(values.config)}/results/${ctx.plan.pipeline}`,
      env: {
        ...gpuEnv(ctx.store.home),
        // Each stage may use its share of the cores (onnxruntime, tfjs stay single-threaded).
        GRADDROP_THREADS: String(Math.max(1, Math.floor(navigator.hardwareConcurrency / jobs))),
        ...(Deno.stderr.isTerminal() ? {} : { NO_COLOR: "1" }),
      },
      runner: new SubprocessRunner(),
      keyer: ctx.keyer,
      log: ctx.log,
      signal: abort.signal,
      defaultTimeout: 1800,
      debug: values.debug,
      remote: ctx.remote ? { store: ctx.remote.cache, push: ctx.remote.push } : undefined,
    });
    ctx.hasher.save();
    const total = (performance.now() - t0) / 1000;
    const remote = ctx.remote ? remoteSummary(results) : undefined;
    const pushFailed = ctx.remote?.requirePush && remote && remote.failed > 0;
    const ok = results.every((r) => ["ran", "cached", "remote"].includes(r.status)) && !pushFailed;
    if (values.json) {
      console.log(JSON.stringify({
        pipeline: ctx.plan.pipeline,
        ok,
        seconds: Number(total.toFixed(3)),
        stages: results.map((r) => ({
          id: r.id,
          status: r.status,
          key: r.key,
          seconds: Number(r.seconds.toFixed(3)),
          ...(r.error ? { error: r.error } : {}),
          ...(r.push ? { push: r.push } : {}),
        })),
        ...(remote ? { remote } : {}),
      }));
    }
    if (remote) {
      console.error(
        `remote: ${remote.fetched} fetched, ${remote.pushed} pushed (${remote.blobs} blobs, ${remote.bytes} bytes), ` +
          `${remote.present} already there, ${remote.failed} push${remote.failed === 1 ? "" : "es"} failed`,
      );
      for (const f of remote.failures) console.error(`remote: push of ${f.id} failed: ${f.reason}`);
      if (pushFailed) console.error("remote: --remote-push=require: a push failed, so the run fails");
    }
    const count = (...s: string[]) => results.filter((r) => s.includes(r.status)).length;
    if (abort.signal.aborted) {
      console.error(
        `interrupted: ${count("ran")} ran, ${count("cached", "remote")} cached; nothing partial was kept`,
      );
      return abort.signal.reason === "SIGINT" ? 130 : 143;
    }
    console.error(
      `${ok ? "ok" : "FAILED"}: ${count("ran")} ran, ${count("cached", "remote")} cached${
        count("remote") ? ` (${count("remote")} from the remote)` : ""
      }, ${count("failed")} failed, ${count("skipped")} skipped in ${fmtSeconds(total)}`,
    );
    return ok ? 0 : 1;
  } finally {
    for (const [sig, h] of Object.entries(handlers)) Deno.removeSignalListener(sig as Deno.Signal, h);
  }
}

/** What a run fetched from and pushed to the remote cache, for the summary and `--json`. */
function remoteSummary(results: StageResult[]) {
  const pushes = results.flatMap((r) => r.push ? [{ id: r.id, ...r.push }] : []);
  const of = (s: string) => pushes.filter((p) => p.status === s);
  return {
    fetched: results.filter((r) => r.status === "remote").length,
    pushed: of("pushed").length,
    present: of("present").length,
    failed: of("failed").length,
    blobs: pushes.reduce((n, p) => n + p.blobs, 0),
    bytes: pushes.reduce((n, p) => n + p.bytes, 0),
    failures: of("failed").map((p) => ({ id: p.id, reason: p.reason ?? "unknown" })),
  };
}

async function printStaleness(
  ctx: Context,
  instances: Instance[],
  force: Force,
  json: boolean,
  staleWord: string,
  pre = new Map<string, Preflight>(),
): Promise<number> {
  const info = await staleness(ctx.plan, instances, ctx.store, ctx.keyer, ctx.log, force, ctx.remote?.cache);
  ctx.hasher.save();
  if (json) {
    console.log(JSON.stringify({
      pipeline: ctx.plan.pipeline,
      stages: info.map((s) => pre.has(s.id) ? { ...s, preflight: pre.get(s.id) } : s),
    }));
  } else {
    for (const s of info) {
      const why = s.reasons.length ? `  (${s.reasons.join("; ")})` : "";
      const state = s.state === "stale" ? staleWord : s.remote ? "cached (remote)" : "cached";
      console.log(`${state}  ${s.id}${why}`);
    }
    for (const s of info) {
      if (s.state === "stale" && pre.has(s.id)) console.log(`memory  ${s.id}: ${pre.get(s.id)!.summary}`);
    }
  }
  return 0;
}

/** Each instance's statement before it runs (its stage type's `preflight`), by id. */
async function preflights(plan: Plan, instances: Instance[]): Promise<Map<string, Preflight>> {
  const out = new Map<string, Preflight>();
  for (const inst of instances) {
    if (!inst.definition.preflight) continue;
    const upstream = inst.needs.flatMap((n) => n.ids).map((id) => plan.byId.get(id)!)
      .map((u) => ({ stage: u.stage, type: u.type, params: u.params }));
    const p = await inst.definition.preflight(inst.params, upstream);
    if (p) out.set(inst.id, p);
  }
  return out;
}

/** Refuses the run, before anything starts, when an instance that would run says it cannot. */
async function refuseUnfit(ctx: Context, instances: Instance[], force: Force, pre: Map<string, Preflight>) {
  const unfit = instances.filter((i) => pre.get(i.id)?.refuse);
  if (unfit.length === 0) return;
  const info = await staleness(ctx.plan, unfit, ctx.store, ctx.keyer, ctx.log, force, ctx.remote?.cache);
  const stale = unfit.filter((_, k) => info[k].state === "stale");
  if (stale.length === 0) return;
  throw new UserInputError(
    `refused before starting: ${
      stale.map((i) => `${i.id} cannot run here: ${pre.get(i.id)!.refuse}`).join("; ")
    }`,
  );
}

async function statusCommand(values: Values, pipeline: string | undefined): Promise<number> {
  const ctx = await context(values, pipeline);
  return await printStaleness(ctx, ctx.plan.instances, new Set(), values.json, "stale");
}

async function planCommand(values: Values, pipeline: string | undefined): Promise<number> {
  const ctx = await context(values, pipeline);
  const info = await stalenessOfAll(ctx);
  ctx.hasher.save();
  const pre = await preflights(ctx.plan, ctx.plan.instances);
  const rows = ctx.plan.instances.map((inst, i) => ({
    id: inst.id,
    stage: inst.stage,
    type: inst.type,
    needs: inst.needs.flatMap((n) => n.ids),
    key: info[i].key,
    state: info[i].state,
    ...(pre.has(inst.id) ? { preflight: pre.get(inst.id) } : {}),
  }));
  if (values.json) console.log(JSON.stringify({ pipeline: ctx.plan.pipeline, instances: rows }));
  else {
    for (const r of rows) {
      console.log(
        `${r.state.padEnd(6)}  ${r.id}  (${r.type})${r.preflight ? `\n        ${r.preflight.summary}` : ""}`,
      );
    }
  }
  return 0;
}

async function dagCommand(values: Values, pipeline: string | undefined): Promise<number> {
  const { plan } = await context(values, pipeline);
  if (values.json) {
    console.log(JSON.stringify({
      pipeline: plan.pipeline,
      stages: plan.instances.map((i) => ({
        id: i.id,
        type: i.type,
        matrix: i.matrix,
        needs: i.needs.flatMap((n) => n.ids),
      })),
    }));
  } else if (values.mermaid) {
    const node = (id: string) => `n${plan.instances.findIndex((i) => i.id === id)}`;
    console.log("graph TD");
    for (const i of plan.instances) console.log(`  ${node(i.id)}["${i.id}<br/>${i.type}"]`);
    for (const i of plan.instances) {
      for (const n of i.needs) for (const u of n.ids) console.log(`  ${node(u)} --> ${node(i.id)}`);
    }
  } else {
    for (const i of plan.instances) {
      const needs = i.needs.flatMap((n) => n.ids);
      console.log(`${i.id}  (${i.type})${needs.length ? `  <- ${needs.join(", ")}` : ""}`);
    }
  }
  return 0;
}

/**
 * Checks every store entry in full (each file's size and sha256, the output hash); moves a
 * damaged one to `corrupt/` (not with `--dry-run`) so the next run recomputes it. Exit 1 if
 * any was damaged.
 */
async function verifyCommand(values: Values, pipeline: string | undefined): Promise<number> {
  if (pipeline) throw new ConfigError("verify takes no pipeline: it checks the whole store");
  const store = new Store(defaultHome());
  const damaged: { entry: string; problem: string; movedTo?: string }[] = [];
  const keys = store.keys();
  for (const key of keys) {
    const problem = await store.check(key, "full");
    if (!problem) continue;
    const entry = store.entry(key);
    const movedTo = values["dry-run"] ? undefined : store.quarantine(key);
    damaged.push({ entry, problem, ...(movedTo ? { movedTo } : {}) });
    console.error(`${entry}: ${problem}${movedTo ? `; moved to ${movedTo}` : ""}`);
  }
  if (values.json) console.log(JSON.stringify({ checked: keys.length, damaged }));
  console.error(`verify: ${keys.length} entries checked, ${damaged.length} damaged`);
  return damaged.length ? 1 : 0;
}

async function gcCommand(values: Values, pipeline: string | undefined): Promise<number> {
  if (pipeline) {
    throw new ConfigError("gc takes no pipeline: it keeps what any recorded run or pipeline uses");
  }
  const keepDays = values["keep-days"] === undefined ? undefined : Number(values["keep-days"]);
  if (keepDays !== undefined && !(keepDays >= 0)) {
    throw new ConfigError(`--keep-days ${values["keep-days"]}: expected a number of days >= 0`);
  }
  const cfg = await loadConfig(values.config);
  const store = new Store(defaultHome());
  const log = new BuildLog(store.home);
  const keyer = new Keyer(new InputHasher(`${store.home}/stat_cache.json`));
  const live = new Set<string>();
  const cutoff = keepDays === undefined ? -Infinity : Date.now() - keepDays * 86400e3;
  let agedOut = 0;
  for (const { file, record } of log.history()) {
    if (Date.parse(record.finished) < cutoff) {
      agedOut++;
      if (!values["dry-run"]) Deno.removeSync(file);
      continue;
    }
    for (const k of Object.values(record.keys)) live.add(k);
  }
  for (const name of cfg.order) {
    const plan = await makePlan(cfg, name, builtinStageTypes);
    // A pipeline whose inputs are not on this machine (a checkpoint a user brings) cannot be
    // keyed; what its recorded runs used is kept above.
    const missing = inputPathProblems(plan.instances);
    if (missing.length > 0) {
      console.error(`gc: pipeline ${name} not keyed (${missing[0]}); its recorded runs are kept`);
      continue;
    }
    for (const s of await staleness(plan, plan.instances, store, keyer, log, new Set())) {
      if (s.key && s.state === "cached") live.add(s.key);
    }
  }
  const r = collectGarbage(store, live, values["dry-run"]);
  const verb = values["dry-run"] ? "would remove" : "removed";
  console.log(
    `${verb} ${r.removed.length} entries (${(r.bytes / 1e6).toFixed(1)} MB) and ${
      (r.tmpBytes / 1e6).toFixed(1)
    } MB of temp files; kept ${r.kept} entries that a recorded run or a pipeline in ${values.config} uses${
      agedOut
        ? `; ${agedOut} run records older than ${keepDays} days ${
          values["dry-run"] ? "would be" : "were"
        } dropped`
        : ""
    }`,
  );
  return 0;
}

/**
 * Copies a cached output directory (e.g. a pretrained checkpoint) out of the store, with a
 * `provenance.json` that says how it was made: the pipeline, the instance and every stage
 * it depends on with their params, the code fingerprint, and each file's sha256.
 */
async function exportCommand(values: Values, pipeline: string | undefined): Promise<number> {
  if (!pipeline || !values.id || !values.path || !values.to) {
    throw new ConfigError(`export needs PIPELINE --id INSTANCE --path DIR_IN_OUTPUT --to DIR\n${USAGE}`);
  }
  const ctx = await context(values, pipeline);
  const info = await staleness(ctx.plan, ctx.plan.instances, ctx.store, ctx.keyer, ctx.log, new Set());
  const at = ctx.plan.instances.findIndex((i) => i.id === values.id);
  if (at < 0) throw new ConfigError(`--id ${values.id}: no such instance in pipeline '${pipeline}'`);
  const key = info[at].key;
  if (values.work) {
    if (!key) throw new UserInputError(`${values.id}: its key is not known until its inputs are cached`);
    const { exportWork } = await import("./pipeline/export_entry.ts");
    const out = await exportWork(ctx.store, key, { id: values.id, path: values.path, to: values.to });
    console.log(`exported ${values.id}'s work ${values.path} to ${values.to}: ${out.files.join(", ")}`);
    return 0;
  }
  const manifest = key ? ctx.store.manifest(key) : undefined;
  if (!key || !manifest || info[at].state !== "cached") {
    throw new UserInputError(
      `${values.id} is not cached: run 'main.ts run ${pipeline} --only ${values.id}' first`,
    );
  }
  const { exportEntry } = await import("./pipeline/export_entry.ts");
  const out = await exportEntry(ctx.store, manifest, ctx.plan, {
    path: values.path,
    to: values.to,
    extra: values.with,
    baseDir: ctx.cfg.dir,
  });
  if (manifest.type === "train/finetune") await writeModelCard(ctx, values.id, values.to, info);
  console.log(`exported ${values.id} to ${values.to}: ${out.files.join(", ")}`);
  return 0;
}

const ROOT = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");

function slurmFlags(values: Values): SlurmFlags {
  const count = (flag: "cpus-per-task" | "array-max") => {
    const v = values[flag];
    if (v === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(v)) throw new ConfigError(`--${flag} ${v}: expected a positive integer`);
    return Number(v);
  };
  for (const flag of ["partition", "account", "time", "mem", "gres"] as const) {
    const v = values[flag];
    if (v !== undefined && !/^\S+$/.test(v)) throw new ConfigError(`--${flag} '${v}': expected one word`);
  }
  return {
    partition: values.partition,
    account: values.account,
    time: values.time,
    cpusPerTask: count("cpus-per-task"),
    mem: values.mem,
    gres: values.gres,
    arrayMax: count("array-max"),
  };
}

/**
 * Writes (and with `--submit` submits) the pipeline as Slurm jobs: a prep job for the stale
 * upstreams of the fan-out stage, one array task per stale fan-out instance, a fan-in that
 * runs the rest, and a job that names what is missing if a task fails.
 */
async function slurmCommand(values: Values, pipeline: string | undefined): Promise<number> {
  const { chooseFanOut, parseSubmitted, submissionPlan, writeJobs } = await import("./pipeline/slurm.ts");
  const flags = slurmFlags(values);
  const ctx = await context(values, pipeline);
  const problems = inputPathProblems(ctx.plan.instances);
  if (problems.length > 0) throw new ConfigError(problems.join("; "));
  const fanOut = chooseFanOut(ctx.plan, values["fan-out"]);
  const info = await stalenessOfAll(ctx);
  ctx.hasher.save();
  const sub = submissionPlan(ctx.plan, info, fanOut);
  const then = [...new Set(sub.followers.flat().map((id) => ctx.plan.byId.get(id)!.stage))];
  console.log(
    `${fanOut}: ${sub.tasks.length} stale instances become array tasks; ${sub.cached.length} cached, not submitted${
      then.length ? `; each task then runs what needs only its instance (${then.join(", ")})` : ""
    }${sub.prep.length ? `; a prep job computes first: ${sub.prep.join(", ")}` : ""}`,
  );
  if (!sub.anyStale) {
    console.log(`nothing is stale: 'main.ts run ${ctx.plan.pipeline}' publishes the results from the cache`);
    return 0;
  }
  const submissions = resolve(`${ctx.cfg.dir}/slurm/${ctx.plan.pipeline}`);
  if (values.submit) await refuseWhileQueued(submissions);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = resolve(values.dir ?? `${submissions}/${stamp}`);
  const files = writeJobs(sub, {
    dir,
    cwd: Deno.cwd(),
    deno: Deno.execPath(),
    root: ROOT,
    pipelineArgs: [
      ctx.plan.pipeline,
      "--config",
      resolve(values.config),
      ...values.set.flatMap((s) => ["--set", s]),
    ],
    home: values["task-home"] ?? resolve(ctx.store.home),
    remote: remoteFromEnv(values)?.url,
    flags,
  });
  if (!values.submit) {
    console.log(`wrote ${dir}; submit with: bash ${files.submit}  (or add --submit)`);
    return 0;
  }
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("bash", { args: [files.submit], stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new UserInputError(`could not run ${files.submit}: ${(e as Error).message}`);
  }
  const ids = parseSubmitted(new TextDecoder().decode(out.stdout));
  const err = new TextDecoder().decode(out.stderr).trim();
  const all = Object.values(ids).join(",");
  // Recorded also after a partial failure, so the next submit sees what is still queued.
  if (all) Deno.writeTextFileSync(`${dir}/jobs.txt`, Object.values(ids).join("\n") + "\n");
  if (!out.success) {
    throw new UserInputError(
      `sbatch failed: ${err.split("\n").at(-1) || `exit ${out.code}`} (scripts in ${dir})${
        all ? `; already submitted: ${all} (scancel ${all} before submitting again)` : ""
      }`,
    );
  }
  console.log(
    `submitted: ${
      Object.entries(ids).map(([role, id]) =>
        `${role} ${id}${
          role === "tasks" ? ` (${sub.tasks.length} array task${sub.tasks.length > 1 ? "s" : ""})` : ""
        }`
      ).join(", ")
    }`,
  );
  console.log(`follow:   squeue -j ${all}`);
  console.log(`finished: sacct -j ${all} --format=JobID,JobName%40,State,Elapsed,ExitCode`);
  console.log(`logs:     ${dir}/logs/`);
  return 0;
}

/**
 * Refuses to submit while jobs of an earlier submission of this pipeline are queued or
 * running: they would compute the same instances twice, and their fan-in would race ours.
 */
async function refuseWhileQueued(submissions: string): Promise<void> {
  const { stillQueued } = await import("./pipeline/slurm.ts");
  let listed: string;
  try {
    const out = await new Deno.Command("squeue", {
      args: ["-h", "-o", "%F"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    listed = out.success ? new TextDecoder().decode(out.stdout) : "";
  } catch {
    throw new UserInputError(
      "squeue not found: run 'main.ts slurm --submit' where Slurm's commands are on PATH",
    );
  }
  const busy = stillQueued(submissions, new Set(listed.split("\n").map((l) => l.trim()).filter(Boolean)));
  if (busy.size === 0) return;
  const ids = [...busy.values()].flat().join(",");
  throw new UserInputError(
    `jobs ${ids} of an earlier submission (${[...busy.keys()].join(", ")}) are still queued or running: ` +
      `wait for them (squeue -j ${ids}) or cancel them (scancel ${ids}), then submit again`,
  );
}

/**
 * The fan-in job: names each instance the submission was to compute that is still missing,
 * with its log, and fails; otherwise (unless `--missing-only`) runs the rest of the pipeline.
 */
async function slurmFanInCommand(values: Values, pipeline: string | undefined): Promise<number> {
  if (!pipeline || !values.dir) throw new ConfigError(`slurm-fan-in needs PIPELINE --dir DIR\n${USAGE}`);
  const { missingReport } = await import("./pipeline/slurm.ts");
  const { readJson } = await import("./pipeline/json_file.ts");
  const sub = readJson<SubmissionPlan | null>(`${values.dir}/submission.json`, null);
  if (!sub) throw new UserInputError(`${values.dir}/submission.json: missing or not JSON`);
  const ctx = await context(values, pipeline);
  const info = await stalenessOfAll(ctx);
  const report = missingReport(sub, info, values.dir, values["array-job"] ?? "", ctx.store.home);
  for (const line of report.lines) console.error(line);
  if (report.missing.length > 0) {
    console.error(
      `${report.missing.length} of ${
        sub.prep.length + sub.tasks.length + sub.followers.flat().length
      } instances this submission was to compute are missing; 'main.ts slurm ${pipeline} --submit' resubmits only those`,
    );
    return 1;
  }
  if (values["missing-only"]) {
    console.error("nothing is missing");
    return 0;
  }
  console.error(`all ${sub.tasks.length} submitted ${sub.fanOutStage} instances are in; running the rest`);
  return await runCommand(values, pipeline);
}

/**
 * Makes an exported fine-tune a folder the Hub accepts as it is: `tokenizer_config.json` and a
 * `README.md` model card, with the metrics of a cached evaluation of it when there is one.
 */
async function writeModelCard(
  ctx: Context,
  id: string,
  to: string,
  info: Awaited<ReturnType<typeof staleness>>,
): Promise<void> {
  const { modelCard, TOKENIZER_CONFIG } = await import("./eval/model_card.ts");
  const { sha256File } = await import("./pipeline/hash.ts");
  const inst = ctx.plan.byId.get(id)!;
  const ups = inst.needs.flatMap((n) => n.ids).map((u) => ctx.plan.byId.get(u)!);
  const data = ups.find((u) => u.type.startsWith("data/"));
  const base = ups.find((u) => u.type.startsWith("model/") || u.type.startsWith("train/"));
  // An evaluation of this run: an eval/classify instance whose export needs it.
  const needsId = (i: Instance, target: string) => i.needs.some((n) => n.ids.includes(target));
  const evalAt = ctx.plan.instances.findIndex((e, k) =>
    e.type === "eval/classify" && info[k]?.state === "cached" &&
    e.needs.some((n) => n.ids.some((x) => needsId(ctx.plan.byId.get(x)!, id)))
  );
  const metrics = evalAt >= 0
    ? JSON.parse(Deno.readTextFileSync(`${ctx.store.entry(info[evalAt].key!)}/out/metrics.json`)).rows
    : null;
  const config = JSON.parse(Deno.readTextFileSync(`${to}/config.json`));
  const labels = Object.values(config.id2label ?? {}) as string[];
  const strip = (p: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(p).map((
        [k, v],
      ) => [k, typeof v === "string" && v.startsWith("/") ? v.split("/").pop() : v]),
    );
  if (!(await Deno.stat(`${to}/tokenizer_config.json`).catch(() => null))) {
    await Deno.writeTextFile(`${to}/tokenizer_config.json`, JSON.stringify(TOKENIZER_CONFIG, null, 2) + "\n");
  }
  await Deno.writeTextFile(
    `${to}/README.md`,
    modelCard({
      pipeline: ctx.plan.pipeline,
      instance: id,
      params: inst.params,
      data: data && { type: data.type, params: strip(data.params) },
      base: base && { type: base.type, params: strip(base.params) },
      labels,
      metrics,
      provenanceSha256: await sha256File(`${to}/provenance.json`),
    }),
  );
}

if (import.meta.main) {
  const debug = Deno.args.includes("--debug");
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UserInputError || err.code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`error: ${err.message}`);
      if (debug) console.error(err.stack);
      Deno.exit(e instanceof UserInputError ? e.exitCode : 2);
    }
    throw e;
  }
}
