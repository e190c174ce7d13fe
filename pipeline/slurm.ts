/**
 * A pipeline as Slurm jobs: which instances go where (a prep job for the fan-out's stale
 * upstreams, an array task per stale fan-out instance, a fan-in that runs the rest and a job
 * that names what is missing when a task failed), the `sbatch` scripts that run them, and
 * the `submit.sh` that chains them with dependencies. Nothing here talks to Slurm but
 * `submit.sh`, which the user can also run by hand.
 * @module
 */
import { ConfigError } from "./errors.ts";
import type { Plan } from "./plan.ts";
import type { StaleInfo } from "./types.ts";

/** The `sbatch` options a user passes (`main.ts slurm --partition gpu ...`). */
export interface SlurmFlags {
  partition?: string;
  gres?: string;
  time?: string;
  cpusPerTask?: number;
  mem?: string;
  /** At most this many array tasks at once (`--array=0-N%M`). */
  arrayMax?: number;
  account?: string;
}

/** What one submission computes where. */
export interface SubmissionPlan {
  pipeline: string;
  fanOutStage: string;
  /** Stale upstreams of the stale fan-out instances, computed once by the prep job. */
  prep: string[];
  /** Stale fan-out instances: array task i computes `tasks[i]`, then `followers[i]`. */
  tasks: string[];
  /**
   * Per task, the stale instances downstream that need no other fan-out instance (e.g. the
   * fine-tune's export and evaluation): they run in the task rather than one by one in the fan-in.
   */
  followers: string[][];
  /** Fan-out instances already cached (locally or on the remote): never submitted. */
  cached: string[];
  /** Whether any instance is stale at all (else there is nothing to submit). */
  anyStale: boolean;
}

/**
 * The fan-out stage: `named`, else the stage with the most instances (the earliest on a tie,
 * e.g. `finetune` before the `export` and `evaluate` that follow it one for one).
 *
 * @example
 * ```ts
 * import { chooseFanOut } from "./slurm.ts";
 * const inst = (id: string, stage: string) => ({ id, stage }) as never;
 * const plan = { pipeline: "p", instances: [inst("a", "a"), inst("b[n=1]", "b"), inst("b[n=2]", "b")] } as never;
 * if (chooseFanOut(plan) !== "b") throw new Error("expected the widest stage");
 * ```
 */
export function chooseFanOut(plan: Plan, named?: string): string {
  const count = new Map<string, number>();
  for (const i of plan.instances) count.set(i.stage, (count.get(i.stage) ?? 0) + 1);
  if (named !== undefined) {
    if (!count.has(named)) {
      throw new ConfigError(
        `--fan-out ${named}: no such stage in pipeline '${plan.pipeline}' (stages: ${
          [...count.keys()].join(", ")
        })`,
      );
    }
    return named;
  }
  let best = plan.instances[0]?.stage ?? "";
  for (const [stage, n] of count) if (n > (count.get(best) ?? 0)) best = stage;
  return best;
}

/**
 * Splits a plan's staleness into the prep job, the array tasks (each with its followers) and
 * what is cached.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { submissionPlan } from "./slurm.ts";
 * const inst = (id: string, stage: string, needs: string[] = []) => ({ id, stage, needs: [{ stage: "", ids: needs }] });
 * // a -> b[n=1], b[n=2] -> c[n=1], c[n=2] (one each) -> d (all of them)
 * const instances = [
 *   inst("a", "a"), inst("b[n=1]", "b", ["a"]), inst("b[n=2]", "b", ["a"]),
 *   inst("c[n=1]", "c", ["b[n=1]", "a"]), inst("c[n=2]", "c", ["b[n=2]", "a"]), inst("d", "d", ["c[n=1]", "c[n=2]"]),
 * ];
 * const plan = { pipeline: "p", instances, byId: new Map(instances.map((i) => [i.id, i])) } as never;
 * const stale = (i: { id: string }) => ({ id: i.id, state: "stale" as const, key: null, reasons: [] });
 * const s = submissionPlan(plan, instances.map(stale), "b");
 * assert.deepEqual([s.prep, s.tasks, s.followers], [["a"], ["b[n=1]", "b[n=2]"], [["c[n=1]"], ["c[n=2]"]]]);
 * ```
 */
export function submissionPlan(plan: Plan, info: StaleInfo[], fanOutStage: string): SubmissionPlan {
  const state = new Map(info.map((s) => [s.id, s.state]));
  const fanOut = plan.instances.filter((i) => i.stage === fanOutStage);
  const tasks = fanOut.filter((i) => state.get(i.id) === "stale");
  const ups = (id: string) => plan.byId.get(id)!.needs.flatMap((n) => n.ids);
  // The fan-out instances and everything that depends on one.
  const downstream = new Set<string>();
  for (const i of plan.instances) {
    if (i.stage === fanOutStage || ups(i.id).some((u) => downstream.has(u))) downstream.add(i.id);
  }
  const followers = tasks.map((t) => {
    const mine = new Set([t.id]);
    for (const i of plan.instances) {
      const u = ups(i.id);
      if (
        !mine.has(i.id) && state.get(i.id) === "stale" && u.some((x) => mine.has(x)) &&
        u.every((x) => mine.has(x) || !downstream.has(x))
      ) mine.add(i.id);
    }
    return [...mine].slice(1);
  });
  const prep = new Set<string>();
  for (const id of [...tasks.map((t) => t.id), ...followers.flat()]) {
    for (const u of ups(id)) if (state.get(u) === "stale" && !downstream.has(u)) prep.add(u);
  }
  return {
    pipeline: plan.pipeline,
    fanOutStage,
    prep: plan.instances.filter((i) => prep.has(i.id)).map((i) => i.id),
    tasks: tasks.map((i) => i.id),
    followers,
    cached: fanOut.filter((i) => state.get(i.id) !== "stale").map((i) => i.id),
    anyStale: info.some((s) => s.state === "stale"),
  };
}

/**
 * `s` quoted for a POSIX shell.
 *
 * @example
 * ```ts
 * import { shellQuote } from "./slurm.ts";
 * if (shellQuote("it's") !== `'it'\\''s'`) throw new Error(shellQuote("it's"));
 * ```
 */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Where and how the jobs run `main.ts`. */
export interface ScriptContext {
  /** The submission directory (scripts, `ids.txt`, `logs/`); on a filesystem every node sees. */
  dir: string;
  /** The directory the jobs start in (where `main.ts slurm` was run). */
  cwd: string;
  /** The Deno binary and `main.ts` (with its `deno.json`). */
  deno: string;
  root: string;
  /** Arguments after `run`: the pipeline, `--config`, `--set`s. */
  pipelineArgs: string[];
  /** `GRADDROP_HOME` of every job: the submitter's, or `--task-home` (may hold `$VARS`). */
  home: string;
  /** The remote cache every job shares results through (`--remote`), if any. */
  remote?: string;
  flags: SlurmFlags;
}

/** The files {@link writeJobs} writes, by role. */
export interface JobFiles {
  submit: string;
  scripts: string[];
}

function header(c: ScriptContext, name: string, output: string, extra: string[] = []): string {
  const f = c.flags;
  const opts = [
    `--job-name=${name}`,
    `--output=${c.dir}/logs/${output}`,
    ...(f.partition ? [`--partition=${f.partition}`] : []),
    ...(f.account ? [`--account=${f.account}`] : []),
    ...(f.time ? [`--time=${f.time}`] : []),
    ...(f.cpusPerTask ? [`--cpus-per-task=${f.cpusPerTask}`] : []),
    ...(f.mem ? [`--mem=${f.mem}`] : []),
    ...(f.gres ? [`--gres=${f.gres}`] : []),
    ...extra,
  ];
  // The home may name variables of the job's environment ($TMPDIR, $SLURM_JOB_ID): double quotes.
  const env = [
    `export GRADDROP_HOME="${c.home.replaceAll(/["\\`]/g, "\\$&")}"`,
    "export NO_COLOR=1",
    ...(c.remote ? [`export GRADDROP_REMOTE=${shellQuote(c.remote)}`, "export GRADDROP_REMOTE_PUSH=1"] : []),
  ];
  return [
    "#!/bin/bash",
    ...opts.map((o) => `#SBATCH ${o}`),
    "set -euo pipefail",
    `cd ${shellQuote(c.cwd)}`,
    ...env,
    "",
  ].join("\n");
}

function mainCall(c: ScriptContext, args: string[]): string {
  return [
    "exec",
    shellQuote(c.deno),
    "run",
    "-A",
    `--config=${shellQuote(`${c.root}/deno.json`)}`,
    shellQuote(`${c.root}/main.ts`),
    ...args,
  ].join(" ");
}

/**
 * The Slurm log of array task `index` of array job `arrayJob`.
 *
 * @example
 * ```ts
 * import { taskLog } from "./slurm.ts";
 * if (taskLog("/s", "12", 3) !== "/s/logs/task-12_3.out") throw new Error(taskLog("/s", "12", 3));
 * ```
 */
export function taskLog(dir: string, arrayJob: string, index: number): string {
  return `${dir}/logs/task-${arrayJob}_${index}.out`;
}

/**
 * Writes the submission's scripts, `ids.txt` (array task i computes line i + 1) and
 * `submit.sh`, which submits them in order with dependencies and prints `role=jobid` lines.
 *
 * @example
 * ```ts ignore
 * const { submit } = writeJobs(submissionPlan(plan, info, "finetune"), { dir, cwd, deno, root, pipelineArgs, home, flags: {} });
 * ```
 */
export function writeJobs(sub: SubmissionPlan, c: ScriptContext): JobFiles {
  Deno.mkdirSync(`${c.dir}/logs`, { recursive: true });
  const run = (extra: string[]) => mainCall(c, ["run", ...c.pipelineArgs.map(shellQuote), ...extra]);
  const name = `graddrop-${sub.pipeline}`;
  const scripts: string[] = [];
  const write = (file: string, text: string) => {
    Deno.writeTextFileSync(`${c.dir}/${file}`, text, { mode: 0o755 });
    scripts.push(`${c.dir}/${file}`);
  };
  const submit = [
    "#!/bin/bash",
    `# Submits ${sub.pipeline}: written by 'main.ts slurm'; prints role=jobid lines.`,
    "set -euo pipefail",
    `cd ${shellQuote(c.dir)}`,
    // `--parsable` prints `jobid` or `jobid;cluster`.
    'submit() { sbatch --parsable "$@" | cut -d";" -f1; }',
    'after() { [ -n "$1" ] && echo "--dependency=$2:$1 --kill-on-invalid-dep=yes" || true; }',
    'prep=""; tasks=""',
  ];
  if (sub.prep.length > 0) {
    write(
      "prep.sbatch",
      header(c, `${name}-prep`, "prep-%j.out") +
        `echo "graddrop: computing what the fan-out needs on $(hostname)"\n` +
        run([...sub.prep.flatMap((id) => ["--only", shellQuote(id)])]) + "\n",
    );
    submit.push("prep=$(submit prep.sbatch)", 'echo "prep=$prep"');
  }
  if (sub.tasks.length > 0) {
    const lines = sub.tasks.map((id, i) => [id, ...sub.followers[i]].join("\t"));
    Deno.writeTextFileSync(`${c.dir}/ids.txt`, lines.join("\n") + "\n");
    const range = `0-${sub.tasks.length - 1}${c.flags.arrayMax ? `%${c.flags.arrayMax}` : ""}`;
    write(
      "tasks.sbatch",
      header(c, `${name}-${sub.fanOutStage}`, "task-%A_%a.out", [`--array=${range}`]) +
        `IFS=$'\\t' read -r -a ids < <(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" ${
          shellQuote(`${c.dir}/ids.txt`)
        })\n` +
        `only=(); for id in "\${ids[@]}"; do only+=(--only "$id"); done\n` +
        `echo "graddrop: array task $SLURM_ARRAY_TASK_ID computes \${ids[*]} on $(hostname)"\n` +
        run(['"${only[@]}"', "--jobs", "1"]) + "\n",
    );
    submit.push('tasks=$(submit $(after "$prep" afterok) tasks.sbatch)', 'echo "tasks=$tasks"');
  }
  const fanIn = (missingOnly: boolean) =>
    mainCall(c, [
      "slurm-fan-in",
      ...c.pipelineArgs.map(shellQuote),
      "--dir",
      shellQuote(c.dir),
      '--array-job "${1:-}"',
      ...(missingOnly ? ["--missing-only"] : []),
    ]) + "\n";
  write("fan-in.sbatch", header(c, `${name}-fan-in`, "fan-in-%j.out") + fanIn(false));
  submit.push(
    'fanin=$(submit $(after "${tasks:-$prep}" afterok) fan-in.sbatch "$tasks")',
    'echo "fan-in=$fanin"',
  );
  if (sub.tasks.length > 0) {
    // Runs only when a task failed (and is cancelled otherwise): names what is missing.
    const small = {
      ...c,
      flags: { partition: c.flags.partition, account: c.flags.account, time: "00:10:00" },
    };
    write("missing.sbatch", header(small, `${name}-missing`, "missing-%j.out") + fanIn(true));
    submit.push(
      'missing=$(submit $(after "$tasks" afternotok) missing.sbatch "$tasks")',
      'echo "missing=$missing"',
    );
  }
  Deno.writeTextFileSync(`${c.dir}/submit.sh`, submit.join("\n") + "\n", { mode: 0o755 });
  Deno.writeTextFileSync(`${c.dir}/submission.json`, JSON.stringify(sub, null, 2) + "\n");
  return { submit: `${c.dir}/submit.sh`, scripts };
}

/**
 * Reads the `role=jobid` lines `submit.sh` prints.
 *
 * @example
 * ```ts
 * import { parseSubmitted } from "./slurm.ts";
 * if (parseSubmitted("tasks=12\nfan-in=13\n")["fan-in"] !== "13") throw new Error("parse");
 * ```
 */
export function parseSubmitted(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = line.match(/^([\w-]+)=(\d+)$/);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** What the fan-in found missing: one line per instance, with the logs to read. */
export interface MissingReport {
  missing: string[];
  lines: string[];
}

/**
 * The instances a submission was to compute (prep and array tasks) that are still stale,
 * each with the Slurm log of the job that should have made it and, when the stage itself
 * failed, the stage's log under `$GRADDROP_HOME/work/<key>/`.
 *
 * @example
 * ```ts ignore
 * const { missing, lines } = missingReport(sub, await staleness(...), dir, "12", store.home);
 * ```
 */
export function missingReport(
  sub: SubmissionPlan,
  info: StaleInfo[],
  dir: string,
  arrayJob: string,
  home: string,
): MissingReport {
  const byId = new Map(info.map((s) => [s.id, s]));
  const exists = (p: string) => {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      return false;
    }
  };
  let prepLogs: string[] = [];
  try {
    prepLogs = [...Deno.readDirSync(`${dir}/logs`)].filter((e) => e.name.startsWith("prep-")).map((e) =>
      `${dir}/logs/${e.name}`
    );
  } catch {
    prepLogs = [];
  }
  const lines: string[] = [];
  const missing: string[] = [];
  const taskOf = new Map(sub.tasks.flatMap((id, i) => [id, ...sub.followers[i]].map((x) => [x, i])));
  for (const id of [...sub.prep, ...sub.tasks.flatMap((id, i) => [id, ...sub.followers[i]])]) {
    const s = byId.get(id);
    if (!s || s.state !== "stale") continue;
    missing.push(id);
    const index = taskOf.get(id) ?? -1;
    const job = index >= 0
      ? (arrayJob ? taskLog(dir, arrayJob, index) : `${dir}/logs/task-*_${index}.out`)
      : (prepLogs.join(", ") || `${dir}/logs/prep-*.out`);
    const jobNote = index >= 0 && arrayJob && !exists(job) ? " (not written: the task never started)" : "";
    const stageLog = s.key ? `${home}/work/${s.key}/last-failure.log` : undefined;
    lines.push(
      `missing: ${id}${index >= 0 ? ` (array task ${index})` : " (prep job)"}  log: ${job}${jobNote}${
        stageLog && exists(stageLog) ? `  stage log: ${stageLog}` : ""
      }`,
    );
  }
  return { missing, lines };
}

/**
 * Job ids recorded by earlier submissions under `root` (`<dir>/jobs.txt`, one id a line) that
 * `queued` (what `squeue -h -o %F` lists) still holds, by submission directory.
 *
 * @example
 * ```ts
 * import { stillQueued } from "./slurm.ts";
 * const root = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${root}/a`);
 * Deno.writeTextFileSync(`${root}/a/jobs.txt`, "12\n13\n");
 * if (stillQueued(root, new Set(["13", "99"])).get(`${root}/a`)?.join() !== "13") throw new Error("13 is queued");
 * ```
 */
export function stillQueued(root: string, queued: Set<string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let dirs: Deno.DirEntry[];
  try {
    dirs = [...Deno.readDirSync(root)];
  } catch {
    return out;
  }
  for (const d of dirs) {
    let ids: string[];
    try {
      ids = Deno.readTextFileSync(`${root}/${d.name}/jobs.txt`).split("\n").filter(Boolean);
    } catch {
      continue;
    }
    const live = ids.filter((id) => queued.has(id));
    if (live.length > 0) out.set(`${root}/${d.name}`, live);
  }
  return out;
}
