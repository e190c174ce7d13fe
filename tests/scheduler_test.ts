/**
 * The scheduler with a fake runner: concurrency, failure propagation and interruption are
 * checked without spawning processes or timing anything.
 */
import assert from "node:assert/strict";
import { execute, type ExecuteOptions } from "../pipeline/execute.ts";
import type { Job, Runner } from "../pipeline/runner.ts";
import type { WorkerSpec } from "../pipeline/worker.ts";
import { loadConfig } from "../pipeline/config.ts";
import { makePlan } from "../pipeline/plan.ts";
import { Store } from "../pipeline/store.ts";
import { Keyer } from "../pipeline/keys.ts";
import { InputHasher } from "../pipeline/input_files.ts";
import { BuildLog } from "../pipeline/records.ts";
import { builtinStageTypes } from "../stages/registry.ts";
import { ROOT, tempDir } from "./helpers.ts";

/** Writes `value.txt` like the test stage; each job waits until the test releases it. */
class FakeRunner implements Runner {
  inFlight = 0;
  maxInFlight = 0;
  started: string[] = [];
  private gates = new Map<string, () => void>();
  constructor(private readonly failing = new Set<string>(), private readonly hold = false) {}

  async run(job: Job): Promise<void> {
    this.started.push(job.id);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) {
        await new Promise<void>((resolve, reject) => {
          this.gates.set(job.id, resolve);
          job.signal.addEventListener("abort", () => reject(new Error("interrupted")));
        });
      } else await Promise.resolve();
      if (this.failing.has(job.id)) throw new Error("asked to fail");
      const spec: WorkerSpec = JSON.parse(Deno.readTextFileSync(job.specPath));
      Deno.writeTextFileSync(`${spec.out}/value.txt`, `${spec.id}`);
    } finally {
      this.inFlight--;
    }
  }

  release(id: string): void {
    this.gates.get(id)?.();
  }
}

async function setup(yaml: string) {
  const dir = tempDir();
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `stage_types:\n  test/write: ${ROOT}/tests/fixtures/test_stages.ts\n${yaml}`,
  );
  const cfg = await loadConfig(`${dir}/pipelines.yaml`);
  const plan = await makePlan(cfg, "demo", builtinStageTypes);
  const store = new Store(`${dir}/home`);
  return { plan, store };
}

function options(
  store: Store,
  runner: Runner,
  jobs: number,
  signal = new AbortController().signal,
): ExecuteOptions {
  return {
    jobs,
    force: new Set(),
    progress: () => {},
    env: {},
    runner,
    keyer: new Keyer(new InputHasher(`${store.home}/stat_cache.json`)),
    log: new BuildLog(store.home),
    signal,
    defaultTimeout: 60,
    debug: false,
  };
}

const FOUR = `pipelines:
  demo:
    stages:
      a:
        uses: test/write
        matrix: {n: [1, 2, 3, 4]}
      b:
        uses: test/write
        needs: [a]
`;

Deno.test("scheduler: --jobs bounds how many instances run at once", async () => {
  for (const jobs of [1, 2, 4]) {
    const { plan, store } = await setup(FOUR);
    const runner = new FakeRunner();
    const results = await execute(plan, plan.instances, store, options(store, runner, jobs));
    assert.ok(results.every((r) => r.status === "ran"));
    assert.equal(runner.maxInFlight, jobs, `jobs ${jobs}`);
    assert.equal(runner.started.at(-1), "b", "the fan-in runs after everything it needs");
  }
});

Deno.test("scheduler: a failure skips what needs it and nothing else", async () => {
  const { plan, store } = await setup(`pipelines:
  demo:
    stages:
      a:
        uses: test/write
      b:
        uses: test/write
        needs: [a]
      c:
        uses: test/write
`);
  const results = await execute(
    plan,
    plan.instances,
    store,
    options(store, new FakeRunner(new Set(["a"])), 2),
  );
  assert.deepEqual(
    Object.fromEntries(results.map((r) => [r.id, r.status])),
    { a: "failed", b: "skipped", c: "ran" },
  );
  assert.equal(store.keys().length, 1, "only c was committed");
});

Deno.test("scheduler: an interrupted run stops, keeps nothing partial and records no run", async () => {
  const { plan, store } = await setup(FOUR);
  const runner = new FakeRunner(new Set(), true);
  const abort = new AbortController();
  const running = execute(plan, plan.instances, store, options(store, runner, 2, abort.signal));
  while (runner.started.length < 2) await new Promise((r) => setTimeout(r, 1));
  runner.release(runner.started[0]);
  while (store.keys().length < 1) await new Promise((r) => setTimeout(r, 1));
  abort.abort("SIGINT");
  const results = await running;
  const by = Object.fromEntries(results.map((r) => [r.id, r.status]));
  assert.equal(Object.values(by).filter((s) => s === "ran").length, 1);
  assert.equal(by.b, "interrupted");
  assert.equal(store.keys().length, 1, "only the finished instance is in the store");
  assert.deepEqual([...Deno.readDirSync(`${store.home}/tmp`)], [], "no temp dirs");
  assert.deepEqual(new BuildLog(store.home).history(), [], "no run recorded");
});

Deno.test("scheduler: a time from another pipeline's stage of the same type is named as such, not as this stage's ETA", async () => {
  const { plan, store } = await setup(`pipelines:
  demo:
    stages:
      a:
        uses: test/write
`);
  const lines: string[] = [];
  const opts = { ...options(store, new FakeRunner(), 1), progress: (l: string) => lines.push(l) };
  opts.log.saveTiming("other", "x", "test/write", 125);
  await execute(plan, plan.instances, store, opts);
  assert.ok(lines.includes("[a] running (the last test/write stage took 2m05s)"), lines.join("\n"));
  await execute(plan, plan.instances, store, { ...opts, force: new Set(["a"]) });
  assert.ok(
    lines.some((l) => /^\[a\] running \(ETA ~\d+\.\ds from an earlier run\)$/.test(l)),
    lines.join("\n"),
  );
});
