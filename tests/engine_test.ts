import assert from "node:assert/strict";
import { builtinStageTypes } from "../stages/registry.ts";
import { loadConfig } from "../pipeline/config.ts";
import { makePlan } from "../pipeline/plan.ts";
import { ConfigError } from "../pipeline/errors.ts";
import { cli, ROOT, statuses, tempDir } from "./helpers.ts";

const STAGE = `${ROOT}/tests/fixtures/test_stages.ts`;

function project(yaml: string, stageModule = STAGE): { dir: string; file: string } {
  const dir = tempDir();
  const file = `${dir}/pipelines.yaml`;
  Deno.writeTextFileSync(file, `stage_types:\n  test/write: ${stageModule}\n${yaml}`);
  return { dir, file };
}

async function configError(yaml: string, pipeline?: string, sets: string[] = []): Promise<string> {
  const { file } = project(yaml);
  try {
    const cfg = await loadConfig(file, pipeline, sets);
    await makePlan(cfg, pipeline ?? cfg.order[0], builtinStageTypes);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return (e as Error).message.replace(file, "FILE");
  }
  throw new Error("expected a config error");
}

const CHAIN = `pipelines:
  demo:
    stages:
      a:
        uses: test/write
        with: {text: A}
      b:
        uses: test/write
        needs: [a]
        with: {text: B}
      c:
        uses: test/write
        needs: [b]
        with: {text: C}
`;

Deno.test("validation: YAML syntax error names line and column", async () => {
  const msg = await configError("pipelines:\n  demo:\n    stages: [a, b\n");
  assert.match(msg, /^FILE:\d+:\d+: /);
});

Deno.test("validation: unknown key is named with its location", async () => {
  const msg = await configError(
    "pipelines:\n  demo:\n    stages:\n      a:\n        uses: test/write\n        wiht: {}\n",
  );
  assert.equal(msg, "FILE:8:9: pipelines.demo.stages.a: unknown key 'wiht'");
});

Deno.test("validation: bad param type names the with path", async () => {
  const msg = await configError(
    "pipelines:\n  demo:\n    stages:\n      a:\n        uses: test/write\n        with: {n: oops}\n",
  );
  assert.match(msg, /^FILE:8:19: pipelines\.demo\.stages\.a\.with\.n: .*expected number/);
});

Deno.test("validation: cycle is named", async () => {
  const msg = await configError(
    "pipelines:\n  demo:\n    stages:\n      a:\n        uses: test/write\n        needs: [b]\n      b:\n        uses: test/write\n        needs: [a]\n",
  );
  assert.match(msg, /cycle: a -> b -> a/);
});

Deno.test("validation: unknown stage type lists the known ones", async () => {
  const msg = await configError("pipelines:\n  demo:\n    stages:\n      a:\n        uses: nope/x\n");
  assert.match(
    msg,
    /^FILE:7:15: pipelines\.demo\.stages\.a\.uses: unknown stage type 'nope\/x' \(known: .*test\/write/,
  );
});

Deno.test("validation: unknown need is named", async () => {
  const msg = await configError(
    "pipelines:\n  demo:\n    stages:\n      a:\n        uses: test/write\n        needs: [ghost]\n",
  );
  assert.match(msg, /^FILE:8:17: pipelines\.demo\.stages\.a\.needs\.0: unknown stage 'ghost'/);
});

Deno.test("validation: a bad --set value names the flag", async () => {
  const msg = await configError(CHAIN, "demo", ["stages.a.with.n=abc"]);
  assert.match(msg, /pipelines\.demo\.stages\.a\.with\.n: .*expected number.*\(from --set/);
});

Deno.test("CLI: config error exits 2 with no stack trace and runs nothing", async () => {
  const { file, dir } = project(
    "pipelines:\n  demo:\n    stages:\n      a:\n        uses: test/write\n        with: {n: x}\n",
  );
  const r = await cli(["run", "--config", file], `${dir}/home`);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: .*pipelines\.demo\.stages\.a\.with\.n/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  let entries = 0;
  try {
    entries = [...Deno.readDirSync(`${dir}/home/store`)].length;
  } catch {
    entries = 0;
  }
  assert.equal(entries, 0);
});

Deno.test("plan: matrix expansion, foreach pairing and fan-in", async () => {
  const { file } = project(`pipelines:
  demo:
    stages:
      a:
        uses: test/write
      ft:
        uses: test/write
        needs: [a]
        matrix: {text: [full, graddrop], n: [1, 2]}
      ex:
        uses: test/write
        foreach: ft
      an:
        uses: test/write
        needs: [ex]
`);
  const cfg = await loadConfig(file);
  const plan = await makePlan(cfg, "demo", builtinStageTypes);
  const ft = plan.instances.filter((i) => i.stage === "ft").map((i) => i.id);
  assert.deepEqual(ft, [
    "ft[text=full,n=1]",
    "ft[text=full,n=2]",
    "ft[text=graddrop,n=1]",
    "ft[text=graddrop,n=2]",
  ]);
  const ex = plan.byId.get("ex[text=graddrop,n=1]")!;
  assert.deepEqual(ex.needs, [{ stage: "ft", ids: ["ft[text=graddrop,n=1]"] }]);
  assert.deepEqual(ex.matrix, { text: "graddrop", n: 1 });
  assert.equal(ex.params.text, "", "a foreach stage carries matrix values as identity, not params");
  assert.equal(plan.byId.get("ft[text=full,n=2]")!.params.n, 2);
  assert.equal(plan.byId.get("an")!.needs[0].ids.length, 4);
});

Deno.test("run: second run is fully cached; --set reruns exactly the affected instances", async () => {
  const { file, dir } = project(`pipelines:
  demo:
    stages:
      a:
        uses: test/write
        with: {text: A}
      b:
        uses: test/write
        needs: [a]
        matrix: {n: [1, 2]}
      c:
        uses: test/write
        foreach: b
      side:
        uses: test/write
        with: {text: S}
`);
  const home = `${dir}/home`;
  const first = await cli(["run", "--config", file, "--json"], home);
  assert.equal(first.code, 0, first.stderr);
  assert.ok(Object.values(statuses(first)).every((s) => s === "ran"));
  // How fast a cached rerun is belongs to the bench (`engine.cached_rerun_s`), not to a timed test.
  const second = await cli(["run", "--config", file, "--json"], home);
  assert.ok(Object.values(statuses(second)).every((s) => s === "cached"));
  assert.equal(Deno.readTextFileSync(`${dir}/results/demo/value.txt`), "S0");
  // `a` publishes value.txt too: into a folder of its own, not over the later stage's file.
  assert.match(Deno.readTextFileSync(`${dir}/results/demo/a/value.txt`), /^A/);
  const changed = await cli(["run", "--config", file, "--json", "--set", "stages.b.matrix.n=[1, 3]"], home);
  assert.deepEqual(statuses(changed), {
    a: "cached",
    "b[n=1]": "cached",
    "b[n=3]": "ran",
    "c[n=1]": "cached",
    "c[n=3]": "ran",
    side: "cached",
  });
  const dry = await cli(["run", "--config", file, "--dry-run", "--set", "stages.a.with.text=Z"], home);
  assert.match(dry.stdout, /would run {2}a {2}\(param text: "A" -> "Z"\)/);
  assert.match(dry.stdout, /cached {2}side/);
});

Deno.test("run: editing a stage module's source invalidates its instances", async () => {
  const dir = tempDir();
  const mod = `${dir}/stage_copy.ts`;
  Deno.writeTextFileSync(
    mod,
    Deno.readTextFileSync(STAGE).replaceAll("../../pipeline/", `${ROOT}/pipeline/`),
  );
  const file = `${dir}/pipelines.yaml`;
  Deno.writeTextFileSync(file, `stage_types:\n  test/write: ${mod}\n${CHAIN}`);
  const home = `${dir}/home`;
  assert.equal((await cli(["run", "--config", file], home)).code, 0);
  Deno.writeTextFileSync(mod, Deno.readTextFileSync(mod) + "\n// edited\n");
  const dry = await cli(["status", "--config", file], home);
  assert.match(dry.stdout, /stale {2}a {2}\(code changed: .*stage_copy\.ts/);
  const r = await cli(["run", "--config", file, "--json"], home);
  // All three stages use the edited type, so all rerun.
  assert.deepEqual(statuses(r), { a: "ran", b: "ran", c: "ran" });
});

Deno.test("run: early cutoff keeps downstream cached when a rerun's outputs are identical", async () => {
  const { file, dir } = project(CHAIN);
  const home = `${dir}/home`;
  assert.equal((await cli(["run", "--config", file], home)).code, 0);
  const r = await cli(["run", "--config", file, "--json", "--set", "stages.a.with.note=ignored"], home);
  assert.deepEqual(statuses(r), { a: "ran", b: "cached", c: "cached" });
  const r2 = await cli(["run", "--config", file, "--json", "--set", "stages.a.with.text=A2"], home);
  assert.deepEqual(statuses(r2), { a: "ran", b: "ran", c: "ran" });
});

Deno.test("run: a failed stage leaves no entry; downstream is skipped; exit code 1", async () => {
  const { file, dir } = project(CHAIN);
  const home = `${dir}/home`;
  const r = await cli(["run", "--config", file, "--json", "--set", "stages.b.with.fail=true"], home);
  assert.equal(r.code, 1);
  assert.deepEqual(statuses(r), { a: "ran", b: "failed", c: "skipped" });
  assert.match(r.stderr, /asked to fail/);
  assert.equal([...Deno.readDirSync(`${home}/store`)].length, 1);
});

Deno.test("run: SIGKILL mid-stage leaves no cache entry; the rerun reuses what finished", async () => {
  const { file, dir } = project(CHAIN);
  const home = `${dir}/home`;
  const pidFile = `${dir}/b.pid`;
  const sets = ["--set", "stages.b.with.sleep_ms=60000", "--set", `stages.b.with.pid_file=${pidFile}`];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/main.ts`, "run", "--config", file, ...sets],
    env: { GRADDROP_HOME: home },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      Deno.statSync(pidFile);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const stagePid = Number(Deno.readTextFileSync(pidFile));
  child.kill("SIGKILL");
  Deno.kill(stagePid, "SIGKILL");
  await child.status;
  assert.equal([...Deno.readDirSync(`${home}/store`)].length, 1, "only stage a finished");
  const r = await cli([
    "run",
    "--config",
    file,
    "--json",
    "--set",
    "stages.b.with.sleep_ms=1",
    "--set",
    `stages.b.with.pid_file=${pidFile}`,
  ], home);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r), { a: "cached", b: "ran", c: "ran" });
});

Deno.test("run: two concurrent runs on one store compute each stage once", async () => {
  const { file, dir } = project(CHAIN);
  const home = `${dir}/home`;
  const counter = `${dir}/count`;
  const sets = [
    "--set",
    "stages.a.with.sleep_ms=800",
    "--set",
    `stages.a.with.counter_dir=${counter}`,
    "--set",
    `stages.b.with.counter_dir=${counter}`,
    "--set",
    `stages.c.with.counter_dir=${counter}`,
  ];
  const [r1, r2] = await Promise.all([
    cli(["run", "--config", file, "--json", ...sets], home),
    cli(["run", "--config", file, "--json", ...sets], home),
  ]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  const runs = [...Deno.readDirSync(counter)].map((e) => e.name.split(".")[0]).sort();
  assert.deepEqual(runs, ["a", "b", "c"]);
});

Deno.test("gc keeps what recorded runs use (a --set run too); --keep-days ages runs out; --dry-run removes nothing", async () => {
  const { file, dir } = project(CHAIN);
  const home = `${dir}/home`;
  await cli(["run", "--config", file, "--set", "stages.a.with.text=old"], home);
  await cli(["run", "--config", file], home);
  const entries = () => [...Deno.readDirSync(`${home}/store`)].length;
  assert.equal(entries(), 6);
  const kept = await cli(["gc", "--config", file], home);
  assert.match(kept.stdout, /removed 0 entries/);
  assert.equal(entries(), 6, "the --set run's entries are still referenced by its record");
  const dry = await cli(["gc", "--config", file, "--keep-days", "0", "--dry-run"], home);
  assert.match(dry.stdout, /would remove 3 entries \(\d+\.\d MB\)/);
  assert.equal(entries(), 6, "a dry run removes nothing");
  const aged = await cli(["gc", "--config", file, "--keep-days", "0"], home);
  assert.match(aged.stdout, /removed 3 entries/);
  assert.equal(entries(), 3, "the pipeline's current entries stay");
  const again = await cli(["run", "--config", file, "--json"], home);
  assert.ok(Object.values(statuses(again)).every((s) => s === "cached"));
});

Deno.test("run: --force=ID reruns that stage; bare --force reruns everything", async () => {
  const { file, dir } = project(CHAIN);
  const home = `${dir}/home`;
  assert.equal((await cli(["run", "--config", file], home)).code, 0);
  const one = await cli(["run", "--config", file, "--json", "--force=b"], home);
  assert.deepEqual(statuses(one), { a: "cached", b: "ran", c: "cached" });
  const all = await cli(["run", "--config", file, "--json", "--force"], home);
  assert.deepEqual(statuses(all), { a: "ran", b: "ran", c: "ran" });
});

Deno.test("fingerprint: a stage's code includes its local imports and npm pins, not unrelated modules", async () => {
  const { fingerprint, importSpecifiers } = await import("../pipeline/fingerprint.ts");
  const fp = fingerprint(`${ROOT}/stages/tokenizer_train.ts`);
  assert.ok(fp.parts["stages/tokenizer_train.ts"]);
  assert.ok(fp.parts["data/bpe_trainer.ts"], "dynamic import followed");
  assert.ok(fp.parts["kernels/rng.ts"], "transitive import followed");
  assert.ok(Object.keys(fp.parts).some((k) => k.startsWith("npm:zod@")));
  assert.ok(!fp.parts["model/encoder.ts"], "unrelated module not included");
  assert.deepEqual(
    importSpecifiers(
      `import { a } from "./a.ts";\nexport * from "./b.ts";\nconst c = await import("./c.ts");`,
    ),
    [
      "./a.ts",
      "./b.ts",
      "./c.ts",
    ],
  );
});
