/**
 * graddrop CLI. One function per command; each returns its exit code: 0 success, 1 a stage
 * failed, 2 bad config or usage, 130/143 interrupted by SIGINT/SIGTERM.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
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
import { remoteArgs, remoteFromEnv } from "./pipeline/remote_config.ts";
import type { RemoteCache } from "./pipeline/remote.ts";

const USAGE = `usage: main.ts <command> [PIPELINE] [options]
  run      [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--only ID]... [--force [ID]]... [--dry-run] [--jobs N] [--json]
           [--remote URL] [--remote-push]
  status   [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--json] [--remote URL]
  plan     [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--json] [--remote URL]
  dag      [PIPELINE] [--config FILE] [--json | --mermaid]
  gc       [--config FILE] [--dry-run] [--keep-days N]
  export   PIPELINE --id INSTANCE --path DIR_IN_OUTPUT --to DIR [--with FILE]...
  analyze  --metrics FILE [--primary A:B[,A:B...]] [--baseline METHOD] [--json]
  readme-results --analysis FILE [--snapshot PATH] [--readme README.md] | readme-results --check
  diff     DIR_A DIR_B [--json]
  doctor   [--json] [--expect-gpu]
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
  "remote-push"?: boolean;
  id?: string;
  path?: string;
  to?: string;
  with: string[];
}

function parse(argv: string[]): { values: Values; positionals: string[] } {
  const { values, positionals } = parseArgs({
    args: normaliseForce(argv),
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
    case "export":
      return await exportCommand(values, pipeline);
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
  remote?: { cache: RemoteCache; push: boolean };
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
      cache: new RemoteCache({ url: remoteCfg.url, token: remoteCfg.token, warn: (l) => console.error(l) }),
      push: remoteCfg.push,
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
  if (values["dry-run"]) return await printStaleness(ctx, instances, force, values.json, "would run");
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
    const ok = results.every((r) => ["ran", "cached", "remote"].includes(r.status));
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
        })),
      }));
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

async function printStaleness(
  ctx: Context,
  instances: Instance[],
  force: Force,
  json: boolean,
  staleWord: string,
): Promise<number> {
  const info = await staleness(ctx.plan, instances, ctx.store, ctx.keyer, ctx.log, force, ctx.remote?.cache);
  ctx.hasher.save();
  if (json) console.log(JSON.stringify({ pipeline: ctx.plan.pipeline, stages: info }));
  else {
    for (const s of info) {
      const why = s.reasons.length ? `  (${s.reasons.join("; ")})` : "";
      const state = s.state === "stale" ? staleWord : s.remote ? "cached (remote)" : "cached";
      console.log(`${state}  ${s.id}${why}`);
    }
  }
  return 0;
}

async function statusCommand(values: Values, pipeline: string | undefined): Promise<number> {
  const ctx = await context(values, pipeline);
  return await printStaleness(ctx, ctx.plan.instances, new Set(), values.json, "stale");
}

async function planCommand(values: Values, pipeline: string | undefined): Promise<number> {
  const ctx = await context(values, pipeline);
  const info = await staleness(
    ctx.plan,
    ctx.plan.instances,
    ctx.store,
    ctx.keyer,
    ctx.log,
    new Set(),
    ctx.remote?.cache,
  );
  ctx.hasher.save();
  const rows = ctx.plan.instances.map((inst, i) => ({
    id: inst.id,
    stage: inst.stage,
    type: inst.type,
    needs: inst.needs.flatMap((n) => n.ids),
    key: info[i].key,
    state: info[i].state,
  }));
  if (values.json) console.log(JSON.stringify({ pipeline: ctx.plan.pipeline, instances: rows }));
  else for (const r of rows) console.log(`${r.state.padEnd(6)}  ${r.id}  (${r.type})`);
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
  console.log(`exported ${values.id} to ${values.to}: ${out.files.join(", ")}`);
  return 0;
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
