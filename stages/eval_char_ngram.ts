/**
 * `eval/char-ngram`: the character n-gram baseline trained on the task's source language and
 * scored on every language, in the same rows as `eval/classify` (method `char-ngram`).
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  seed: z.number().int().default(1),
  n_min: z.number().int().min(1).default(1),
  n_max: z.number().int().min(1).default(4),
  buckets: z.number().int().min(1024).default(1 << 18),
  epochs: z.number().int().min(1).default(8),
  lr: z.number().positive().default(0.02),
  l2: z.number().min(0).default(1e-5),
});

/** Writes `metrics.json` with `method: "char-ngram"` and a row per language. */
export const stage: StageType<typeof schema> = {
  type: "eval/char-ngram",
  description: "character 1-4-gram logistic regression trained on the source language (a non-neural floor)",
  schema,
  async run(ctx) {
    const { readTask } = await import("../data/task.ts");
    const { trainNgram, predictNgram } = await import("../eval/char_ngram.ts");
    const { scores } = await import("../eval/stats.ts");
    const p = ctx.params;
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const task = await readTask(taskDir);
    const texts = (await Deno.readTextFile(`${taskDir}/texts.jsonl`)).split("\n").filter(Boolean).map((l) =>
      JSON.parse(l) as { split: string; lang: string; label: string; text: string; text_b?: string }
    );
    const label = (l: string) => task.labels.indexOf(l);
    const train = texts.filter((t) => t.split === "train");
    const join = (t: { text: string; text_b?: string }) => (t.text_b ? `${t.text} ${t.text_b}` : t.text);
    const model = trainNgram(train.map(join), train.map((t) => label(t.label)), task.labels.length, {
      nMin: p.n_min,
      nMax: p.n_max,
      buckets: p.buckets,
      epochs: p.epochs,
      lr: p.lr,
      l2: p.l2,
      seed: p.seed,
    });
    const rows = [];
    for (const [lang, info] of Object.entries(task.languages)) {
      const which = info.examples.test > 0 ? "test" : "dev";
      const items = texts.filter((t) => t.lang === lang && t.split === which);
      if (items.length === 0) continue;
      const sc = scores(
        Int32Array.from(items, (t) => label(t.label)),
        predictNgram(model, items.map(join)),
        task.labels.length,
      );
      rows.push({
        language: lang,
        split: task.train_languages.includes(lang) ? "source" : "test",
        scored_on: which,
        n: items.length,
        ...sc,
      });
    }
    await Deno.writeTextFile(
      `${ctx.out}/metrics.json`,
      JSON.stringify({ method: "char-ngram", rows }, null, 1),
    );
    const src = rows.filter((r) => r.split === "source");
    ctx.log(
      `source accuracy ${(src.reduce((a, r) => a + r.accuracy, 0) / Math.max(1, src.length)).toFixed(3)}`,
    );
  },
};
