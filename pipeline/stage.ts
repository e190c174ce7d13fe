/**
 * The contract between the engine and a stage type.
 *
 * A stage type module exports `stage: StageType`. The engine validates `with` by `schema`,
 * runs `run` in its own subprocess with a fresh output directory, and caches what it wrote.
 * A stage knows nothing of caching, the CLI or other stages: it reads `ctx.inputs` and
 * `ctx.params` and writes files under `ctx.out`.
 * @module
 */
import { z } from "zod";

/** One upstream stage instance's output, as a stage sees it. */
export interface InputRef {
  /** Upstream stage id as named in `needs`. */
  stage: string;
  /** Upstream stage type, e.g. `data/sib200`. */
  type: string;
  /** Instance id, e.g. `finetune[method=full,seed=1]`. */
  id: string;
  /** The matrix values that instance carries. */
  matrix: Record<string, string | number | boolean>;
  /** Its parameters after defaults. */
  params: Record<string, unknown>;
  /** Directory holding its outputs (read-only). */
  dir: string;
}

/** What a running stage gets from the engine. */
export interface StageContext<P> {
  /** This instance's id. */
  id: string;
  /** Validated parameters, defaults applied, matrix values merged. */
  params: P;
  /** Matrix values of this instance (empty for a plain stage). */
  matrix: Record<string, string | number | boolean>;
  /** Upstream outputs: one per needed instance (several for a fan-in over a matrix stage). */
  inputs: InputRef[];
  /** Empty directory for outputs; renamed into the cache only if `run` succeeds. */
  out: string;
  /** Persistent scratch directory for checkpoints; survives a crash, removed on success. */
  work: string;
  /** Log a line (goes to the stage's log and the user's terminal). */
  log(message: string): void;
  /** Report progress as a fraction in [0, 1] with an optional short note. */
  progress(fraction: number, note?: string): void;
}

/** A stage type: its name, parameter schema and run function. */
export interface StageType<S extends z.ZodType = z.ZodType> {
  /** Registered name, e.g. `tokenizer/train`. */
  type: string;
  /** One-line description shown by `dag` and the README. */
  description: string;
  /** zod schema for `with`: strict, with defaults. */
  schema: S;
  /** Output files copied to `results/<pipeline>/` after a run (people read them). */
  publish?: string[];
  /**
   * Facts about this machine that the output depends on and the params do not say (e.g. the
   * backend `auto` resolves to). Called in the engine's process before keying an instance;
   * the result enters the cache key and the manifest. Must be cheap.
   */
  environment?(params: z.infer<S>): Promise<Record<string, string>>;
  /**
   * What the instance will need, stated before anything runs (e.g. memory), from its params
   * and its upstream instances' types and params. `refuse` says why it cannot run here; `run`
   * then refuses the whole run before it starts. Called by `run` (and `--dry-run`, `plan`).
   */
  preflight?(
    params: z.infer<S>,
    upstream: { stage: string; type: string; params: Record<string, unknown> }[],
  ): Promise<Preflight | null>;
  /** Does the work. Heavy libraries are imported inside so the CLI stays fast. */
  run(ctx: StageContext<z.infer<S>>): Promise<void>;
}

/** A stage's statement before it runs: a line for people, facts for `plan --json`, and a refusal. */
export interface Preflight {
  summary: string;
  facts: Record<string, unknown>;
  refuse?: string;
}

/** Marks a string param of a stage schema as a path the stage reads from outside the store. */
export const inputPaths = z.registry<{ kind: "file" | "dir" | "any"; lookup?: PathLookup }>();

/** Where a path param that is not an existing path may point instead (e.g. a model id in a cache). */
export interface PathLookup {
  /** The path `raw` names, or undefined. */
  find(raw: string): string | undefined;
  /** What was also tried, for the message when nothing is found. */
  describe: string;
}

/**
 * A param that names a file or directory the stage reads (data, a checkpoint, a CSV). The
 * engine resolves it to an absolute path (relative to the pipelines file, or to the working
 * directory when it came from `--set`) and keys the instance by the path's CONTENT, so an
 * edited file reruns the stage and the same relative path elsewhere is not mistaken for it.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { inputPath } from "./stage.ts";
 * const schema = z.strictObject({ path: inputPath("dir"), csv: inputPath("file").optional() });
 * ```
 */
export function inputPath(
  kind: "file" | "dir" | "any" = "any",
  lookup?: PathLookup,
): z.ZodString {
  const s = z.string().min(1);
  inputPaths.add(s, { kind, lookup });
  return s;
}

/** The top-level params of a stage schema declared with {@link inputPath}, and their kinds. */
export function declaredInputPaths(schema: z.ZodType): Map<string, "file" | "dir" | "any"> {
  return new Map([...declaredInputMeta(schema)].map(([k, m]) => [k, m.kind]));
}

/** The lookups of a stage schema's input paths that declare one. */
export function declaredLookups(schema: z.ZodType): Map<string, PathLookup> {
  const out = new Map<string, PathLookup>();
  for (const [k, m] of declaredInputMeta(schema)) if (m.lookup) out.set(k, m.lookup);
  return out;
}

function declaredInputMeta(
  schema: z.ZodType,
): Map<string, { kind: "file" | "dir" | "any"; lookup?: PathLookup }> {
  const out = new Map<
    string,
    { kind: "file" | "dir" | "any"; lookup?: PathLookup }
  >();
  const shape = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape;
  if (!shape) return out;
  for (const [key, field] of Object.entries(shape)) {
    let s: z.ZodType | undefined = field;
    // Unwrap .default() / .optional() / .nullable() to the marked string schema.
    for (let i = 0; s && i < 4 && !inputPaths.has(s); i++) {
      s = (s as unknown as { _zod: { def: { innerType?: z.ZodType } } })._zod.def.innerType;
    }
    if (s && inputPaths.has(s)) out.set(key, inputPaths.get(s)!);
  }
  return out;
}

/**
 * The inputs whose stage type starts with one of `prefixes` (e.g. `data/` for any task).
 *
 * @example
 * ```ts
 * import { inputsOfType } from "./stage.ts";
 * const input = (type: string) => ({ stage: "s", type, id: type, matrix: {}, params: {}, dir: "/x" });
 * const ctx = { inputs: [input("train/finetune"), input("data/sib200"), input("train/finetune")] };
 * if (inputsOfType(ctx, ["train/"]).length !== 2) throw new Error("every fine-tuning instance of a fan-in");
 * ```
 */
export function inputsOfType(ctx: { inputs: InputRef[] }, prefixes: string[]): InputRef[] {
  return ctx.inputs.filter((r) => prefixes.some((p) => r.type.startsWith(p)));
}

/** The one input whose type starts with one of `prefixes`; throws naming what was found. */
export function inputOfType(ctx: { inputs: InputRef[] }, prefixes: string[]): InputRef {
  const found = inputsOfType(ctx, prefixes);
  if (found.length !== 1) {
    const have = ctx.inputs.map((r) => `${r.id} (${r.type})`).join(", ") || "none";
    throw new Error(
      `expected exactly one input of type ${prefixes.join(" or ")}*, found ${found.length}; inputs: ${have}`,
    );
  }
  return found[0];
}

/** Imports a stage type module and checks that it exports `stage` with the given name. */
export async function loadStageType(name: string, modulePath: string): Promise<StageType> {
  const mod = await import(`file://${modulePath}`);
  const stage = mod.stage as StageType | undefined;
  if (!stage || stage.type !== name) {
    throw new Error(`${modulePath}: expected an export 'stage' with type '${name}'`);
  }
  return stage;
}
