/**
 * graddrop CLI: `run`, `status`, `dag`, `gc`, `doctor`.
 *
 * Exit codes: 0 success, 1 a stage failed, 2 bad config or usage.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { loadConfig } from "./pipeline/config.ts";
import { ConfigError } from "./pipeline/errors.ts";
import { makePlan, type Plan, restrict } from "./pipeline/plan.ts";
import { execute, fmtSeconds, gc, staleness } from "./pipeline/execute.ts";
import { Store } from "./pipeline/store.ts";
import { builtinStageTypes } from "./stages/registry.ts";

const USAGE = `usage: main.ts <command> [PIPELINE] [options]
  run     [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--only ID]... [--force[=ID]] [--dry-run] [--jobs N] [--json]
  status  [PIPELINE] [--config FILE] [--set PATH=VALUE]... [--json]
  dag     [PIPELINE] [--config FILE] [--json | --mermaid]
  gc      [--config FILE]
  doctor  [--json]`;

function storeHome(): string {
  return Deno.env.get("GRADDROP_HOME") ?? `${new URL(".", import.meta.url).pathname}.graddrop`;
}

async function main(argv: string[]): Promise<number> {
  // A bare `--force` means every stage; parseArgs needs a value for string options.
  const args = argv.map((a) => (a === "--force" ? "--force=*" : a));
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: "string", default: "pipelines.yaml" },
      set: { type: "string", multiple: true, default: [] },
      only: { type: "string", multiple: true, default: [] },
      force: { type: "string", multiple: true },
      "dry-run": { type: "boolean", default: false },
      jobs: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      mermaid: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, pipelineArg] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === "doctor") {
    const { doctor } = await import("./platform/doctor.ts");
    return await doctor(values.json);
  }
  if (!["run", "status", "dag", "gc"].includes(command)) {
    throw new ConfigError(`unknown command '${command}'\n${USAGE}`);
  }
  const cfg = await loadConfig(values.config, pipelineArg, values.set);
  const store = new Store(storeHome());
  if (command === "gc") {
    const plans: Plan[] = [];
    for (const name of cfg.order) plans.push(await makePlan(cfg, name, builtinStageTypes));
    const { removed, bytes } = gc(plans, store);
    console.log(`removed ${removed.length} entries, freed ${(bytes / 1e6).toFixed(1)} MB`);
    return 0;
  }
  const name = pipelineArg ?? cfg.order[0];
  const plan = await makePlan(cfg, name, builtinStageTypes);
  const instances = restrict(plan, values.only);
  if (command === "dag") {
    printDag(plan, values.json, values.mermaid);
    return 0;
  }
  if (command === "status" || values["dry-run"]) {
    const info = staleness(plan, instances, store);
    if (values.json) console.log(JSON.stringify({ pipeline: name, stages: info }));
    else {
      for (const s of info) {
        console.log(
          `${s.state === "cached" ? "cached" : values["dry-run"] ? "would run" : "stale"}  ${s.id}${
            s.reasons.length ? `  (${s.reasons.join("; ")})` : ""
          }`,
        );
      }
    }
    return 0;
  }
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new ConfigError(`--jobs ${values.jobs}: expected a positive integer`);
  }
  const force = values.force === undefined
    ? new Set<string>()
    : values.force.includes("*")
    ? "all" as const
    : new Set(values.force);
  const t0 = performance.now();
  const results = await execute(plan, instances, store, {
    jobs,
    force,
    progress: (line) => console.error(line),
    resultsDir: `${dirname(values.config)}/results/${name}`,
  });
  const ok = results.every((r) => r.status === "ran" || r.status === "cached");
  const total = (performance.now() - t0) / 1000;
  if (values.json) {
    console.log(JSON.stringify({
      pipeline: name,
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
  const count = (s: string) => results.filter((r) => r.status === s).length;
  console.error(
    `${ok ? "ok" : "FAILED"}: ${count("ran")} ran, ${count("cached")} cached, ${count("failed")} failed, ${
      count("skipped")
    } skipped in ${fmtSeconds(total)}`,
  );
  return ok ? 0 : 1;
}

function printDag(plan: Plan, json: boolean, mermaid: boolean): void {
  if (json) {
    console.log(JSON.stringify({
      pipeline: plan.pipeline,
      stages: plan.instances.map((i) => ({
        id: i.id,
        type: i.type,
        matrix: i.matrix,
        needs: i.needs.flatMap((n) => n.ids),
      })),
    }));
  } else if (mermaid) {
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
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
