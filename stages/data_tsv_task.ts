/**
 * The shared body of the TSV-backed task stages (`data/sib200`, `data/xnli`, `data/pawsx`):
 * train on `train_languages`' train/dev splits, test on every eval language's test split.
 * @module
 */
import { z } from "zod";
import {
  inputOfType,
  inputPath,
  inputsOfType,
  type StageContext,
  type StageType,
} from "../pipeline/stage.ts";
import type { Example } from "../data/task.ts";
import { UserInputError } from "../pipeline/errors.ts";

/** Parameters every TSV task stage takes. */
export const tsvTaskSchema = (defaultTrain: string) =>
  z.strictObject({
    path: inputPath("dir"),
    train_languages: z.array(z.string()).min(1).default([defaultTrain]),
    eval_languages: z.union([z.literal("all"), z.array(z.string()).min(1)]).default("all"),
    max_length: z.number().int().min(8).max(512).default(128),
    resource_csv: inputPath("file").optional(),
    /** A missing split file is an error; with this on, a warning in task.json (and the report). */
    optional_splits: z.boolean().default(false),
    /** Longest text accepted, in characters (a longer one is an error naming its line). */
    max_chars: z.number().int().min(1).default(10000),
    /**
     * Also write every evaluated language's dev texts, without their labels, as the
     * `unlabelled` shard: the text evaluation centres each language's features on.
     */
    unlabelled_dev: z.boolean().default(false),
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
    if (!languages.includes(l)) {
      throw new UserInputError(
        `train_languages: '${l}' is not under ${p.path} (found: ${languages.join(", ")})`,
      );
    }
  }
  const evalLangs = p.eval_languages === "all" ? languages : p.eval_languages;
  const examples: Example[] = [];
  const warnings: string[] = [];
  const split = async (lang: string, which: "train" | "dev" | "test"): Promise<Example[]> => {
    const file = `${p.path}/${lang}/${which}.tsv`;
    try {
      Deno.statSync(file);
    } catch {
      if (!p.optional_splits) {
        throw new UserInputError(
          `${file}: missing (set optional_splits: true to leave the language out instead)`,
        );
      }
      warnings.push(`${file}: missing; ${which === "test" ? "language not evaluated" : "split left out"}`);
      return [];
    }
    const rows = await read(lang, which);
    const long = rows.find((r) => r.text.length > p.max_chars || (r.text_b?.length ?? 0) > p.max_chars);
    if (long) {
      throw new UserInputError(
        `${file}: a text of ${long.text.length} characters is longer than max_chars ${p.max_chars}`,
      );
    }
    return rows;
  };
  for (const [i, lang] of evalLangs.entries()) {
    if (!languages.includes(lang)) {
      throw new UserInputError(
        `eval_languages: '${lang}' is not under ${p.path} (found: ${languages.join(", ")})`,
      );
    }
    if (p.train_languages.includes(lang)) {
      examples.push(...await split(lang, "train"), ...await split(lang, "dev"));
    }
    if (p.unlabelled_dev) {
      examples.push(...(await split(lang, "dev")).map((e) => ({ ...e, split: "unlabelled" as const })));
    }
    const test = await split(lang, "test");
    if (test.length === 0 && !p.train_languages.includes(lang)) {
      warnings.push(`${p.path}/${lang}/test.tsv: no examples; language left out`);
    }
    examples.push(...test);
    ctx.progress(i / evalLangs.length, lang);
  }
  const empty = p.train_languages.filter((l) => !examples.some((e) => e.lang === l && e.split === "train"));
  if (empty.length > 0) {
    throw new UserInputError(
      `no training rows for ${empty.join(", ")} (${empty.map((l) => `${p.path}/${l}/train.tsv`).join(", ")})`,
    );
  }
  for (const w of warnings) ctx.log(`warning: ${w}`);
  const tokDir = tokenizerDir(ctx);
  const shares = await readShares(ctx);
  const { pretrainingFacts } = await import("../data/pretraining_facts.ts");
  const testTexts = new Map<string, string[]>();
  for (const e of examples) {
    if (e.split === "test") testTexts.set(e.lang, [...testTexts.get(e.lang) ?? [], e.text]);
  }
  const model = inputsOfType(ctx, ["model/"])[0];
  const facts = await pretrainingFacts(
    inputsOfType(ctx, ["corpus/"]).map((c) => c.dir),
    model ? `${model.dir}/checkpoint` : undefined,
    testTexts,
  );
  if (facts.contamination) {
    ctx.log(
      `contamination: ${
        (100 * facts.contamination.exact_share).toFixed(2)
      }% of ${facts.contamination.items} test items in the pretraining corpora, ${
        (100 * facts.contamination.ngram8_share).toFixed(2)
      }% of their word 8-grams`,
    );
  }
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
    facts,
    log: ctx.log,
  });
}

/** The tokenizer: a `tokenizer/*` input, else the `tokenizer.json` of a `model/*` input's checkpoint. */
export function tokenizerDir(ctx: StageContext<unknown>): string {
  const tok = inputsOfType(ctx, ["tokenizer/"]);
  if (tok.length === 1) return tok[0].dir;
  const model = inputsOfType(ctx, ["model/"]);
  if (tok.length === 0 && model.length === 1) return `${model[0].dir}/checkpoint`;
  return inputOfType(ctx, ["tokenizer/"]).dir;
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
      const { PAIR_TASKS, readPairSplit } = await import("../data/pair_tasks.ts");
      const { languageFolders } = await import("../data/tsv.ts");
      const langs = languageFolders(ctx.params.path);
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
