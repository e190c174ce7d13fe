/**
 * `analysis/compare`: fan-in over the evaluation matrix; writes metrics.json, analysis.json,
 * report.md and report.html. An optional `eval/retrieval` input gives the pretrained
 * checkpoint's sentence retrieval per language.
 * @module
 */
import { z } from "zod";
import { inputOfType, inputsOfType, type StageType } from "../pipeline/stage.ts";
import { referenceSchema } from "../eval/contracts.ts";

const schema = z.strictObject({
  baseline: z.string().default("full"),
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

/** Writes `metrics.json`, `analysis.json`, `report.md`, `report.html`. */
export const stage: StageType<typeof schema> = {
  type: "analysis/compare",
  description: "compare methods across seeds and languages; statistics and an HTML report",
  schema,
  publish: ["metrics.json", "analysis.json", "report.md", "report.html"],
  async run(ctx) {
    const { analyze, majorityFloor } = await import("../eval/compare.ts");
    const { parseMetrics, parseWith, reportTaskSchema, retrievalRowSchema } = await import(
      "../eval/contracts.ts"
    );
    const { markdown } = await import("../eval/report.ts");
    const { html } = await import("../eval/report_html.ts");
    const { readShard } = await import("../data/shards.ts");
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const raw = JSON.parse(await Deno.readTextFile(`${taskDir}/task.json`));
    const task = parseWith(reportTaskSchema, raw, `${taskDir}/task.json`);
    const rows = [];
    const evals = inputsOfType(ctx, ["eval/"]).filter((ev) => !ev.type.startsWith("eval/retrieval"));
    for (const ev of evals) {
      const m = JSON.parse(await Deno.readTextFile(`${ev.dir}/metrics.json`));
      const method = methodLabel(ev.matrix, m.method), seed = Number(ev.matrix.seed ?? 0);
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
      for (const [li, language] of s.index.languages.entries()) {
        // Each language is scored on its test split when it has one, else on dev (as eval/classify does).
        if ((raw.languages[language].examples.test > 0 ? "test" : "dev") !== split) continue;
        const labels: number[] = [];
        for (let r = 0; r < s.index.n; r++) if (s.langs[r] === li) labels.push(s.labels[r]);
        gold.push({
          language,
          split: task.train_languages.includes(language) ? "source" as const : "test" as const,
          gold: labels,
        });
      }
    }
    rows.push(...majorityFloor((await readShard(taskDir, "train")).labels, gold));
    const analysis = analyze(rows, {
      baseline: ctx.params.baseline,
      pairs: "all",
      resamples: ctx.params.resamples,
      seed: ctx.params.seed,
      task,
      checkpointRetrieval,
      references: ctx.params.references,
    });
    const curves = [];
    for (const ft of inputsOfType(ctx, ["train/"])) {
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
  },
};
