/**
 * Turns one declared pipeline into validated stage instances in topological order:
 * matrix expansion, `foreach` pairing, fan-in, cycle and reference checks, and each
 * instance's `with` checked by its stage type's zod schema.
 * @module
 */
import type { LoadedConfig, StageDecl } from "./config.ts";
import { ConfigError, located } from "./errors.ts";
import { declaredInputPaths, declaredLookups, loadStageType, type StageType } from "./stage.ts";
import { resolveInputPath } from "./input_files.ts";

type MatrixValues = Record<string, string | number | boolean>;

/** One runnable instance of a stage. */
export interface Instance {
  /** `finetune` or `finetune[method=graddrop,seed=1]`. */
  id: string;
  stage: string;
  type: string;
  modulePath: string;
  definition: StageType;
  params: Record<string, unknown>;
  matrix: MatrixValues;
  /** Upstream instance ids, grouped by needed stage, in `needs` order. */
  needs: { stage: string; ids: string[] }[];
  /** Seconds without output before the stage is killed, when the declaration sets it. */
  timeout?: number;
}

/** A pipeline's instances in an order where every need comes first. */
export interface Plan {
  pipeline: string;
  instances: Instance[];
  byId: Map<string, Instance>;
}

/** Instance id for a stage and its matrix values, keys in declaration order. */
function instanceId(stage: string, matrix: MatrixValues): string {
  const keys = Object.keys(matrix);
  if (keys.length === 0) return stage;
  return `${stage}[${keys.map((k) => `${k}=${matrix[k]}`).join(",")}]`;
}

function cartesian(matrix: Record<string, (string | number | boolean)[]>): MatrixValues[] {
  let rows: MatrixValues[] = [{}];
  for (const [k, values] of Object.entries(matrix)) {
    rows = rows.flatMap((r) => values.map((v) => ({ ...r, [k]: v })));
  }
  return rows;
}

function topoOrder(cfg: LoadedConfig, name: string, stages: Record<string, StageDecl>): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (id: string, trail: string[]) => {
    if (state.get(id) === "done") return;
    if (state.get(id) === "visiting") {
      const cycle = [...trail.slice(trail.indexOf(id)), id].join(" -> ");
      throw new ConfigError(
        located(
          cfg.file,
          cfg.locate(["pipelines", name, "stages", id]),
          `pipelines.${name}.stages.${id}`,
          `cycle: ${cycle}`,
        ),
      );
    }
    state.set(id, "visiting");
    const decl = stages[id];
    const needs = [
      ...decl.needs,
      ...(decl.foreach && !decl.needs.includes(decl.foreach) ? [decl.foreach] : []),
    ];
    needs.forEach((need, i) => {
      if (!stages[need]) {
        const field = decl.foreach === need && !decl.needs.includes(need) ? ["foreach"] : ["needs", i];
        throw new ConfigError(
          located(
            cfg.file,
            cfg.locate(["pipelines", name, "stages", id, ...field]),
            `pipelines.${name}.stages.${id}.${field.join(".")}`,
            `unknown stage '${need}' (stages: ${Object.keys(stages).join(", ")})`,
          ),
        );
      }
      visit(need, [...trail, id]);
    });
    state.set(id, "done");
    order.push(id);
  };
  for (const id of Object.keys(stages)) visit(id, []);
  return order;
}

/**
 * Expands and validates a pipeline.
 *
 * @example
 * ```ts ignore
 * const cfg = await loadConfig("pipelines.yaml");
 * const plan = await makePlan(cfg, cfg.order[0], builtinStageTypes);
 * for (const inst of plan.instances) console.log(inst.id);
 * ```
 */
export async function makePlan(
  cfg: LoadedConfig,
  name: string,
  builtins: Record<string, string>,
): Promise<Plan> {
  const decl = cfg.pipelines[name];
  if (!decl) {
    throw new ConfigError(`${cfg.file}: no pipeline '${name}' (pipelines: ${cfg.order.join(", ")})`);
  }
  const known = { ...builtins, ...cfg.stageTypes };
  const stages = decl.stages;
  for (const [id, s] of Object.entries(stages)) {
    if (!known[s.uses]) {
      throw new ConfigError(
        located(
          cfg.file,
          cfg.locate(["pipelines", name, "stages", id, "uses"]),
          `pipelines.${name}.stages.${id}.uses`,
          `unknown stage type '${s.uses}' (known: ${Object.keys(known).sort().join(", ")})`,
        ),
      );
    }
    if (s.matrix && s.foreach) {
      throw new ConfigError(
        located(
          cfg.file,
          cfg.locate(["pipelines", name, "stages", id, "foreach"]),
          `pipelines.${name}.stages.${id}`,
          "a stage has either matrix or foreach, not both",
        ),
      );
    }
  }
  const order = topoOrder(cfg, name, stages);
  const instances: Instance[] = [];
  const byStage = new Map<string, Instance[]>();
  const types = new Map<string, StageType>();
  for (const id of order) {
    const s = stages[id];
    let definition = types.get(s.uses);
    if (!definition) {
      definition = await loadStageType(s.uses, known[s.uses]);
      types.set(s.uses, definition);
    }
    const cells: MatrixValues[] = s.foreach
      ? byStage.get(s.foreach)!.map((i) => i.matrix)
      : cartesian(s.matrix ?? {});
    const made: Instance[] = [];
    for (const matrix of cells) {
      const iid = instanceId(id, matrix);
      const needs = [...s.needs, ...(s.foreach && !s.needs.includes(s.foreach) ? [s.foreach] : [])].map(
        (need) => {
          // A cell takes the upstream instances that agree with its matrix values; a plain stage takes all.
          const ids = byStage.get(need)!.filter((up) =>
            Object.entries(up.matrix).every(([k, v]) => !(k in matrix) || matrix[k] === v)
          ).map((up) => up.id);
          return { stage: need, ids };
        },
      );
      // A foreach stage carries its cell's matrix values as identity; only a stage's own matrix feeds `with`.
      const merged = s.foreach ? { ...s.with } : withMatrix(s.with, matrix);
      const parsed = definition.schema.safeParse(merged);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const key = issue.code === "unrecognized_keys" ? issue.keys[0] : issue.path[0];
        const field = typeof key === "string" && key in matrix && !(key in s.with) ? "matrix" : "with";
        const path = [
          ...issue.path.map(String),
          ...(issue.code === "unrecognized_keys" ? [issue.keys[0]] : []),
        ];
        const msg = issue.code === "unrecognized_keys"
          ? `unknown key '${issue.keys[0]}' for ${s.uses}`
          : issue.message;
        const dotted = `pipelines.${name}.stages.${id}.${field}${path.length ? "." + path.join(".") : ""}`;
        const viaSet = cfg.overridden.find((o) => dotted.startsWith(o) || o.startsWith(dotted));
        throw new ConfigError(
          located(
            cfg.file,
            viaSet ? undefined : cfg.locate(
              ["pipelines", name, "stages", id, field, ...path],
              issue.code === "unrecognized_keys",
            ),
            dotted,
            msg,
          ) +
            (viaSet ? ` (from --set ${viaSet})` : "") + (cells.length > 1 ? ` (in ${iid})` : ""),
        );
      }
      const params = parsed.data as Record<string, unknown>;
      for (const k of declaredInputPaths(definition.schema).keys()) {
        if (typeof params[k] !== "string") continue;
        // A path typed on the command line is the user's own, relative to where they stand.
        const fromSet = cfg.overridden.includes(`pipelines.${name}.stages.${id}.with.${k}`);
        const raw = params[k] as string;
        params[k] = resolveInputPath(raw, fromSet ? Deno.cwd() : cfg.dir);
        const lookup = declaredLookups(definition.schema).get(k);
        if (lookup && !pathExists(params[k] as string)) params[k] = lookup.find(raw) ?? params[k];
      }
      made.push({
        id: iid,
        stage: id,
        type: s.uses,
        modulePath: known[s.uses],
        definition,
        params,
        matrix,
        needs,
        timeout: s.timeout,
      });
    }
    byStage.set(id, made);
    instances.push(...made);
  }
  return { pipeline: name, instances, byId: new Map(instances.map((i) => [i.id, i])) };
}

function pathExists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `with` plus a cell's matrix values; a dotted key (`graddrop.rate`) sets a nested value.
 *
 * @example
 * ```ts
 * import { withMatrix } from "./plan.ts";
 * const w = withMatrix({ graddrop: { rescale: true } }, { "graddrop.rate": 0.3, seed: 1 });
 * if (JSON.stringify(w) !== '{"graddrop":{"rescale":true,"rate":0.3},"seed":1}') throw new Error(JSON.stringify(w));
 * ```
 */
export function withMatrix(base: Record<string, unknown>, matrix: MatrixValues): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(matrix)) {
    const path = k.split(".");
    let node = out;
    for (const p of path.slice(0, -1)) {
      if (!node[p] || typeof node[p] !== "object") node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[path[path.length - 1]] = v;
  }
  return out;
}

/** The instances `only` names plus everything they need, in plan order. */
export function restrict(plan: Plan, only: string[]): Instance[] {
  if (only.length === 0) return plan.instances;
  const keep = new Set<string>();
  const add = (id: string) => {
    if (keep.has(id)) return;
    keep.add(id);
    for (const n of plan.byId.get(id)!.needs) n.ids.forEach(add);
  };
  for (const o of only) {
    const hits = plan.instances.filter((i) => i.id === o || i.stage === o);
    if (hits.length === 0) {
      throw new ConfigError(`--only ${o}: no such stage or instance in pipeline '${plan.pipeline}'`);
    }
    hits.forEach((h) => add(h.id));
  }
  return plan.instances.filter((i) => keep.has(i.id));
}
