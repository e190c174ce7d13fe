/**
 * `analysis/compare`: fan-in over the evaluation matrix; writes metrics.json, report.md
 * and report.html.
 * @module
 */
import { z } from "zod";
import { inputOfType, inputsOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  baseline: z.string().default("full"),
  resamples: z.number().int().min(100).default(10000),
  seed: z.number().int().default(0),
  tie: z.number().min(0).default(0.005),
  title: z.string().default("GradDrop comparison"),
});

/** Writes `metrics.json`, `analysis.json`, `report.md`, `report.html`. */
export const stage: StageType<typeof schema> = {
  type: "analysis/compare",
  description: "compare methods across seeds and languages; statistics and an HTML report",
  schema,
  publish: ["metrics.json", "analysis.json", "report.md", "report.html"],
  async run(ctx) {
    const { compare } = await import("../eval/compare.ts");
    const { markdown, html } = await import("../eval/report.ts");
    const { readShard } = await import("../data/shards.ts");
    const { scores } = await import("../eval/stats.ts");
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const task = JSON.parse(await Deno.readTextFile(`${taskDir}/task.json`));
    const rows = [];
    for (const ev of inputsOfType(ctx, ["eval/"])) {
      const m = JSON.parse(await Deno.readTextFile(`${ev.dir}/metrics.json`));
      const method = String(ev.matrix.method ?? "model"), seed = Number(ev.matrix.seed ?? 0);
      for (const r of m.rows) {
        rows.push({ method, seed, language: r.language, split: r.split, accuracy: r.accuracy, f1: r.f1 });
      }
    }
    if (rows.length === 0) throw new Error("analysis/compare: no eval/classify inputs");
    // The majority-class floor: always predict the most frequent training label.
    const train = await readShard(taskDir, "train");
    const counts = new Map<number, number>();
    for (const l of train.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
    const majority = [...counts].sort((a, b) => b[1] - a[1])[0][0];
    for (const split of ["dev", "test"] as const) {
      const s = await readShard(taskDir, split);
      for (const [li, lang] of s.index.languages.entries()) {
        const info = task.languages[lang];
        const scoredOn = info.examples.test > 0 ? "test" : "dev";
        if (scoredOn !== split) continue;
        const gold: number[] = [];
        for (let r = 0; r < s.index.n; r++) if (s.langs[r] === li) gold.push(s.labels[r]);
        if (gold.length === 0) continue;
        const sc = scores(gold, gold.map(() => majority));
        const splitName = task.train_languages.includes(lang) ? "source" : "test";
        rows.push({
          method: "majority",
          seed: 0,
          language: lang,
          split: splitName,
          accuracy: sc.accuracy,
          f1: sc.f1,
        });
      }
    }
    const c = compare(rows as never, task, {
      baseline: ctx.params.baseline,
      resamples: ctx.params.resamples,
      seed: ctx.params.seed,
      tie: ctx.params.tie,
    });
    const curves = [];
    for (const ft of inputsOfType(ctx, ["train/"])) {
      const log = (await Deno.readTextFile(`${ft.dir}/train_log.jsonl`)).split("\n").filter(Boolean).map((
        l,
      ) => JSON.parse(l));
      for (const r of log) {
        curves.push({
          method: String(ft.matrix.method),
          seed: Number(ft.matrix.seed),
          step: r.step,
          loss: r.loss,
        });
      }
    }
    const covariate = c.vs_baseline.flatMap((v) =>
      v.gains.filter((g) =>
        typeof task.languages[g.language]?.pretrain_share === "number" &&
        task.languages[g.language].pretrain_share > 0
      )
        .map((g) => ({
          method: v.method,
          language: g.language,
          gain: g.gain,
          pretrain_share: task.languages[g.language].pretrain_share,
        }))
    );
    const notes = [
      `Task: ${task.name}; ${c.languages.length} languages (${
        task.train_languages.join(", ")
      } as source); labels: ${task.labels.join(", ")}.`,
      `Statistics: two-sided paired permutation test over (zero-shot language, seed) pairs against ${ctx.params.baseline}; Spearman's rho with permutation p-values; ${ctx.params.resamples} resamples, seed ${ctx.params.seed}. Ties: |gain| <= ${ctx.params.tie}.`,
    ];
    const md = markdown(c, ctx.params.title, notes);
    await Deno.writeTextFile(`${ctx.out}/metrics.json`, JSON.stringify({ rows }, null, 1));
    await Deno.writeTextFile(`${ctx.out}/analysis.json`, JSON.stringify(c, null, 1));
    await Deno.writeTextFile(`${ctx.out}/report.md`, md);
    await Deno.writeTextFile(
      `${ctx.out}/report.html`,
      await html(c, ctx.params.title, md, curves, covariate),
    );
    for (const s of c.summary) {
      ctx.log(
        `${s.method}: source ${(100 * s.source_mean).toFixed(1)}, zero-shot ${
          (100 * s.zero_shot_mean).toFixed(1)
        }`,
      );
    }
  },
};
