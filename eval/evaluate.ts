/**
 * One evaluation pass over a task's test split with an exported model: per language,
 * accuracy, macro-F1 and the share of predictions per label (for a classifier), and
 * English <-> X sentence retrieval from the pooled vectors of the same pass. Languages
 * without a test split are scored on dev.
 * @module
 */
import { readShard, rowsInLanguages, type Shard } from "../data/shards.ts";
import { readTask, type TaskInfo } from "../data/task.ts";
import type { ProviderChoice } from "../platform/adapter.ts";
import { infer, type Session, session } from "./classify.ts";
import { retrievalByLanguage, type RetrievalScore } from "./retrieval.ts";
import { scores } from "./stats.ts";

/** One language's figures. */
export interface EvalRow {
  language: string;
  split: "source" | "test";
  scored_on: "test" | "dev";
  n: number;
  accuracy?: number;
  f1?: number;
  /** Share of predictions per label id (what the classifier predicts). */
  pred_share?: number[];
  /** Top-1 retrieval English <-> this language (mean of both directions). */
  retrieval?: number;
  retrieval_en_to_x?: number;
  retrieval_x_to_en?: number;
}

/** Per-row predictions, for `predictions.jsonl`. */
export interface Prediction {
  language: string;
  row: number;
  gold: number;
  pred: number;
}

/**
 * Evaluates every task language; `pivot` is the language retrieval pairs with (the first
 * training language by default).
 *
 * @example
 * ```ts ignore
 * const { rows } = await evaluateTask(sess, task, { dev, test }, (f, lang) => ctx.progress(f, lang));
 * ```
 */
export async function evaluateTask(
  sess: Session,
  task: TaskInfo,
  shards: { dev: Shard; test: Shard },
  progress: (fraction: number, note: string) => void,
  pivot = task.train_languages[0],
): Promise<{ rows: EvalRow[]; predictions: Prediction[] }> {
  const rows: EvalRow[] = [];
  const predictions: Prediction[] = [];
  const langs = Object.keys(task.languages);
  const test = shards.test;
  const testLangs = langs.filter((l) => task.languages[l].examples.test > 0);
  // The whole test split in one pass: classification per language, retrieval across them.
  const all = Array.from({ length: test.index.n }, (_, i) => i);
  const out = await infer(
    sess,
    test,
    all,
    64,
    (f) => progress(0.9 * f, `${Math.round(f * test.index.n)}/${test.index.n} test items`),
  );
  progress(0.9, "retrieval");
  const rowLang = all.map((r) => test.index.languages[test.langs[r]]);
  const retr: Map<string, RetrievalScore> = retrievalByLanguage(
    out.pooled,
    out.hidden,
    test.items,
    rowLang,
    pivot,
  );
  for (const lang of langs) {
    const info = task.languages[lang];
    const onTest = info.examples.test > 0;
    if (!onTest && info.examples.dev === 0) continue;
    const s = onTest ? test : shards.dev;
    const idx = rowsInLanguages(s, [lang]);
    const row: EvalRow = {
      language: lang,
      split: task.train_languages.includes(lang) ? "source" : "test",
      scored_on: onTest ? "test" : "dev",
      n: idx.length,
    };
    if (out.labels.length > 0) {
      const pred = onTest ? Int32Array.from(idx, (r) => out.labels[r]) : (await infer(sess, s, idx)).labels;
      const gold = Int32Array.from(idx, (r) => s.labels[r]);
      Object.assign(row, scores(gold, pred, task.labels.length));
      idx.forEach((r, k) => predictions.push({ language: lang, row: r, gold: gold[k], pred: pred[k] }));
    }
    const rs = retr.get(lang);
    if (rs) {
      row.retrieval = rs.top1;
      row.retrieval_en_to_x = rs.en_to_x;
      row.retrieval_x_to_en = rs.x_to_en;
    }
    rows.push(row);
  }
  progress(1, `${testLangs.length} languages`);
  return { rows, predictions };
}

/**
 * Opens `model.onnx` of an export directory on the chosen provider and evaluates the task
 * directory with it: what the `eval/*` stages share.
 *
 * @example
 * ```ts ignore
 * const { task, sess, rows } = await evaluateExport(exportDir, taskDir, "auto", ctx.progress);
 * ```
 */
export async function evaluateExport(
  exportDir: string,
  taskDir: string,
  provider: ProviderChoice,
  progress: (fraction: number, note: string) => void,
  pivot?: string,
): Promise<{ task: TaskInfo; sess: Session; rows: EvalRow[]; predictions: Prediction[] }> {
  const task = await readTask(taskDir);
  const sess = await session(`${exportDir}/model.onnx`, provider);
  const shards = { dev: await readShard(taskDir, "dev"), test: await readShard(taskDir, "test") };
  const { rows, predictions } = await evaluateTask(sess, task, shards, progress, pivot);
  return { task, sess, rows, predictions };
}
