/**
 * Loads `pipelines.yaml`: YAML parse, `--set` overrides, and zod validation of the file's
 * shape. Every error names the file, line:column and the dotted path.
 * @module
 */
import { type Document, isMap, isScalar, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError, located } from "./errors.ts";

const Scalar = z.union([z.string(), z.number(), z.boolean()]);
const Id = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, "ids use letters, digits, _ and -");

const StageDecl = z.strictObject({
  uses: z.string(),
  needs: z.array(Id).default([]),
  with: z.record(z.string(), z.unknown()).default({}),
  matrix: z.record(z.string(), z.array(Scalar).min(1)).optional(),
  foreach: Id.optional(),
  /** Seconds a stage may go without any output before it is killed (default: 30 minutes). */
  timeout: z.number().positive().optional(),
});

const PipelineDecl = z.strictObject({
  description: z.string().optional(),
  stages: z.record(Id, StageDecl),
});

const FileDecl = z.strictObject({
  stage_types: z.record(z.string(), z.string()).optional(),
  pipelines: z.record(Id, PipelineDecl),
});

/** One stage as declared in the file. */
export type StageDecl = z.infer<typeof StageDecl>;
/** One pipeline as declared in the file. */
export type PipelineDecl = z.infer<typeof PipelineDecl>;

/** A loaded, shape-checked pipelines file with source positions for later errors. */
export interface LoadedConfig {
  file: string;
  pipelines: Record<string, PipelineDecl>;
  /** Extra stage types: name -> absolute module path. */
  stageTypes: Record<string, string>;
  /** Pipeline name in file order; the first is the default. */
  order: string[];
  /** Source position of a dotted path (deepest node that exists). */
  locate(path: (string | number)[], atKey?: boolean): { line: number; col: number } | undefined;
  /** Paths changed by `--set`, so errors there can name the flag. */
  overridden: string[];
  /** Directory relative input paths in the file are taken from. */
  dir: string;
}

/**
 * Reads and validates a pipelines file, applying `--set PATH=VALUE` overrides to `pipeline`.
 *
 * @example
 * ```ts ignore
 * const cfg = await loadConfig("pipelines.yaml", "demo", ["stages.finetune.with.epochs=1"]);
 * ```
 */
export async function loadConfig(
  file: string,
  pipeline?: string,
  sets: string[] = [],
): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as Error).message}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, col: p.col };
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new ConfigError(located(file, pos(e.pos[0]), "", e.message.split("\n")[0]));
  }
  const locate = (path: (string | number)[], atKey = false) => locateIn(doc, path, pos, atKey);
  const raw = doc.toJS() ?? {};
  const order = raw && typeof raw === "object" && raw.pipelines && typeof raw.pipelines === "object"
    ? Object.keys(raw.pipelines)
    : [];
  const overridden: string[] = [];
  if (sets.length > 0) {
    const name = pipeline ?? order[0];
    if (!name || !raw.pipelines?.[name]) {
      throw new ConfigError(`${file}: --set: no pipeline '${name}'`);
    }
    for (const s of sets) overridden.push(applySet(raw.pipelines[name], s, name));
  }
  const parsed = FileDecl.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.map((p) => typeof p === "symbol" ? String(p) : p);
    const dotted = path.join(".");
    const viaSet = overridden.find((o) => dotted.startsWith(o) || o.startsWith(dotted));
    const message = issue.code === "unrecognized_keys"
      ? `unknown key ${issue.keys.map((k) => `'${k}'`).join(", ")}`
      : issue.message;
    const where = issue.code === "unrecognized_keys" ? [...path, issue.keys[0]] : path;
    throw new ConfigError(
      located(file, viaSet ? undefined : locate(where, issue.code === "unrecognized_keys"), dotted, message) +
        (viaSet ? ` (from --set ${viaSet})` : ""),
    );
  }
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".";
  const stageTypes: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed.data.stage_types ?? {})) {
    stageTypes[k] = v.startsWith("/") ? v : `${Deno.realPathSync(dir)}/${v}`;
  }
  return {
    file,
    pipelines: parsed.data.pipelines,
    stageTypes,
    order,
    locate,
    overridden,
    dir: Deno.realPathSync(dir),
  };
}

function applySet(root: Record<string, unknown>, assignment: string, name: string): string {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--set ${assignment}: expected PATH=VALUE`);
  const path = assignment.slice(0, eq).split(".");
  const valueDoc = parseDocument(assignment.slice(eq + 1));
  if (valueDoc.errors.length > 0) {
    throw new ConfigError(`--set ${assignment}: ${valueDoc.errors[0].message.split("\n")[0]}`);
  }
  let node: Record<string, unknown> = root;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (!next || typeof next !== "object" || Array.isArray(next)) {
      throw new ConfigError(`--set ${assignment}: pipelines.${name}.${key} is not a mapping`);
    }
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = valueDoc.toJS();
  return `pipelines.${name}.${path.join(".")}`;
}

function locateIn(
  doc: Document,
  path: (string | number)[],
  pos: (o: number) => { line: number; col: number },
  atKey: boolean,
): { line: number; col: number } | undefined {
  for (let n = path.length; n >= 0; n--) {
    const prefix = path.slice(0, n);
    if (n > 0 && isMap(doc.getIn(prefix.slice(0, -1), true))) {
      // Point at the key, not the value, when the last step is a mapping key.
      const parent = doc.getIn(prefix.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === prefix[n - 1]);
        const keyRange = (pair?.key as { range?: number[] } | null)?.range;
        const range = (atKey && n === path.length ? keyRange : undefined) ??
          (pair?.value as { range?: number[] } | null)?.range ?? keyRange;
        if (range) return pos(range[0]);
      }
    }
    const node = n === 0 ? doc.contents : doc.getIn(prefix, true);
    const range = (node as { range?: number[] } | null)?.range;
    if (range) return pos(range[0]);
  }
  return undefined;
}
