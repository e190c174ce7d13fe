/**
 * `model/pretrain`: MLM + TLM pretraining of an XLM-R-shaped encoder on every corpus it
 * needs, data-parallel over `workers` threads, on packed sequences. With a `model/pretrain`
 * or `model/load` input it continues from that checkpoint (its weights, not its optimizer
 * state: a new segment with its own warm-up and schedule) and records every earlier segment
 * in its provenance.
 * @module
 */
import { z } from "zod";
import { inputOfType, inputPath, inputsOfType, type StageType } from "../pipeline/stage.ts";
import type { EncoderConfig } from "../model/config.ts";
import { UserInputError } from "../pipeline/errors.ts";
import {
  checkpointProvenance,
  jsonBeside,
  type Segment,
  segmentsOf,
  withEarlierTokens,
} from "../model/segments.ts";

const Shape = z.strictObject({
  hidden_size: z.number().int().min(8),
  num_hidden_layers: z.number().int().min(1),
  num_attention_heads: z.number().int().min(1),
  intermediate_size: z.number().int().min(8),
});

const schema = z.strictObject({
  config: z.union([z.enum(["tiny", "small", "base", "large"]), Shape]).default("small"),
  steps: z.number().int().min(1).default(600),
  /** Sequences per step over all workers. */
  batch_size: z.number().int().min(1).default(32),
  /** Packed sequence length, specials included. */
  max_length: z.number().int().min(8).max(512).default(128),
  lr: z.number().positive().default(1e-3),
  warmup: z.number().int().min(0).default(60),
  weight_decay: z.number().min(0).default(0.01),
  clip_norm: z.number().min(0).default(1.0),
  mask_prob: z.number().min(0.01).max(0.5).default(0.15),
  dropout: z.number().min(0).max(0.5).default(0.1),
  /** TLM on every SIB-style pair (same `align` key) of English with another language. */
  tlm_pairs: z.boolean().default(true),
  /** Share of UDHR paragraphs (non-English) that also appear as a TLM pair with English. */
  tlm_udhr_fraction: z.number().min(0).max(1).default(0.2),
  /** Weight of InfoXLM-style cross-lingual contrast on translation pairs (0: MLM + TLM only). */
  xlco_weight: z.number().min(0).default(0),
  xlco_batch: z.number().int().min(0).default(16),
  xlco_group: z.number().int().min(2).default(8),
  xlco_temperature: z.number().positive().default(0.05),
  /**
   * `align`-key prefixes (`cldr:`) whose translation pairs train TLM but stay out of the
   * contrast. Optional with no default, so runs that do not set it keep their cache keys and
   * resume fingerprints.
   */
  xlco_exclude: z.array(z.string().min(1)).min(1).optional(),
  checkpoint_every: z.number().int().min(1).default(100),
  seed: z.number().int().default(0),
  workers: z.number().int().min(1).max(16).default(1),
  backend: z.enum(["auto", "webgpu", "wasm", "cpu"]).default("auto"),
  fused: z.boolean().default(true),
  /**
   * Resumable state (`state.json`, `optimizer.safetensors`, weights, `curve.jsonl`) of this same
   * run, committed elsewhere, e.g. under `models/`: a run longer than one machine's session
   * picks up there when its own cache is empty. Refused unless its settings fingerprint
   * (every other param, the corpora, the tokenizer, the checkpoint continued) is this run's.
   */
  resume_from: inputPath("dir").optional(),
});

/**
 * Writes `checkpoint/` (HF layout with `tokenizer.json`), `curve.jsonl`,
 * `tokens_by_language.json` and `provenance.json`.
 */
export const stage: StageType<typeof schema> = {
  type: "model/pretrain",
  description:
    "MLM + TLM pretraining of an XLM-R-architecture encoder (packed sequences, data-parallel workers), from random weights or continuing a checkpoint",
  schema,
  async environment(params) {
    const { resolveBackend } = await import("../platform/adapter.ts");
    return { backend: await resolveBackend(params.backend) };
  },
  publish: ["curve.jsonl", "tokens_by_language.json"],
  async run(ctx) {
    const { namedConfig, NAMED_CONFIGS } = await import("../model/config.ts");
    const { pretrain, tokensSeen } = await import("../train/pretrain.ts");
    const { pretrainingSequences } = await import("../data/pretraining_data.ts");
    const { readCorpora } = await import("../data/corpus.ts");
    const { loadTokenizer } = await import("../data/encoding.ts");
    const p = ctx.params;
    const init = initCheckpoint(ctx);
    const tokDir = inputsOfType(ctx, ["tokenizer/"]).length || !init
      ? inputOfType(ctx, ["tokenizer/"]).dir
      : init;
    const tok = await loadTokenizer(tokDir);
    const cfg = typeof p.config === "string"
      ? namedConfig(p.config, tok.vocabSize)
      : { ...NAMED_CONFIGS.small, ...p.config, vocab_size: tok.vocabSize };
    cfg.max_position_embeddings = Math.max(cfg.max_position_embeddings, p.max_length + 2);
    const earlier = init ? await continuing(init, tokDir, cfg, p.max_length) : undefined;
    const corpus = await readCorpora(inputsOfType(ctx, ["corpus/"]).map((c) => c.dir));
    const data = pretrainingSequences(corpus, tok, {
      maxLength: p.max_length,
      tlmPairs: p.tlm_pairs,
      tlmUdhrFraction: p.tlm_udhr_fraction,
      contrastExclude: p.xlco_exclude,
      seed: p.seed,
    });
    const nTokens = data.seqs.reduce((a, s) => a + s.length, 0);
    ctx.log(
      `${data.seqs.length} packed sequences (${data.tlmSequences} TLM), ${nTokens} tokens per epoch; ${data.pairs.length} translation pairs; vocab ${tok.vocabSize}; ${
        (p.steps * p.batch_size / data.seqs.length).toFixed(1)
      } epochs`,
    );
    const { canonicalJson, sha256, sha256File } = await import("../pipeline/hash.ts");
    const { resume_from, ...settings } = p;
    const fingerprint = sha256(canonicalJson({
      settings,
      corpus_sha256: data.corpusHash,
      tokenizer_sha256: await sha256File(`${tokDir}/tokenizer.json`),
      init_sha256: earlier?.sha256 ?? null,
    }));
    const t0 = performance.now();
    const { curve, resumedFrom, resumes, backend } = await pretrain(
      cfg,
      data.seqs,
      data.pairs,
      {
        vocabSize: tok.vocabSize,
        mask: tok.mask,
        pad: tok.pad,
        special: new Set([tok.bos, tok.eos, tok.pad]),
      },
      {
        steps: p.steps,
        batchSize: p.batch_size,
        lr: p.lr,
        warmup: p.warmup,
        weightDecay: p.weight_decay,
        clipNorm: p.clip_norm,
        maskProb: p.mask_prob,
        seed: p.seed,
        dropout: p.dropout,
        checkpointEvery: p.checkpoint_every,
        fused: p.fused,
        workers: p.workers,
        backend: p.backend,
        xlcoWeight: p.xlco_weight,
        xlcoBatch: p.xlco_batch,
        xlcoGroup: p.xlco_group,
        xlcoTemperature: p.xlco_temperature,
      },
      { work: ctx.work, out: ctx.out, init },
      { settings: fingerprint, from: resume_from },
      (row, tps) => {
        if (row.step % 10 === 0 || row.step === p.steps) {
          ctx.progress(
            row.step / p.steps,
            `step ${row.step}/${p.steps} mlm ${row.mlm.toFixed(3)}${
              row.xlco !== undefined ? ` xlco ${row.xlco.toFixed(3)}` : ""
            } ${tps.toFixed(0)} tok/s`,
          );
        }
      },
    );
    if (resumedFrom > 0) ctx.log(`resumed from step ${resumedFrom}`);
    ctx.log(`trained on ${backend.backend} with ${p.workers} worker(s)`);
    await Deno.copyFile(`${tokDir}/tokenizer.json`, `${ctx.out}/checkpoint/tokenizer.json`);
    await Deno.writeTextFile(`${ctx.out}/curve.jsonl`, curve.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const seen = tokensSeen(data.seqLangs, p.steps, p.batch_size, p.seed);
    const byLang = withEarlierTokens(
      Object.fromEntries(
        data.languages.map((
          l,
          i,
        ) => [l.lang, { ...l, tokens: seen.get(i) ?? 0, tokens_per_epoch: data.tokensPerEpoch[i] }]),
      ),
      earlier?.tokens,
    );
    await Deno.writeTextFile(`${ctx.out}/tokens_by_language.json`, JSON.stringify(byLang, null, 1));
    const segment: Segment = {
      params: settings,
      settings_sha256: fingerprint,
      resumes,
      corpus_sha256: data.corpusHash,
      init_sha256: earlier?.sha256 ?? null,
    };
    await Deno.writeTextFile(
      `${ctx.out}/provenance.json`,
      JSON.stringify(
        {
          backend,
          corpus_sha256: data.corpusHash,
          sequences: data.seqs.length,
          segments: [...earlier?.segments ?? [], segment],
        },
        null,
        2,
      ),
    );
    const first = curve[0]?.loss,
      last = curve.slice(-10).reduce((a, r) => a + r.loss, 0) / Math.min(10, curve.length);
    // `loss` is the objective trained: MLM/TLM plus the weighted contrast term.
    ctx.log(
      `loss (MLM + contrast) ${first?.toFixed(3)} -> ${last.toFixed(3)} in ${
        ((performance.now() - t0) / 1000).toFixed(0)
      }s`,
    );
  },
};

/** The checkpoint directory of a `model/pretrain` or `model/load` input to continue from, if any. */
function initCheckpoint(ctx: Parameters<typeof inputsOfType>[0]): string | undefined {
  const models = inputsOfType(ctx, ["model/pretrain", "model/load"]);
  if (models.length > 1) {
    throw new UserInputError(
      `model/pretrain continues from one checkpoint; needs gives ${models.length}: ${
        models.map((m) => m.id).join(", ")
      }`,
    );
  }
  return models[0] ? `${models[0].dir}/checkpoint` : undefined;
}

const SHAPE = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"] as const;

/**
 * Checks the checkpoint continued from has the shape, vocabulary and tokenizer this stage
 * declares (a continuation that silently changed one would not be the same model), and
 * gathers what the new segment's provenance carries forward. Runs before the corpora are
 * tokenized, so a wrong checkpoint fails at once.
 */
async function continuing(dir: string, tokDir: string, cfg: EncoderConfig, maxLength: number) {
  const { readConfig } = await import("../model/checkpoint.ts");
  const { sha256File } = await import("../pipeline/hash.ts");
  const have = await readConfig(dir);
  const problems = SHAPE.filter((k) => have[k] !== cfg[k]).map((k) =>
    `${k} is ${have[k]}, params give ${cfg[k]}`
  );
  if (have.vocab_size !== cfg.vocab_size) {
    problems.push(`vocab_size is ${have.vocab_size}, the tokenizer has ${cfg.vocab_size}`);
  }
  if (maxLength + 2 > have.max_position_embeddings) {
    problems.push(
      `max_position_embeddings is ${have.max_position_embeddings}, max_length ${maxLength} needs ${
        maxLength + 2
      }`,
    );
  }
  if (problems.length) {
    throw new UserInputError(
      `${dir}/config.json: continuing needs the shape in params.config; ${problems.join("; ")}`,
    );
  }
  cfg.max_position_embeddings = have.max_position_embeddings;
  const ownTokenizer = await Deno.stat(`${dir}/tokenizer.json`).then(() => true, () => false);
  if (tokDir !== dir && ownTokenizer) {
    const [a, b] = await Promise.all([
      sha256File(`${dir}/tokenizer.json`),
      sha256File(`${tokDir}/tokenizer.json`),
    ]);
    if (a !== b) {
      throw new UserInputError(
        `${dir}/tokenizer.json: not the tokenizer given as input (${tokDir}/tokenizer.json)`,
      );
    }
  }
  const segments = segmentsOf(checkpointProvenance(dir));
  // An export carries them; a stage's output sits beside them.
  const tokens = jsonBeside<Record<string, { tokens: number }>>(dir, "tokens_by_language.json");
  if (segments.length > 0 && !tokens) {
    throw new UserInputError(
      `${dir}: its provenance records ${segments.length} pretraining segment(s) but not the tokens they saw (tokens_by_language.json); export it with --with tokens_by_language.json`,
    );
  }
  return { sha256: await sha256File(`${dir}/model.safetensors`), segments, tokens };
}
