/**
 * `eval/bag-of-subwords`: tf-idf over the checkpoint tokenizer's pieces with logistic
 * regression, trained on the task's source language with its L2 penalty chosen on the source
 * dev split, scored on every language in the same rows as `eval/classify` (method
 * `bag-of-subwords`).
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  seed: z.number().int().default(1),
  l2_grid: z.array(z.number().min(0)).min(1).default([1e-6, 1e-5, 1e-4, 1e-3, 1e-2]),
  epochs: z.number().int().min(1).default(10),
  lr: z.number().positive().default(0.02),
});

/** Writes `metrics.json` with `method: "bag-of-subwords"`, a row per language and the L2 choice. */
export const stage: StageType<typeof schema> = {
  type: "eval/bag-of-subwords",
  description: "tf-idf bag of the tokenizer's subwords + logistic regression, L2 chosen on source dev",
  schema,
  async run(ctx) {
    const { readTask } = await import("../data/task.ts");
    const { readShard, rowsInLanguages } = await import("../data/shards.ts");
    const { fitBagOfSubwords, predictBagOfSubwords } = await import("../eval/bag_of_subwords.ts");
    const { scores } = await import("../eval/stats.ts");
    const p = ctx.params;
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const task = await readTask(taskDir);
    const [train, dev, test] = await Promise.all(["train", "dev", "test"].map((n) => readShard(taskDir, n)));
    const tokenizer = JSON.parse(await Deno.readTextFile(`${taskDir}/tokenizer.json`));
    const skip = new Set<number>(
      (tokenizer.added_tokens ?? []).filter((t: { special?: boolean }) => t.special).map((
        t: { id: number },
      ) => t.id),
    );
    skip.add(train.index.pad_id);
    let dim = 0;
    for (const s of [train, dev, test]) for (const id of s.ids) dim = Math.max(dim, id + 1);
    const fit = fitBagOfSubwords(
      { shard: train, rows: rowsInLanguages(train, task.train_languages) },
      { shard: dev, rows: rowsInLanguages(dev, task.train_languages) },
      task.labels.length,
      dim,
      skip,
      p.l2_grid,
      { epochs: p.epochs, lr: p.lr, seed: p.seed },
    );
    ctx.log(
      `L2 on source dev: ${
        fit.devAccuracy.map((d) => `${d.l2}: ${d.accuracy.toFixed(3)}`).join(", ")
      }; chose ${fit.l2}`,
    );
    const rows = [];
    for (const [lang, info] of Object.entries(task.languages)) {
      const onTest = info.examples.test > 0;
      const s = onTest ? test : dev;
      const idx = rowsInLanguages(s, [lang]);
      if (idx.length === 0) continue;
      const pred = predictBagOfSubwords(fit, s, idx);
      rows.push({
        language: lang,
        split: task.train_languages.includes(lang) ? "source" : "test",
        scored_on: onTest ? "test" : "dev",
        n: idx.length,
        ...scores(Int32Array.from(idx, (r) => s.labels[r]), pred, task.labels.length),
      });
    }
    await Deno.writeTextFile(
      `${ctx.out}/metrics.json`,
      JSON.stringify(
        { method: "bag-of-subwords", l2: fit.l2, l2_dev_accuracy: fit.devAccuracy, rows },
        null,
        1,
      ),
    );
    const src = rows.filter((r) => r.split === "source");
    ctx.log(
      `source accuracy ${(src.reduce((a, r) => a + r.accuracy, 0) / Math.max(1, src.length)).toFixed(3)}`,
    );
  },
};
