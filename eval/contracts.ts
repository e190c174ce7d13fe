/**
 * The data the analysis reads, as zod schemas: metric rows, the parts of `task.json` the
 * report uses, the pretrained checkpoint's retrieval rows, and literature reference figures.
 * Parsers name the file, the row index and the field of the first problem.
 * @module
 */
import { z } from "zod";
import { ConfigError, located } from "../pipeline/errors.ts";

/** The method name of the majority-class floor: deterministic, never in a significance test. */
export const FLOOR = "majority";

const share = z.number().min(0).max(1);

/** One scored (method, seed, language); accuracy, f1 and retrieval are fractions in [0, 1]. */
export const metricRowSchema = z.object({
  method: z.string().min(1),
  seed: z.number().int(),
  language: z.string().min(1),
  split: z.enum(["source", "test"]),
  accuracy: share,
  f1: share.nullish(),
  /** Test items scored for this language; unknown when absent. */
  n: z.number().int().positive().nullish(),
  /** Top-1 English↔language sentence-retrieval accuracy of this fine-tuned model. */
  retrieval: share.nullish(),
  /** Share of the predictions that went to each label id (what the classifier predicts). */
  pred_share: z.array(share).nullish(),
  /** The same after language centring (`eval/centring.ts`), where the task had unlabelled text. */
  accuracy_centred: share.nullish(),
  f1_centred: share.nullish(),
  pred_share_centred: z.array(share).nullish(),
  retrieval_centred: share.nullish(),
});

/** A validated metric row. */
export type MetricRow = z.infer<typeof metricRowSchema>;

/** Rows of the pretrained checkpoint's `eval/retrieval` output. */
export const retrievalRowSchema = z.object({
  language: z.string().min(1),
  retrieval: share,
  retrieval_centred: share.nullish(),
  tier: z.string().nullish(),
});

/** A validated checkpoint retrieval row. */
export type RetrievalRow = z.infer<typeof retrievalRowSchema>;

/** A figure from the literature to show beside ours (accuracy in %). */
export const referenceSchema = z.strictObject({
  label: z.string().min(1),
  english: z.number().min(0).max(100).optional(),
  zero_shot: z.number().min(0).max(100).optional(),
});

/** A validated reference figure. */
export type Reference = z.infer<typeof referenceSchema>;

/** The metrics a comparison can be made on. */
export const METRICS = ["accuracy", "accuracy_centred", "f1", "retrieval_kept"] as const;

/**
 * A pre-declared (primary) comparison: `"A:B"` (a − b on zero-shot accuracy), `"A:B:metric"`,
 * or `{a, b, metric?}` for method names that hold a colon.
 */
export const primarySpecSchema = z.union([
  z.string().regex(
    new RegExp(`^[^:]+:[^:]+(:(${METRICS.join("|")}))?$`),
    `expected 'A:B' or 'A:B:metric' (metric: ${METRICS.join(", ")})`,
  ),
  z.strictObject({ a: z.string().min(1), b: z.string().min(1), metric: z.enum(METRICS).optional() }),
]);

/** A primary comparison as declared. */
export type PrimarySpec = z.infer<typeof primarySpecSchema>;

/** A primary comparison with every field decided. */
export interface Primary {
  a: string;
  b: string;
  metric: typeof METRICS[number];
}

/**
 * Decides a declared primary comparison's fields.
 *
 * @example
 * ```ts
 * import { normalisePrimary } from "./contracts.ts";
 * const p = normalisePrimary("graddrop:full:f1");
 * if (p.a !== "graddrop" || p.b !== "full" || p.metric !== "f1") throw new Error();
 * if (normalisePrimary({ a: "x", b: "y" }).metric !== "accuracy") throw new Error();
 * ```
 */
export function normalisePrimary(spec: PrimarySpec): Primary {
  if (typeof spec !== "string") return { a: spec.a, b: spec.b, metric: spec.metric ?? "accuracy" };
  const [a, b, metric] = spec.split(":");
  return { a, b, metric: (metric ?? "accuracy") as Primary["metric"] };
}

/** How the fine-tuning recipe was chosen (a `recipe` pipeline's outcome), shown in the report. */
export const recipeSchema = z.strictObject({
  pipeline: z.string().min(1),
  /** The split the choice was scored on, e.g. `dev (eng_Latn)`. */
  split: z.string().min(1),
  grid: z.record(z.string(), z.array(z.unknown())),
  /** Per method, the values chosen. */
  chosen: z.record(z.string(), z.record(z.string(), z.unknown())),
  /** Settings chosen afterwards by other pipelines, on top of the grid's choice, in order. */
  then: z.array(z.strictObject({
    pipeline: z.string().min(1),
    split: z.string().min(1),
    grid: z.record(z.string(), z.array(z.unknown())),
    chosen: z.record(z.string(), z.unknown()),
    /** Which methods were scored, and which take the choice. */
    applies: z.string().min(1),
  })).optional(),
});

/** A validated recipe. */
export type Recipe = z.infer<typeof recipeSchema>;

/** One fine-tune's accuracy on dev at one point of training (fraction). */
export interface DevPoint {
  method: string;
  seed: number;
  epoch: number;
  step: number | null;
  accuracy: number;
}

const covariate = z.number().nullish();

/** Per-language covariates the report reads from `task.json.languages` (others pass through). */
export const languageInfoSchema = z.looseObject({
  script: z.string().nullish(),
  tier: z.string().nullish(),
  fertility: covariate,
  unk_rate: covariate,
  pretrain_share: covariate,
  resource_size: covariate,
  pretrain_tokens: covariate,
});

/**
 * Test-set contamination against the pretraining corpus. Shares are in [0, 1]: `exact` the
 * share of test items whose normalised text occurs in the corpus, `ngram8` the share of their
 * word 8-grams that do; per language the same two shares over that language's `items`.
 */
export const contaminationSchema = z.object({
  exact_share: share,
  ngram8_share: share,
  items: z.number().int().min(0),
  per_language: z.record(
    z.string(),
    z.object({ items: z.number().int().min(0), exact: share, ngram8: share }),
  )
    .default({}),
});

/** The parts of `task.json` the report reads. */
export const reportTaskSchema = z.looseObject({
  name: z.string().default("task"),
  labels: z.array(z.string()).default([]),
  train_languages: z.array(z.string()).default([]),
  languages: z.record(z.string(), languageInfoSchema).default({}),
  contamination: contaminationSchema.optional(),
  /** Problems the data stage found (e.g. the leak check's corpus not being the checkpoint's). */
  warnings: z.array(z.string()).optional(),
});

/** A validated `task.json` as the report sees it. */
export type ReportTask = z.infer<typeof reportTaskSchema>;

function where(path: PropertyKey[]): string {
  return path.map((k, i) => typeof k === "number" ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`).join(
    "",
  );
}

/**
 * Validates `data` with `schema`; a failure is a {@link ConfigError} naming the file and
 * the first bad field, e.g. `m.json: rows[3].accuracy: Invalid input: expected number`.
 *
 * @example
 * ```ts
 * import { parseWith, referenceSchema } from "./contracts.ts";
 * const r = parseWith(referenceSchema, { label: "XLM-R base", english: 90 }, "params");
 * if (r.english !== 90) throw new Error();
 * ```
 */
export function parseWith<S extends z.ZodType>(schema: S, data: unknown, file: string): z.infer<S> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new ConfigError(located(file, undefined, where(issue.path), issue.message));
}

/**
 * Parses a metrics document `{ "rows": [...] }`; also rejects a (method, seed, language)
 * scored twice, naming both rows.
 *
 * @example
 * ```ts
 * import { parseMetrics } from "./contracts.ts";
 * const rows = parseMetrics({ rows: [{ method: "full", seed: 1, language: "fra", split: "test", accuracy: 0.5 }] }, "m.json");
 * if (rows[0].n != null) throw new Error("n is unknown unless given");
 * ```
 */
export function parseMetrics(doc: unknown, file: string): MetricRow[] {
  const { rows } = parseWith(z.object({ rows: z.array(metricRowSchema) }), doc, file);
  const seen = new Map<string, number>();
  rows.forEach((r, i) => {
    const key = JSON.stringify([r.method, r.seed, r.language]);
    const first = seen.get(key);
    if (first !== undefined) {
      throw new ConfigError(
        located(
          file,
          undefined,
          `rows[${i}].language`,
          `(${r.method}, seed ${r.seed}, ${r.language}) is also rows[${first}]`,
        ),
      );
    }
    seen.set(key, i);
  });
  return rows;
}
