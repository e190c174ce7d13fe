/**
 * `main.ts diff DIR_A DIR_B [--json] [--epsilon X]`: what changed between two results
 * folders (`results/<pipeline>/` of two runs), as the Markdown a pull-request comment shows
 * or as JSON.
 * @module
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError } from "../pipeline/errors.ts";
import { type AnalysisSummary, diffMarkdown, diffResults, type ResultsSide } from "./results_diff.ts";

const USAGE = "usage: main.ts diff DIR_A DIR_B [--json] [--epsilon X] (X in accuracy, default 0.005)";

const Metrics = z.object({
  rows: z.array(z.object({
    method: z.string(),
    seed: z.number(),
    language: z.string(),
    split: z.enum(["source", "test"]),
    accuracy: z.number(),
    f1: z.number(),
  })),
});

/**
 * What the diff reads of `analysis.json` (written by `analysis/compare`): each method's gain
 * in zero-shot accuracy over the report's baseline, in points, and its Holm-adjusted p
 * (older analyses, without `metric` and `split`, compared accuracy on zero-shot only).
 */
const Analysis = z.object({
  baseline: z.string().nullable(),
  comparisons: z.array(z.object({
    a: z.string(),
    b: z.string(),
    gain: z.number(),
    p_holm: z.number(),
    metric: z.string().default("accuracy"),
    split: z.string().default("test"),
  })),
}).transform((x): AnalysisSummary => ({
  vs_baseline: x.comparisons.filter((c) =>
    c.b === x.baseline && c.metric === "accuracy" && c.split === "test"
  ).map((
    c,
  ) => ({
    method: c.a,
    baseline: c.b,
    mean_gain: c.gain / 100,
    p_value: c.p_holm,
  })),
}));

/**
 * Runs the command with the arguments after `diff`; prints to stdout and returns the exit
 * code. A missing or malformed file throws a {@link ConfigError} naming it (exit 2).
 *
 * @example
 * ```ts ignore
 * if (command === "diff") return await diffCommand(Deno.args.slice(1));
 * ```
 */
export async function diffCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { json: { type: "boolean", default: false }, epsilon: { type: "string", default: "0.005" } },
  });
  if (positionals.length !== 2) throw new ConfigError(USAGE);
  const epsilon = Number(values.epsilon);
  if (!(epsilon >= 0)) throw new ConfigError(`--epsilon ${values.epsilon}: expected a number >= 0`);
  const [dirA, dirB] = positionals.map((d) => d.replace(/\/+$/, ""));
  const diff = diffResults(await readSide(dirA), await readSide(dirB), epsilon);
  console.log(values.json ? JSON.stringify(diff, null, 2) : diffMarkdown(diff, dirA, dirB));
  return 0;
}

async function readSide(dir: string): Promise<ResultsSide> {
  const rows = (await readJson(`${dir}/metrics.json`, Metrics, true))!.rows;
  const analysis: AnalysisSummary | undefined = await readJson(`${dir}/analysis.json`, Analysis, false);
  return { rows, analysis };
}

/** Parses a JSON file against `schema`; undefined when it is optional and absent. */
async function readJson<T>(file: string, schema: z.ZodType<T>, required: boolean): Promise<T | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && !required) return undefined;
    throw new ConfigError(
      `${file}: ${e instanceof Deno.errors.NotFound ? "not found" : (e as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${file}: ${issue.path.join(".") || "top level"}: ${issue.message}`);
  }
  return parsed.data;
}
