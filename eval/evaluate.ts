/**
 * One evaluation pass over a task's test split with an exported model: per language,
 * accuracy, macro-F1 and the share of predictions per label (for a classifier), and
 * English <-> X sentence retrieval from the pooled vectors of the same pass. Languages
 * without a test split are scored on dev. Where the task has unlabelled text per language
 * (its `unlabelled` shard), the same figures again after language centring
 * (`eval/centring.ts`): each test row's head input moved by its language's mean on that text
 * to the source language's mean and scored by the head alone, and retrieval between vectors
 * with their language's mean removed.
 * @module
 */
import { readShard, rowsInLanguages, type Shard } from "../data/shards.ts";
import { readTask, type TaskInfo } from "../data/task.ts";
import type { ProviderChoice } from "../platform/adapter.ts";
import { headLabels, infer, type Inference, type Session, session } from "./classify.ts";
import { retrievalByLanguage, type RetrievalScore } from "./retrieval.ts";
import { centre, languageMeans } from "./centring.ts";
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
  /** After language centring (a zero-shot language with unlabelled text): accuracy, macro-F1, shares. */
  accuracy_centred?: number;
  f1_centred?: number;
  pred_share_centred?: number[];
  /** Retrieval between vectors with their language's mean removed. */
  retrieval_centred?: number;
}

/** Scores after language centring: per language, the classifier's and retrieval's. */
interface Centred {
  scores: Map<string, ReturnType<typeof scores>>;
  retrieval: Map<string, RetrievalScore>;
}

/**
 * Centres the test rows on each language's mean over the unlabelled rows (the pivot's mean
 * is where the head was fitted) and scores them: the head on moved features, retrieval on
 * vectors with their own language's mean removed. Languages without unlabelled text are
 * left out; the pivot's classification is not moved, so it is not scored again.
 */
async function centredScores(
  head: Session | null,
  { shard: unlabelled, inference: u }: UnlabelledPass,
  test: Shard,
  testLangs: string[],
  out: Inference,
  pivot: string,
  numLabels: number,
): Promise<Centred> {
  const d = out.hidden, unlabelledLangs = Array.from(unlabelled.langs, (l) => unlabelled.index.languages[l]);
  const result: Centred = { scores: new Map(), retrieval: new Map() };
  const pooled = centre(out.pooled, d, testLangs, languageMeans(u.pooled, d, unlabelledLangs));
  const kept = pooled.rows.map((r) => testLangs[r]);
  result.retrieval = retrievalByLanguage(
    pooled.vectors,
    d,
    Int32Array.from(pooled.rows, (r) => test.items[r]),
    kept,
    pivot,
  );
  if (!head || out.features.length === 0) return result;
  const means = languageMeans(u.features, d, unlabelledLangs);
  if (!means.has(pivot)) return result;
  const moved = centre(out.features, d, testLangs, means, means.get(pivot));
  const labels = await headLabels(head, moved.vectors, moved.rows.length, d);
  const byLang = new Map<string, number[]>();
  moved.rows.forEach((r, i) => {
    const l = testLangs[r];
    if (!byLang.has(l)) byLang.set(l, []);
    byLang.get(l)!.push(i);
  });
  for (const [lang, idx] of byLang) {
    if (lang === pivot) continue;
    const gold = Int32Array.from(idx, (i) => test.labels[moved.rows[i]]);
    result.scores.set(lang, scores(gold, Int32Array.from(idx, (i) => labels[i]), numLabels));
  }
  return result;
}

/** The unlabelled shard and the model's pass over it (centring reads it; so may a caller). */
export interface UnlabelledPass {
  shard: Shard;
  inference: Inference;
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
  shards: { dev: Shard; test: Shard; unlabelled?: Shard },
  progress: (fraction: number, note: string) => void,
  pivot = task.train_languages[0],
  head: Session | null = null,
): Promise<{ rows: EvalRow[]; predictions: Prediction[]; unlabelled?: UnlabelledPass }> {
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
  const unlabelled = shards.unlabelled && {
    shard: shards.unlabelled,
    inference: await infer(
      sess,
      shards.unlabelled,
      Array.from({ length: shards.unlabelled.index.n }, (_, i) => i),
    ),
  };
  const centred = unlabelled
    ? await centredScores(head, unlabelled, test, rowLang, out, pivot, task.labels.length)
    : null;
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
    const cs = centred?.scores.get(lang);
    if (cs && onTest) {
      row.accuracy_centred = cs.accuracy;
      row.f1_centred = cs.f1;
      row.pred_share_centred = cs.pred_share;
    }
    const cr = centred?.retrieval.get(lang);
    if (cr) row.retrieval_centred = cr.top1;
    rows.push(row);
  }
  progress(1, `${testLangs.length} languages`);
  return { rows, predictions, unlabelled };
}

/**
 * Opens `model.onnx` of an export directory on the chosen provider and evaluates the task
 * directory with it: what the `eval/*` stages share. With the task's `unlabelled` shard the
 * rows carry centred figures too (the classifier's when the export has `head.onnx`).
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
): Promise<
  { task: TaskInfo; sess: Session; rows: EvalRow[]; predictions: Prediction[]; unlabelled?: UnlabelledPass }
> {
  const task = await readTask(taskDir);
  const sess = await session(`${exportDir}/model.onnx`, provider);
  const shards = {
    dev: await readShard(taskDir, "dev"),
    test: await readShard(taskDir, "test"),
    unlabelled: await exists(`${taskDir}/unlabelled.json`)
      ? await readShard(taskDir, "unlabelled")
      : undefined,
  };
  const head = await exists(`${exportDir}/head.onnx`)
    ? await session(`${exportDir}/head.onnx`, provider)
    : null;
  return { task, sess, ...await evaluateTask(sess, task, shards, progress, pivot, head) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
