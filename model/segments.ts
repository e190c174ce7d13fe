/**
 * Pretraining in segments: a run that continues from an earlier checkpoint records every
 * segment before it, so a checkpoint made over several sessions says how it was made.
 * @module
 */
import { UserInputError } from "../pipeline/errors.ts";

/** One pretraining segment: what was trained, on which corpus, starting from what. */
export interface Segment {
  /** The `model/pretrain` parameters it ran with (steps, lr, seed, objectives, ...). */
  params: Record<string, unknown>;
  corpus_sha256: string;
  /** sha256 of the `model.safetensors` this segment started from; null from random weights. */
  init_sha256: string | null;
  /** The cache key of the stage that ran it, where an export recorded one. */
  key?: string;
  /** sha256 over its params, corpus, tokenizer and starting checkpoint: what resumable state must match. */
  settings_sha256?: string;
  /** Where it continued from committed resumable state (a run that spanned sessions), in order. */
  resumes?: { step: number; from: string }[];
}

/** The parts of an exported or stage provenance.json that segments are read from. */
export interface Provenance {
  key?: string;
  params?: Record<string, unknown>;
  stage?: { corpus_sha256?: string; segments?: Segment[] };
  corpus_sha256?: string;
  segments?: Segment[];
}

/**
 * The segments behind a checkpoint, from the provenance beside it: an exported checkpoint
 * keeps the stage's record under `stage` (and its key, which names the last segment); a
 * pretraining stage's own output has it at the top. A checkpoint exported before segments
 * were recorded counts as one segment from random weights, described by its export's params.
 * Without any provenance: no segments known.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const prov = { key: "k", params: { steps: 10 }, stage: { corpus_sha256: "c" } };
 * assert.deepEqual(segmentsOf(prov), [{ params: { steps: 10 }, corpus_sha256: "c", init_sha256: null, key: "k" }]);
 * assert.deepEqual(segmentsOf(undefined), []);
 * ```
 */
export function segmentsOf(prov: Provenance | undefined): Segment[] {
  if (!prov) return [];
  const own = prov.stage?.segments ?? prov.segments;
  if (own) {
    const segs = own.map(normalised);
    if (prov.stage && prov.key && segs.length > 0) segs[segs.length - 1].key ??= prov.key;
    return segs;
  }
  const corpus = prov.stage?.corpus_sha256 ?? prov.corpus_sha256;
  if (!prov.params || !corpus) return [];
  return [{
    params: prov.params,
    corpus_sha256: corpus,
    init_sha256: null,
    ...(prov.key ? { key: prov.key } : {}),
  }];
}

/**
 * The first continued checkpoints (2026-12-01) recorded a segment's steps, lr, warmup,
 * batch_size and seed beside its hashes instead of its whole `params`: read them as params.
 */
function normalised(s: Segment | Record<string, unknown>): Segment {
  if ("params" in s) return { ...s } as Segment;
  const { corpus_sha256, init_sha256, key, ...params } = s;
  return {
    params,
    corpus_sha256: corpus_sha256 as string,
    init_sha256: init_sha256 as string | null,
    ...(key ? { key: key as string } : {}),
  };
}

/**
 * A JSON file a checkpoint directory carries (an export's) or sits beside (a stage's output),
 * if either exists; any other read error, or a file that is not JSON, stops with its path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const dir = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${dir}/checkpoint`);
 * assert.equal(jsonBeside(`${dir}/checkpoint`, "provenance.json"), undefined);
 * Deno.writeTextFileSync(`${dir}/provenance.json`, '{"key": "k"}');
 * assert.deepEqual(jsonBeside(`${dir}/checkpoint`, "provenance.json"), { key: "k" });
 * ```
 */
export function jsonBeside<T>(checkpointDir: string, name: string): T | undefined {
  for (const f of [`${checkpointDir}/${name}`, `${checkpointDir}/../${name}`]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(f);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw new UserInputError(`${f}: ${(e as Error).message}`);
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new UserInputError(`${f}: not JSON (${(e as Error).message})`);
    }
  }
  return undefined;
}

/**
 * The provenance a checkpoint directory carries (an export's) or sits beside (a stage's), if any.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const dir = Deno.makeTempDirSync();
 * assert.equal(checkpointProvenance(dir), undefined);
 * Deno.writeTextFileSync(`${dir}/provenance.json`, '{"key": "k"}');
 * assert.equal(checkpointProvenance(dir)?.key, "k");
 * ```
 */
export function checkpointProvenance(checkpointDir: string): Provenance | undefined {
  return jsonBeside<Provenance>(checkpointDir, "provenance.json");
}

/**
 * Adds the tokens each language saw in earlier segments to this segment's counts, so that
 * `tokens_by_language.json` of a continued checkpoint counts its whole pretraining.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const sum = withEarlierTokens({ eng: { tokens: 5 } }, { eng: { tokens: 3 }, fra: { tokens: 1 } });
 * assert.deepEqual(sum, { eng: { tokens: 8 }, fra: { tokens: 1 } });
 * ```
 */
export function withEarlierTokens<T extends { tokens: number }>(
  now: Record<string, T>,
  earlier: Record<string, T> | undefined,
): Record<string, T> {
  const out: Record<string, T> = { ...now };
  for (const [k, e] of Object.entries(earlier ?? {})) {
    out[k] = out[k] ? { ...out[k], tokens: out[k].tokens + e.tokens } : e;
  }
  return out;
}
