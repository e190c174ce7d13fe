/**
 * `analysis/compare`: fan-in over the evaluation matrix; writes metrics.json, analysis.json,
 * report.md and report.html. An optional `eval/retrieval` input gives the pretrained
 * checkpoint's sentence retrieval per language; any other `eval/*` output whose metrics.json
 * names its own `method` (char-ngram, bag-of-subwords) is a non-neural baseline; `train/*`
 * inputs give the loss and dev curves.
 * @module
 */
import { z } from "zod";
import { inputOfType, inputsOfType, type StageType } from "../pipeline/stage.ts";
import { primarySpecSchema, recipeSchema, referenceSchema } from "../eval/contracts.ts";

const schema = z.strictObject({
  baseline: z.string().default("full"),
  /**
   * The comparisons the pipeline exists to make, declared before it runs: `"A:B"` (a − b on
   * zero-shot accuracy), `"A:B:metric"` (accuracy, f1, retrieval_kept) or `{a, b, metric?}`.
   * Holm runs over these alone; every other test is exploratory.
   */
  primary: z.array(primarySpecSchema).default([]),
  /** How the recipe was chosen, for the report's "Recipe" paragraph. */
  recipe: recipeSchema.optional(),
  resamples: z.number().int().min(100).default(10000),
  seed: z.number().int().default(0),
  title: z.string().default("GradDrop comparison"),
  /** Published figures shown beside ours, e.g. `{label: "XLM-R base (SIB-200 paper)", english: 90.0}`. */
  references: z.array(referenceSchema).default([]),
});

/**
 * A method's name in the report: the `method` matrix value (or what the stage reports), with
 * any other matrix values but the seed, e.g. `graddrop (rate=0.3)` in a sweep.
 */
function methodLabel(matrix: Record<string, string | number | boolean>, reported?: string): string {
  const base = String(matrix.method ?? reported ?? "model");
  const rest = Object.entries(matrix).filter(([k]) => k !== "method" && k !== "seed")
    .map(([k, v]) => `${k.split(".").pop()}=${v}`);
  return rest.length ? `${base} (${rest.join(", ")})` : base;
}

const devMetricsSchema = z.looseObject({
  dev_curve: z.array(z.object({ epoch: z.number(), step: z.number().nullish(), accuracy: z.number() }))
    .optional(),
  dev_accuracy: z.array(z.number()).optional(),
});

/** A fine-tune's dev curve from its `dev_metrics.json`: `dev_curve` when given, else `dev_accuracy` per epoch. */
async function readDevCurve(dir: string, method: string, seed: number) {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/dev_metrics.json`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const { parseWith } = await import("../eval/contracts.ts");
  const d = parseWith(devMetricsSchema, JSON.parse(text), `${dir}/dev_metrics.json`);
  const points = d.dev_curve ??
    (d.dev_accuracy ?? []).map((accuracy, i) => ({ epoch: i + 1, step: null, accuracy }));
  return points.map((p) => ({ method, seed, epoch: p.epoch, step: p.step ?? null, accuracy: p.accuracy }));
}

/** Writes `metrics.json`, `analysis.json`, `report.md`, `report.html`. */
export const stage: StageType<typeof schema> = {
  type: "analysis/compare",
  description: "compare methods across seeds and languages; statistics and an HTML report",
  schema,
  publish: ["metrics.json", "analysis.json", "report.md", "report.html"],
  async run(ctx) {
    const { analyze, majorityFloor } = await import("../eval/compare.ts");
    const { normalisePrimary, parseMetrics, parseWith, reportTaskSchema, retrievalRowSchema } = await import(
      "../eval/contracts.ts"
    );
    const { markdown } = await import("../eval/report.ts");
    const { html } = await import("../eval/report_html.ts");
    const { readShard, rowsInLanguages } = await import("../data/shards.ts");
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const raw = JSON.parse(await Deno.readTextFile(`${taskDir}/task.json`));
    const task = parseWith(reportTaskSchema, raw, `${taskDir}/task.json`);
    const rows = [];
    const nonNeural = new Set<string>();
    const evals = inputsOfType(ctx, ["eval/"]).filter((ev) => !ev.type.startsWith("eval/retrieval"));
    for (const ev of evals) {
      const m = JSON.parse(await Deno.readTextFile(`${ev.dir}/metrics.json`));
      const method = methodLabel(ev.matrix, m.method), seed = Number(ev.matrix.seed ?? 0);
      // eval/classify scores a fine-tuned encoder; any other stage naming its method is a baseline of its own.
      if (ev.type !== "eval/classify" && typeof m.method === "string") nonNeural.add(method);
      const own = (m.rows ?? []).map((r: Record<string, unknown>) => ({ ...r, method, seed }));
      rows.push(...parseMetrics({ rows: own }, `${ev.dir}/metrics.json`));
    }
    if (rows.length === 0) throw new Error("analysis/compare: no eval/classify inputs");
    const references = inputsOfType(ctx, ["eval/retrieval"]);
    if (references.length > 1) {
      throw new Error(
        `analysis/compare: expected at most one eval/retrieval input (the pretrained checkpoint), found ${
          references.map((r) => r.id).join(", ")
        }`,
      );
    }
    const checkpointRetrieval = references.length
      ? parseWith(
        z.object({ rows: z.array(retrievalRowSchema) }),
        JSON.parse(await Deno.readTextFile(`${references[0].dir}/metrics.json`)),
        `${references[0].dir}/metrics.json`,
      ).rows
      : undefined;
    const gold = [];
    for (const split of ["dev", "test"] as const) {
      const s = await readShard(taskDir, split);
      for (const language of s.index.languages) {
        // Each language is scored on its test split when it has one, else on dev (as eval/classify does).
        if ((raw.languages[language].examples.test > 0 ? "test" : "dev") !== split) continue;
        const labels = rowsInLanguages(s, [language]).map((r) => s.labels[r]);
        gold.push({
          language,
          split: task.train_languages.includes(language) ? "source" as const : "test" as const,
          gold: labels,
        });
      }
    }
    rows.push(...majorityFloor((await readShard(taskDir, "train")).labels, gold));
    const curves = [], devCurves = [];
    for (const ft of inputsOfType(ctx, ["train/"])) {
      devCurves.push(...await readDevCurve(ft.dir, methodLabel(ft.matrix), Number(ft.matrix.seed)));
      const log = (await Deno.readTextFile(`${ft.dir}/train_log.jsonl`)).split("\n").filter(Boolean);
      for (const line of log) {
        const r = JSON.parse(line);
        curves.push({
          method: methodLabel(ft.matrix),
          seed: Number(ft.matrix.seed),
          step: r.step,
          loss: r.loss,
        });
      }
    }
    const analysis = analyze(rows, {
      baseline: ctx.params.baseline,
      pairs: "all",
      primary: ctx.params.primary.map(normalisePrimary),
      resamples: ctx.params.resamples,
      seed: ctx.params.seed,
      task,
      checkpointRetrieval,
      references: ctx.params.references,
      nonNeural: [...nonNeural],
      devCurves,
      recipe: ctx.params.recipe,
    });
    const notes = [
      `Task: ${task.name}; ${analysis.languages.test.length} zero-shot languages, ${
        task.train_languages.join(", ")
      } as source; labels: ${task.labels.join(", ")}.`,
    ];
    const md = markdown(analysis, ctx.params.title, notes);
    await Deno.writeTextFile(`${ctx.out}/metrics.json`, JSON.stringify({ rows }, null, 1));
    await Deno.writeTextFile(`${ctx.out}/analysis.json`, JSON.stringify(analysis, null, 1));
    await Deno.writeTextFile(`${ctx.out}/report.md`, md);
    await Deno.writeTextFile(`${ctx.out}/report.html`, await html(analysis, ctx.params.title, md, curves));
    for (const s of analysis.summary) {
      ctx.log(
        `${s.method}: source ${s.source?.mean.toFixed(1) ?? "n/a"}, zero-shot ${
          s.zero_shot?.mean.toFixed(1) ?? "n/a"
        }`,
      );
    }
    for (const c of analysis.comparisons.filter((c) => c.family !== "exploratory")) {
      ctx.log(
        `${c.family} ${c.a} - ${c.b} (${c.metric}, ${c.split}): ${c.gain.toFixed(2)} points, p_Holm ${
          c.p_holm.toFixed(3)
        }`,
      );
    }
  },
};
