/**
 * The shared body of the TSV-backed task stages (`data/sib200`, `data/xnli`, `data/pawsx`):
 * train on `train_languages`' train/dev splits, test on every eval language's test split.
 * @module
 */
import { z } from "zod";
import { inputOfType, inputPath, type StageContext, type StageType } from "../pipeline/stage.ts";
import type { Example } from "../data/task.ts";

/** Parameters every TSV task stage takes. */
export const tsvTaskSchema = (defaultTrain: string) =>
  z.strictObject({
    path: inputPath("dir"),
    train_languages: z.array(z.string()).min(1).default([defaultTrain]),
    eval_languages: z.union([z.literal("all"), z.array(z.string()).min(1)]).default("all"),
    max_length: z.number().int().min(8).max(512).default(128),
    resource_csv: inputPath("file").optional(),
  });

type TsvParams = z.infer<ReturnType<typeof tsvTaskSchema>>;

/** Reads splits with `read`, then writes the task directory. */
export async function runTsvTask(
  ctx: StageContext<TsvParams>,
  name: string,
  labels: string[],
  languages: string[],
  read: (lang: string, split: "train" | "dev" | "test") => Promise<Example[]>,
): Promise<void> {
  const { loadTokenizer } = await import("../data/encoding.ts");
  const { readResourceCsv, writeTask } = await import("../data/task.ts");
  const { scriptOf } = await import("../data/scripts.ts");
  const p = ctx.params;
  for (const l of p.train_languages) {
    if (!languages.includes(l)) throw new Error(`train_languages: '${l}' not found under ${p.path}`);
  }
  const evalLangs = p.eval_languages === "all" ? languages : p.eval_languages;
  const examples: Example[] = [];
  const warnings: string[] = [];
  for (const [i, lang] of evalLangs.entries()) {
    if (!languages.includes(lang)) throw new Error(`eval_languages: '${lang}' not found under ${p.path}`);
    if (p.train_languages.includes(lang)) {
      examples.push(...await read(lang, "train"), ...await read(lang, "dev"));
    }
    const test = await read(lang, "test");
    if (test.length === 0) warnings.push(`${p.path}/${lang}/test.tsv: no examples; language left out`);
    examples.push(...test);
    ctx.progress(i / evalLangs.length, lang);
  }
  for (const w of warnings) ctx.log(`warning: ${w}`);
  const tokDir = inputOfType(ctx, ["tokenizer/"]).dir;
  const shares = await readShares(ctx);
  await writeTask(ctx.out, {
    name,
    examples,
    labels,
    trainLanguages: p.train_languages,
    maxLength: p.max_length,
    tokenizer: await loadTokenizer(tokDir),
    tokenizerDir: tokDir,
    scripts: new Map(evalLangs.map((l) => [l, scriptOf(examples.find((e) => e.lang === l)?.text ?? "")])),
    shares,
    resources: p.resource_csv ? await readResourceCsv(p.resource_csv) : null,
    warnings,
    log: ctx.log,
  });
}

async function readShares(ctx: StageContext<TsvParams>) {
  const tok = ctx.inputs.find((i) => i.type === "tokenizer/train");
  if (!tok) return null;
  return JSON.parse(await Deno.readTextFile(`${tok.dir}/languages.json`));
}

/** The `data/xnli` or `data/pawsx` stage type: XGLUE's pair layouts differ only in columns and labels. */
export function pairTaskStage(task: "xnli" | "pawsx"): StageType<ReturnType<typeof tsvTaskSchema>> {
  return {
    type: `data/${task}`,
    description:
      `${task} sentence pairs from <path>/<lang>/{train,dev,test}.tsv, encoded <s> A </s></s> B </s>`,
    schema: tsvTaskSchema("en"),
    async run(ctx) {
      const { PAIR_TASKS, readPairSplit, sib200Languages } = await import("../data/sib200.ts");
      const langs = sib200Languages(ctx.params.path);
      await runTsvTask(
        ctx,
        task,
        [...PAIR_TASKS[task].labels],
        langs,
        (l, s) => readPairSplit(task, ctx.params.path, l, s),
      );
    },
  };
}
