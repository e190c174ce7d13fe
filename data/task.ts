/**
 * Turns labelled examples into a task directory: train/dev/test shards, the tokenizer, and
 * `task.json` with labels, languages and per-language covariates for the analysis.
 * @module
 */
import { buildShard, writeShard } from "./shards.ts";
import { encodeExample, type LoadedTokenizer, tokenStats } from "./encoding.ts";
import type { Contamination } from "./contamination.ts";
import type { PretrainingFacts } from "./pretraining_facts.ts";

const SPLITS = ["train", "dev", "test"] as const;
const SPLITS_WITH_UNLABELLED = [...SPLITS, "unlabelled"] as const;

/** One labelled example. */
export interface Example {
  /** The dataset's own id, when it has one (SIB-200's index_id: the same across languages). */
  id?: string;
  text: string;
  text_b?: string;
  label: string;
  lang: string;
  /** `unlabelled`: a text whose label is never written (the `unlabelled` shard, for test-time centring). */
  split: "train" | "dev" | "test" | "unlabelled";
}

/** Per-language covariates recorded with every task. */
export interface LanguageInfo {
  examples: { train: number; dev: number; test: number };
  script: string;
  fertility: number;
  unk_rate: number;
  /** Share of the pretraining corpus in this language, where known. */
  pretrain_share: number | null;
  /** From the user's resource-size CSV, where given. */
  resource_size: number | null;
  /** Tokens of this language (and script) pretraining saw, where the checkpoint records them. */
  pretrain_tokens?: number | null;
  /** Resource tier the pretraining corpus put the language in, where it had tiers. */
  tier?: string | null;
}

/** `task.json`. */
export interface TaskInfo {
  name: string;
  labels: string[];
  train_languages: string[];
  test_languages: string[];
  max_length: number;
  languages: Record<string, LanguageInfo>;
  warnings: string[];
  /** How much of the test set occurs in the pretraining corpora, when they were given. */
  contamination?: Contamination | null;
}

/**
 * Reads a task directory's `task.json`.
 *
 * @example
 * ```ts ignore
 * const task = await readTask(taskDir);
 * console.log(task.labels, task.train_languages);
 * ```
 */
export async function readTask(dir: string): Promise<TaskInfo> {
  return JSON.parse(await Deno.readTextFile(`${dir}/task.json`)) as TaskInfo;
}

/** Reads a `language,size` CSV; errors name the file and line. */
export async function readResourceCsv(path: string): Promise<Map<string, number>> {
  const text = await Deno.readTextFile(path);
  const out = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim() || (i === 0 && /[a-z]/i.test(line.split(",")[1] ?? ""))) return;
    const [lang, size] = line.split(",");
    const n = Number(size);
    if (!lang || !Number.isFinite(n)) {
      throw new Error(`${path}:${i + 1}: expected 'language,size', got '${line}'`);
    }
    out.set(lang.trim(), n);
  });
  return out;
}

/** Pretraining share for a task language: exact code, else by its ISO 639-3 prefix (e.g. `eng_Latn` -> eng). */
function shareFor(
  lang: string,
  shares: Record<string, { iso6393: string; share: number }> | null,
): number | null {
  if (!shares) return null;
  if (shares[lang]) return shares[lang].share;
  const iso = lang.split(/[_-]/)[0];
  const hits = Object.values(shares).filter((s) => s.iso6393 === iso);
  return hits.length ? hits.reduce((a, s) => a + s.share, 0) : null;
}

/**
 * Encodes examples and writes the task directory.
 *
 * @example
 * ```ts ignore
 * await writeTask(ctx.out, { name: "sib200", examples, labels, trainLanguages: ["eng_Latn"], maxLength: 128, tokenizer, tokenizerDir, scripts, shares: null, resources: null, warnings: [] });
 * ```
 */
export async function writeTask(out: string, o: {
  name: string;
  examples: Example[];
  labels: string[];
  trainLanguages: string[];
  maxLength: number;
  tokenizer: LoadedTokenizer;
  tokenizerDir: string;
  scripts: Map<string, string>;
  shares: Record<string, { iso6393: string; share: number }> | null;
  resources: Map<string, number> | null;
  warnings: string[];
  /** Contamination, pretraining tokens and tiers, when the pipeline gives the pretraining corpora. */
  facts?: PretrainingFacts;
  log: (m: string) => void;
}): Promise<TaskInfo> {
  const languages = [...new Set(o.examples.map((e) => e.lang))].sort();
  const langIndex = new Map(languages.map((l, i) => [l, i]));
  const labelIndex = new Map(o.labels.map((l, i) => [l, i]));
  const info: Record<string, LanguageInfo> = {};
  for (const lang of languages) {
    // Covariates come from the labelled splits alone: unlabelled text must not move them.
    const ex = o.examples.filter((e) => e.lang === lang && e.split !== "unlabelled");
    const stats = tokenStats(o.tokenizer, ex.slice(0, 200).map((e) => e.text));
    info[lang] = {
      examples: {
        train: ex.filter((e) => e.split === "train").length,
        dev: ex.filter((e) => e.split === "dev").length,
        test: ex.filter((e) => e.split === "test").length,
      },
      script: o.scripts.get(lang) ?? "Other",
      fertility: Number(stats.fertility.toFixed(4)),
      unk_rate: Number(stats.unk_rate.toFixed(5)),
      pretrain_share: shareFor(lang, o.shares),
      resource_size: o.resources?.get(lang) ?? null,
      ...(o.facts?.languages.get(lang) ?? {}),
    };
  }
  let truncated = 0;
  // The unlabelled shard is written only when asked for, so existing task directories keep their bytes.
  const unlabelled = o.examples.some((e) => e.split === "unlabelled");
  for (const split of unlabelled ? SPLITS_WITH_UNLABELLED : SPLITS) {
    const rows = o.examples.filter((e) => e.split === split).map((e) => {
      const ids = encodeExample(o.tokenizer, e.text, e.text_b ?? null, o.maxLength + 1);
      if (ids.length > o.maxLength) truncated++;
      const cut = ids.length > o.maxLength ? [...ids.slice(0, o.maxLength - 1), o.tokenizer.eos] : ids;
      const item = e.id !== undefined && /^\d+$/.test(e.id) ? Number(e.id) : -1;
      const label = split === "unlabelled" ? -1 : labelIndex.get(e.label)!;
      return { ids: cut, label, lang: langIndex.get(e.lang)!, item };
    });
    await writeShard(out, buildShard(split, rows, o.maxLength, o.tokenizer.pad, languages, o.labels));
  }
  if (truncated > 0) o.log(`${truncated} examples truncated to max_length ${o.maxLength}`);
  await Deno.copyFile(`${o.tokenizerDir}/tokenizer.json`, `${out}/tokenizer.json`);
  // The raw texts too, for stages that do not read token ids (a character n-gram baseline).
  await Deno.writeTextFile(
    `${out}/texts.jsonl`,
    o.examples.filter((e) => e.split !== "unlabelled").map((e) =>
      JSON.stringify({
        split: e.split,
        lang: e.lang,
        id: e.id,
        label: e.label,
        text: e.text,
        text_b: e.text_b,
      })
    )
      .join("\n") + "\n",
  );
  const task: TaskInfo = {
    name: o.name,
    labels: o.labels,
    train_languages: o.trainLanguages,
    test_languages: languages.filter((l) => info[l].examples.test > 0),
    max_length: o.maxLength,
    languages: info,
    warnings: [...o.warnings, ...(o.facts?.warnings ?? [])],
    contamination: o.facts?.contamination ?? null,
  };
  await Deno.writeTextFile(`${out}/task.json`, JSON.stringify(task, null, 2));
  const counts = (unlabelled ? SPLITS_WITH_UNLABELLED : SPLITS).map((s) =>
    `${s} ${o.examples.filter((e) => e.split === s).length}`
  );
  o.log(`${o.name}: ${languages.length} languages, ${o.labels.length} labels; ${counts.join(", ")}`);
  return task;
}
