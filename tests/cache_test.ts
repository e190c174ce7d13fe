/**
 * The cache never lies and a run never hangs: input files keyed by content, `--force` and
 * `--dry-run` as a user types them, the stall watchdog, signals, one-line user errors.
 */
import assert from "node:assert/strict";
import { cli, ROOT, statuses, tempDir } from "./helpers.ts";

const STAGE = `${ROOT}/tests/fixtures/test_stages.ts`;

function project(yaml: string, dir = tempDir()): { dir: string; file: string } {
  const file = `${dir}/pipelines.yaml`;
  Deno.writeTextFileSync(file, `stage_types:\n  test/write: ${STAGE}\n${yaml}`);
  return { dir, file };
}

const WITH_FILE = `pipelines:
  demo:
    stages:
      a:
        uses: test/write
        with: {text: A}
      data:
        uses: test/write
        with: {file: data}
      b:
        uses: test/write
        needs: [data]
      c:
        uses: test/write
        needs: [b, a]
`;

Deno.test("input files: editing a data file in place reruns that stage and what depends on it, nothing else", async () => {
  const { dir, file } = project(WITH_FILE);
  Deno.mkdirSync(`${dir}/data`);
  Deno.writeTextFileSync(`${dir}/data/train.tsv`, "one");
  Deno.writeTextFileSync(`${dir}/data/test.tsv`, "two");
  const home = `${dir}/home`;
  assert.equal((await cli(["run", "--config", file], home)).code, 0);
  Deno.writeTextFileSync(`${dir}/data/train.tsv`, "one, edited");
  const status = await cli(["status", "--config", file], home);
  assert.match(status.stdout, /stale {2}data {2}\(input file changed: with\.file: train\.tsv\)/);
  const r = await cli(["run", "--config", file, "--json"], home);
  assert.deepEqual(statuses(r), { a: "cached", data: "ran", b: "ran", c: "ran" });
  const again = await cli(["run", "--config", file, "--json"], home);
  assert.ok(
    Object.values(statuses(again)).every((s) => s === "cached"),
    "unchanged files hit the stat cache",
  );
});

Deno.test("input files: a replaced file (same path, new content) reruns; the same relative path in another project does too", async () => {
  const one = project(
    `pipelines:\n  demo:\n    stages:\n      load:\n        uses: test/write\n        with: {file: ckpt/model.bin}\n`,
  );
  Deno.mkdirSync(`${one.dir}/ckpt`);
  Deno.writeTextFileSync(`${one.dir}/ckpt/model.bin`, "weights v1");
  const home = `${tempDir()}/home`;
  assert.deepEqual(statuses(await cli(["run", "--config", one.file, "--json"], home)), { load: "ran" });
  Deno.removeSync(`${one.dir}/ckpt/model.bin`);
  Deno.writeTextFileSync(`${one.dir}/ckpt/model.bin`, "weights v2");
  assert.deepEqual(statuses(await cli(["run", "--config", one.file, "--json"], home)), { load: "ran" });
  const two = project(Deno.readTextFileSync(one.file).split("\n").slice(2).join("\n"));
  Deno.mkdirSync(`${two.dir}/ckpt`);
  Deno.writeTextFileSync(`${two.dir}/ckpt/model.bin`, "other weights");
  assert.deepEqual(statuses(await cli(["run", "--config", two.file, "--json"], home)), { load: "ran" });
  Deno.writeTextFileSync(`${two.dir}/ckpt/model.bin`, "weights v2");
  assert.deepEqual(
    statuses(await cli(["run", "--config", two.file, "--json"], home)),
    { load: "cached" },
    "same content elsewhere is the same input",
  );
});

Deno.test("input files: a missing input path is a one-line error naming the field, before anything runs", async () => {
  const { dir, file } = project(
    `pipelines:\n  demo:\n    stages:\n      first:\n        uses: test/write\n        with: {text: a}\n` +
      `      load:\n        uses: test/write\n        needs: [first]\n        with: {file: nowhere}\n`,
  );
  for (const extra of [[], ["--dry-run"]]) {
    const r = await cli(["run", "--config", file, ...extra], `${dir}/home`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: load: with\.file: \/\S+\/nowhere does not exist$/m);
    assert.equal(r.stderr.split("does not exist").length - 1, 1, "printed once");
    assert.doesNotMatch(r.stderr, /\[first\]/, "nothing ran");
  }
});

Deno.test("--force ID and --force=ID force that stage; an unknown id lists the stages; --dry-run honours --force and --only", async () => {
  const { dir, file } = project(WITH_FILE.replace("{file: data}", "{text: D}"));
  const home = `${dir}/home`;
  assert.equal((await cli(["run", "--config", file], home)).code, 0);
  assert.deepEqual(statuses(await cli(["run", "--config", file, "--force", "b", "--json"], home)), {
    a: "cached",
    data: "cached",
    b: "ran",
    c: "cached",
  }, "b's output is unchanged, so c stays cached (early cutoff)");
  const spaced = await cli(["run", "--config", file, "--json", "--force", "a"], home);
  assert.deepEqual(statuses(spaced), { a: "ran", data: "cached", b: "cached", c: "cached" });
  const eq = await cli(["run", "--config", file, "--json", "--force=data"], home);
  assert.deepEqual(statuses(eq), { a: "cached", data: "ran", b: "cached", c: "cached" });
  const bad = await cli(["run", "--config", file, "--force=nosuch"], home);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /--force nosuch: no such stage or instance in pipeline 'demo' \(stages: a, data, b, c\)/,
  );
  const dry = await cli(["run", "--config", file, "--dry-run", "--force=b"], home);
  assert.match(dry.stdout, /cached {2}a\n/);
  assert.match(dry.stdout, /would run {2}b {2}\(forced\)/);
  assert.match(dry.stdout, /would run {2}c {2}\(upstream will run: b\)/);
  const only = await cli(["run", "--config", file, "--dry-run", "--only", "b"], home);
  assert.deepEqual(only.stdout.trim().split("\n").map((l) => l.split(/\s+/)[1]), ["data", "b"]);
});

Deno.test("watchdog: a stage silent past its timeout is killed and fails with its log path", async () => {
  const { dir, file } = project(`pipelines:
  demo:
    stages:
      slow:
        uses: test/write
        timeout: 1
        with: {sleep_ms: 20000}
`);
  const t0 = performance.now();
  const r = await cli(["run", "--config", file], `${dir}/home`);
  assert.ok(performance.now() - t0 < 15000, "killed long before its 20 s sleep ended");
  assert.equal(r.code, 1);
  const m = /\[slow\] FAILED after .*: no output for 1 s \(the stage's timeout\); killed \(log: (\S+)\)/.exec(
    r.stderr,
  );
  assert.ok(m, r.stderr);
  assert.ok(Deno.statSync(m[1]).isFile);
  assert.equal([...Deno.readDirSync(`${dir}/home/store`)].length, 0);
});

Deno.test("SIGTERM: the stage worker stops too, nothing partial is kept, exit 143", async () => {
  const { dir, file } = project(`pipelines:
  demo:
    stages:
      long:
        uses: test/write
        with: {sleep_ms: 30000, pid_file: ${"PIDFILE"}}
`.replace("PIDFILE", `${tempDir()}/pid`));
  const pidFile = /pid_file: (\S+)\}/.exec(Deno.readTextFileSync(file))![1];
  const home = `${dir}/home`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/main.ts`, "run", "--config", file],
    env: { GRADDROP_HOME: home },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let workerPid = 0;
  for (let i = 0; i < 200 && !workerPid; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      workerPid = Number(Deno.readTextFileSync(pidFile));
    } catch {
      workerPid = 0;
    }
  }
  assert.ok(workerPid > 0, "the stage started");
  child.kill("SIGTERM");
  const out = await child.output();
  assert.equal(out.code, 143);
  let alive = true;
  for (let i = 0; i < 50 && alive; i++) {
    try {
      Deno.statSync(`/proc/${workerPid}`);
      await new Promise((r) => setTimeout(r, 100));
    } catch {
      alive = false;
    }
  }
  assert.ok(!alive, "no orphan worker");
  assert.equal([...Deno.readDirSync(`${home}/store`)].length, 0, "no entry");
  assert.equal([...Deno.readDirSync(`${home}/tmp`)].length, 0, "no temp dir");
  assert.equal([...Deno.readDirSync(`${home}/locks`)].length, 0, "no lock");
});

Deno.test("user errors: a stage's bad-input error is one line, printed once, no stack; --debug adds the trace", async () => {
  const { dir, file } = project(
    `pipelines:\n  demo:\n    stages:\n      a:\n        uses: test/write\n        with: {user_error: "data/x.tsv:3: empty text"}\n`,
  );
  const r = await cli(["run", "--config", file], `${dir}/home`);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split("data/x.tsv:3: empty text").length - 1, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/);
  const d = await cli(["run", "--config", file, "--debug"], `${dir}/home2`);
  assert.match(d.stderr, /trace: .*at .*test_stages\.ts/);
});
