/**
 * `model/pretrain`: MLM + TLM pretraining of an XLM-R-shaped encoder on every corpus it
 * needs, data-parallel over `workers` threads, on packed sequences.
 * @module
 */
import { z } from "zod";
import { inputOfType, inputsOfType, type StageType } from "../pipeline/stage.ts";

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
  checkpoint_every: z.number().int().min(1).default(100),
  seed: z.number().int().default(0),
  workers: z.number().int().min(1).max(16).default(1),
  backend: z.enum(["auto", "webgpu", "wasm", "cpu"]).default("auto"),
  fused: z.boolean().default(true),
});

/**
 * Writes `checkpoint/` (HF layout with `tokenizer.json`), `curve.jsonl`,
 * `tokens_by_language.json` and `provenance.json`.
 */
export const stage: StageType<typeof schema> = {
  type: "model/pretrain",
  description:
    "MLM + TLM pretraining of an XLM-R-architecture encoder (packed sequences, data-parallel workers)",
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
    const tokDir = inputOfType(ctx, ["tokenizer/"]).dir;
    const tok = await loadTokenizer(tokDir);
    const corpus = await readCorpora(inputsOfType(ctx, ["corpus/"]).map((c) => c.dir));
    const data = pretrainingSequences(corpus, tok, {
      maxLength: p.max_length,
      tlmPairs: p.tlm_pairs,
      tlmUdhrFraction: p.tlm_udhr_fraction,
      seed: p.seed,
    });
    const cfg = typeof p.config === "string"
      ? namedConfig(p.config, tok.vocabSize)
      : { ...NAMED_CONFIGS.small, ...p.config, vocab_size: tok.vocabSize };
    cfg.max_position_embeddings = Math.max(cfg.max_position_embeddings, p.max_length + 2);
    const nTokens = data.seqs.reduce((a, s) => a + s.length, 0);
    ctx.log(
      `${data.seqs.length} packed sequences (${data.tlmSequences} TLM), ${nTokens} tokens per epoch; ${data.pairs.length} translation pairs; vocab ${tok.vocabSize}; ${
        (p.steps * p.batch_size / data.seqs.length).toFixed(1)
      } epochs`,
    );
    const t0 = performance.now();
    const { curve, resumedFrom, backend } = await pretrain(
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
      { work: ctx.work, out: ctx.out },
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
    const byLang = Object.fromEntries(
      data.languages.map((
        l,
        i,
      ) => [l.lang, { ...l, tokens: seen.get(i) ?? 0, tokens_per_epoch: data.tokensPerEpoch[i] }]),
    );
    await Deno.writeTextFile(`${ctx.out}/tokens_by_language.json`, JSON.stringify(byLang, null, 1));
    await Deno.writeTextFile(
      `${ctx.out}/provenance.json`,
      JSON.stringify({ backend, corpus_sha256: data.corpusHash, sequences: data.seqs.length }, null, 2),
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
