/**
 * `eval/classify`: runs the exported model in onnxruntime-web on every task language.
 * Source languages are scored on their test split when it has one, else on dev.
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  provider: z.enum(["auto", "wasm", "webgpu"]).default("auto"),
  batch_size: z.number().int().min(1).default(64),
});

/** Writes `metrics.json` (per language), `predictions.jsonl` and `provenance.json` (the provider). */
export const stage: StageType<typeof schema> = {
  type: "eval/classify",
  description: "score an ONNX classifier per language with onnxruntime-web",
  schema,
  async environment(params) {
    const { resolveProvider } = await import("../platform/adapter.ts");
    return { ep: await resolveProvider(params.provider) };
  },
  async run(ctx) {
    const { session, predict } = await import("../eval/classify.ts");
    const { scores } = await import("../eval/stats.ts");
    const { readShard } = await import("../data/shards.ts");
    const model = inputOfType(ctx, ["model/export"]);
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const task = JSON.parse(await Deno.readTextFile(`${taskDir}/task.json`));
    const sess = await session(`${model.dir}/model.onnx`, ctx.params.provider);
    ctx.log(`onnxruntime-web ${sess.provider} EP, one thread (${sess.reason})`);
    const shards = { dev: await readShard(taskDir, "dev"), test: await readShard(taskDir, "test") };
    const rows: Record<string, unknown>[] = [];
    const preds: string[] = [];
    const langs = Object.keys(task.languages);
    for (const [i, lang] of langs.entries()) {
      const info = task.languages[lang];
      const which = info.examples.test > 0 ? "test" : info.examples.dev > 0 ? "dev" : null;
      if (!which) continue;
      const s = shards[which];
      const li = s.index.languages.indexOf(lang);
      const idx: number[] = [];
      for (let r = 0; r < s.index.n; r++) if (s.langs[r] === li) idx.push(r);
      const p = await predict(sess, s, idx, ctx.params.batch_size);
      const gold = Int32Array.from(idx, (r) => s.labels[r]);
      const sc = scores(gold, p);
      rows.push({
        language: lang,
        split: task.train_languages.includes(lang) ? "source" : "test",
        scored_on: which,
        n: idx.length,
        accuracy: sc.accuracy,
        f1: sc.f1,
      });
      idx.forEach((r, k) =>
        preds.push(JSON.stringify({ language: lang, row: r, gold: gold[k], pred: p[k] }))
      );
      if (i % 10 === 0) ctx.progress(i / langs.length, lang);
    }
    await Deno.writeTextFile(`${ctx.out}/metrics.json`, JSON.stringify({ rows }, null, 1));
    await Deno.writeTextFile(`${ctx.out}/predictions.jsonl`, preds.join("\n") + "\n");
    await Deno.writeTextFile(
      `${ctx.out}/provenance.json`,
      JSON.stringify({ ep: sess.provider, reason: sess.reason }),
    );
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const src = rows.filter((r) => r.split === "source").map((r) => r.accuracy as number);
    const zs = rows.filter((r) => r.split === "test").map((r) => r.accuracy as number);
    ctx.log(
      `source accuracy ${mean(src).toFixed(3)} (${src.length} langs), zero-shot ${
        mean(zs).toFixed(3)
      } (${zs.length} langs)`,
    );
  },
};
