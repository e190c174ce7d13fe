/**
 * `main.ts slurm --submit` on a real one-node Slurm cluster (tests/slurm.ts), with the engine's
 * test stage: a prep job, three array tasks, then the fan-in; through a shared
 * `GRADDROP_HOME` and through the remote cache (nginx) with a separate home per job.
 */
import assert from "node:assert/strict";
import { cli, ROOT, tempDir } from "./helpers.ts";
import { type Slurm, slurmUnavailable, startSlurm } from "./slurm.ts";
import { startNginx } from "./nginx.ts";

const why = slurmUnavailable();
if (why) console.warn(`SKIPPED slurm tests: ${why}`);

/**
 * A project: `demo` (base -> fan x3 -> check x3, one per fan -> join), `slow` (the same, each
 * fan instance sleeping)
 * and `broken` (base fails).
 */
function project(counts: string): string {
  const dir = tempDir();
  const stages = (sleep: number, fail = false) => `
    stages:
      base:
        uses: test/write
        with: {text: base, counter_dir: ${counts}, fail: ${fail}}
      fan:
        uses: test/write
        needs: [base]
        matrix: {n: [1, 2, 3]}
        with: {text: fan, sleep_ms: ${sleep}, counter_dir: ${counts}}
      check:
        uses: test/write
        foreach: fan
        with: {text: check, counter_dir: ${counts}}
      join:
        uses: test/write
        needs: [check]
        with: {text: join, counter_dir: ${counts}}`;
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `stage_types:\n  test/write: ${ROOT}/tests/fixtures/test_stages.ts\npipelines:\n  demo:${
      stages(0)
    }\n  slow:${stages(4000)}\n  broken:${stages(0, true)}\n`,
  );
  return dir;
}

/** How many times each instance started, from the test stage's counter files. */
function starts(counts: string): Record<string, number> {
  const n: Record<string, number> = {};
  for (const e of Deno.readDirSync(counts)) {
    const id = e.name.slice(0, e.name.indexOf("."));
    n[id] = (n[id] ?? 0) + 1;
  }
  return n;
}

/** Every file under `dir`, relative path -> bytes. */
function files(dir: string, sub = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of Deno.readDirSync(`${dir}/${sub}`)) {
    const rel = sub ? `${sub}/${e.name}` : e.name;
    if (e.isDirectory) Object.assign(out, files(dir, rel));
    else out[rel] = Deno.readTextFileSync(`${dir}/${rel}`);
  }
  return out;
}

async function submit(slurm: Slurm, args: string[], home: string): Promise<Record<string, string>> {
  const r = await cli(["slurm", ...args, "--submit"], home, slurm.env);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const ids = Object.fromEntries(
    [...r.stdout.matchAll(/(prep|tasks|fan-in|missing) (\d+)/g)].map((m) => [m[1], m[2]]),
  );
  assert.ok(r.stdout.includes(`squeue -j ${Object.values(ids).join(",")}`), r.stdout);
  return { ...ids, stdout: r.stdout };
}

const ONCE = {
  base: 1,
  "fan[n=1]": 1,
  "fan[n=2]": 1,
  "fan[n=3]": 1,
  "check[n=1]": 1,
  "check[n=2]": 1,
  "check[n=3]": 1,
  join: 1,
};

Deno.test({
  name: "slurm: a pipeline as a prep job, an array and a fan-in, through a shared home and a remote cache",
  ignore: why !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const slurm = await startSlurm();
    try {
      const local = project(`${tempDir()}/counts`);
      const lr = await cli(["run", "demo", "--config", `${local}/pipelines.yaml`], `${local}/home`);
      assert.equal(lr.code, 0, lr.stderr);
      const expected = files(`${local}/results/demo`);

      await t.step("shared home: each instance computed once, results byte-identical", async () => {
        const counts = `${tempDir()}/counts`;
        const dir = project(counts);
        const home = `${dir}/home`;
        const ids = await submit(
          slurm,
          ["demo", "--config", `${dir}/pipelines.yaml`, "--array-max", "3"],
          home,
        );
        assert.match(
          ids.stdout,
          /fan: 3 stale instances become array tasks; 0 cached, not submitted; each task then runs what needs only its instance \(check\); a prep job computes first: base/,
        );
        await slurm.idle();
        const st = await slurm.states();
        assert.deepEqual(
          [st[ids.prep], st[`${ids.tasks}_0`], st[`${ids.tasks}_1`], st[`${ids.tasks}_2`], st[ids["fan-in"]]],
          ["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"],
        );
        assert.equal(st[ids.missing], "CANCELLED", "the missing-instances job only runs when a task failed");
        assert.deepEqual(starts(counts), ONCE);
        assert.deepEqual(files(`${dir}/results/demo`), expected);
        const sub = [...Deno.readDirSync(`${dir}/slurm/demo`)][0].name;
        const task = Deno.readTextFileSync(`${dir}/slurm/demo/${sub}/logs/task-${ids.tasks}_1.out`);
        assert.match(task, /\[fan\[n=2\]\] done.*\[check\[n=2\]\] done/s, "the task runs its follower");
        const again = await cli(
          ["slurm", "demo", "--config", `${dir}/pipelines.yaml`, "--submit"],
          home,
          slurm.env,
        );
        assert.match(again.stdout, /nothing is stale/);
      });

      await t.step(
        "scancel part-way: nothing partial; the rerun submits only that task and completes",
        async () => {
          const counts = `${tempDir()}/counts`;
          const dir = project(counts);
          const home = `${dir}/home`;
          const args = ["slow", "--config", `${dir}/pipelines.yaml`];
          const ids = await submit(slurm, args, home);
          const twice = await cli(["slurm", ...args, "--submit"], home, slurm.env);
          assert.equal(twice.code, 1, "no second submission while the first is queued");
          assert.match(
            twice.stderr,
            new RegExp(`jobs [\\d,]*${ids.tasks},${ids["fan-in"]},${ids.missing} of an earlier submission`),
          );
          const started = () => {
            try {
              return starts(counts)["fan[n=2]"] === 1;
            } catch {
              return false;
            }
          };
          for (let i = 0; !started(); i++) {
            assert.ok(i < 600, "fan[n=2] did not start within 60 s");
            await new Promise((r) => setTimeout(r, 100));
          }
          await slurm.client("scancel", [`${ids.tasks}_1`]);
          await slurm.idle();
          const st = await slurm.states();
          assert.equal(st[`${ids.tasks}_1`], "CANCELLED");
          assert.equal(st[ids["fan-in"]], "CANCELLED", "afterok: the fan-in does not run without every task");
          assert.equal(st[ids.missing], "FAILED");
          const sub = [...Deno.readDirSync(`${dir}/slurm/slow`)][0].name;
          const report = Deno.readTextFileSync(`${dir}/slurm/slow/${sub}/logs/missing-${ids.missing}.out`);
          assert.match(
            report,
            new RegExp(`missing: fan\\[n=2\\] \\(array task 1\\)  log: \\S+/logs/task-${ids.tasks}_1\\.out`),
          );
          assert.match(report, /missing: check\[n=2\] \(array task 1\)/, "its follower too");
          assert.doesNotMatch(report, /\[n=1\]|\[n=3\]/);
          assert.deepEqual([...Deno.readDirSync(`${home}/tmp`)], [], "no partial output left");
          assert.deepEqual([...Deno.readDirSync(`${home}/locks`)], [], "no lock left");

          const rerun = await submit(slurm, args, home);
          assert.match(rerun.stdout, /fan: 1 stale instances become array tasks; 2 cached/);
          assert.equal(rerun.prep, undefined, "base is cached: no prep job");
          await slurm.idle();
          const st2 = await slurm.states();
          assert.equal(st2[`${rerun.tasks}_0`], "COMPLETED");
          assert.equal(st2[`${rerun.tasks}_1`], undefined, "one array task only");
          assert.equal(st2[rerun["fan-in"]], "COMPLETED");
          assert.deepEqual(
            starts(counts),
            { ...ONCE, "fan[n=2]": 2 },
            "only the cancelled instance ran again",
          );
          assert.deepEqual(files(`${dir}/results/slow`), expected);
        },
      );

      await t.step("sbatch refusing a job is one line with its reason", async () => {
        const dir = project(`${tempDir()}/counts`);
        const r = await cli(
          ["slurm", "demo", "--config", `${dir}/pipelines.yaml`, "--partition", "nosuch", "--submit"],
          `${dir}/home`,
          slurm.env,
        );
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^error: sbatch failed: .*[Ii]nvalid partition.* \(scripts in \S+\)\n$/);
      });

      await t.step(
        "a failed prep job: the array and fan-in are cancelled, the missing job names every instance",
        async () => {
          const dir = project(`${tempDir()}/counts`);
          const ids = await submit(slurm, ["broken", "--config", `${dir}/pipelines.yaml`], `${dir}/home`);
          await slurm.idle();
          const st = await slurm.states();
          assert.deepEqual(
            [st[ids.prep], st[`${ids.tasks}_0`], st[ids["fan-in"]], st[ids.missing]],
            ["FAILED", "CANCELLED", "CANCELLED", "FAILED"],
          );
          const sub = [...Deno.readDirSync(`${dir}/slurm/broken`)][0].name;
          const report = Deno.readTextFileSync(`${dir}/slurm/broken/${sub}/logs/missing-${ids.missing}.out`);
          assert.match(
            report,
            new RegExp(`missing: base \\(prep job\\)  log: \\S+/logs/prep-${ids.prep}\\.out`),
          );
          assert.match(
            report,
            /missing: fan\[n=3\] \(array task 2\) {2}log: \S+ \(not written: the task never started\)/,
          );
          assert.match(report, /7 of 7 instances this submission was to compute are missing/);
        },
      );

      await t.step("remote cache: separate homes per job, each instance computed once", async () => {
        const nginx = await startNginx();
        try {
          const counts = `${tempDir()}/counts`;
          const dir = project(counts);
          const nodes = tempDir();
          const ids = await submit(slurm, [
            "demo",
            "--config",
            `${dir}/pipelines.yaml`,
            "--remote",
            nginx.url,
            "--task-home",
            `${nodes}/job-$SLURM_JOB_ID`,
          ], `${dir}/home`);
          await slurm.idle();
          const st = await slurm.states();
          assert.equal(st[ids["fan-in"]], "COMPLETED");
          assert.deepEqual(starts(counts), ONCE);
          assert.deepEqual(files(`${dir}/results/demo`), expected);
          assert.equal(
            [...Deno.readDirSync(nodes)].length,
            5,
            "prep, three tasks and the fan-in: five homes",
          );
          const sub = [...Deno.readDirSync(`${dir}/slurm/demo`)][0].name;
          const task = Deno.readTextFileSync(`${dir}/slurm/demo/${sub}/logs/task-${ids.tasks}_0.out`);
          assert.match(task, /\[base\] cached \(remote\)/);
        } finally {
          await nginx.stop();
        }
      });
    } finally {
      await slurm.stop();
    }
  },
});

Deno.test("slurm: without --submit it writes the scripts with the user's sbatch options and skips cached instances", async () => {
  const dir = project(`${tempDir()}/counts`);
  const home = `${dir}/home`;
  const config = `${dir}/pipelines.yaml`;
  const first = await cli(["run", "demo", "--config", config, "--only", "fan[n=1]"], home);
  assert.equal(first.code, 0, first.stderr);
  const opts = [
    ["--partition", "gpu"],
    ["--account", "lab42"],
    ["--time", "02:00:00"],
    ["--cpus-per-task", "4"],
    ["--mem", "16G"],
    ["--gres", "gpu:1"],
    ["--array-max", "1"],
  ];
  const r = await cli(["slurm", "demo", "--config", config, "--dir", `${dir}/sub`, ...opts.flat()], home);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /fan: 2 stale instances become array tasks; 1 cached, not submitted/);
  assert.match(r.stdout, new RegExp(`submit with: bash ${dir}/sub/submit.sh`));
  assert.equal(Deno.readTextFileSync(`${dir}/sub/ids.txt`), "fan[n=2]\tcheck[n=2]\nfan[n=3]\tcheck[n=3]\n");
  const tasks = Deno.readTextFileSync(`${dir}/sub/tasks.sbatch`);
  for (const [flag, value] of opts.filter(([f]) => f !== "--array-max")) {
    assert.ok(tasks.includes(`#SBATCH ${flag}=${value}\n`), `${flag} in:\n${tasks}`);
  }
  assert.ok(tasks.includes("#SBATCH --array=0-1%1\n"), tasks);
  assert.ok(tasks.includes(`export GRADDROP_HOME="${home}"`), tasks);
  assert.ok(!("prep.sbatch" in files(`${dir}/sub`)), "base is cached: no prep job");
  const submit = Deno.readTextFileSync(`${dir}/sub/submit.sh`);
  assert.match(submit, /fan-in\.sbatch/);
  assert.match(submit, /afternotok/);
  const bad = await cli(["slurm", "demo", "--config", config, "--array-max", "0"], home);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--array-max 0: expected a positive integer/);
});
