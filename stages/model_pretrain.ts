/**
 * `model/pretrain`: MLM (+ optional TLM) pretraining of an XLM-R-shaped encoder.
 * @module
 */
import { z } from "zod";
import { inputOfType, type StageType } from "./types.ts";

const schema = z.strictObject({
  config: z.enum(["tiny", "small", "base", "large"]).default("small"),
  steps: z.number().int().min(1).default(600),
  batch_size: z.number().int().min(1).default(32),
  max_length: z.number().int().min(8).max(512).default(64),
  lr: z.number().positive().default(1e-3),
  warmup: z.number().int().min(0).default(60),
  weight_decay: z.number().min(0).default(0.01),
  clip_norm: z.number().min(0).default(1.0),
  mask_prob: z.number().min(0.01).max(0.5).default(0.15),
  dropout: z.number().min(0).max(0.5).default(0.1),
  tlm_fraction: z.number().min(0).max(1).default(0.2),
  checkpoint_every: z.number().int().min(1).default(100),
  seed: z.number().int().default(0),
  backend: z.enum(["auto", "webgpu", "wasm", "cpu"]).default("auto"),
  fused: z.boolean().default(true),
});

/** Writes `checkpoint/` (HF layout), `tokenizer.json`, `curve.jsonl`, `provenance.json`. */
export const stage: StageType<typeof schema> = {
  type: "model/pretrain",
  description: "MLM (+TLM) pretraining of an XLM-R-architecture encoder on a corpus",
  schema,
  publish: ["curve.jsonl"],
  async run(ctx) {
    const { initBackend } = await import("../model/backend.ts");
    const { namedConfig } = await import("../model/config.ts");
    const { pretrain } = await import("../model/pretrain.ts");
    const { readCorpus } = await import("../data/corpus.ts");
    const { loadTokenizer, pieces } = await import("../data/encoding.ts");
    const p = ctx.params;
    const backend = await initBackend(p.backend);
    ctx.log(
      `backend ${backend.backend}${
        backend.adapter ? ` (${backend.adapter}, fallback=${backend.fallback}, mesa=${backend.mesaPath})` : ""
      }`,
    );
    const tokDir = inputOfType(ctx, ["tokenizer/"]).dir;
    const tok = await loadTokenizer(tokDir);
    const corpus = await readCorpus(inputOfType(ctx, ["corpus/"]).dir);
    const L = p.max_length;
    const seqs: Int32Array[] = corpus.paragraphs.map((x) =>
      Int32Array.from([tok.bos, ...pieces(tok, x.text).slice(0, L - 2), tok.eos])
    );
    // TLM: English paragraphs paired with the same paragraph in another language.
    const key = (x: { article: number; paragraph: number }) => `${x.article}:${x.paragraph}`;
    const eng = new Map(corpus.paragraphs.filter((x) => x.lang === "eng").map((x) => [key(x), x.text]));
    const others = corpus.paragraphs.filter((x) => x.lang !== "eng" && eng.has(key(x)));
    const nTlm = Math.min(others.length, Math.round(seqs.length * p.tlm_fraction));
    const stride = others.length / Math.max(1, nTlm);
    for (let i = 0; i < nTlm; i++) {
      const x = others[Math.floor(i * stride)];
      const a = pieces(tok, eng.get(key(x))!), b = pieces(tok, x.text);
      while (a.length + b.length > L - 4) (a.length >= b.length ? a : b).pop();
      seqs.push(Int32Array.from([tok.bos, ...a, tok.eos, tok.eos, ...b, tok.eos]));
    }
    const cfg = namedConfig(p.config, tok.vocabSize);
    cfg.max_position_embeddings = Math.max(cfg.max_position_embeddings, L + 2);
    ctx.log(`${seqs.length} sequences (${nTlm} TLM pairs), vocab ${tok.vocabSize}, config ${p.config}`);
    const t0 = performance.now();
    const { curve, resumedFrom } = await pretrain(
      cfg,
      seqs,
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
      },
      { work: ctx.work, out: ctx.out },
      (step, row) => {
        if (step % 10 === 0 || step === p.steps) {
          ctx.progress(
            step / p.steps,
            `step ${step}/${p.steps} loss ${row.loss.toFixed(3)} ${row.tokens_per_s.toFixed(0)} tok/s`,
          );
        }
      },
    );
    if (resumedFrom > 0) ctx.log(`resumed from step ${resumedFrom}`);
    await Deno.copyFile(`${tokDir}/tokenizer.json`, `${ctx.out}/checkpoint/tokenizer.json`);
    await Deno.writeTextFile(`${ctx.out}/curve.jsonl`, curve.map((r) => JSON.stringify(r)).join("\n") + "\n");
    await Deno.writeTextFile(`${ctx.out}/provenance.json`, JSON.stringify({ ...backend }));
    const first = curve[0]?.loss,
      last = curve.slice(-10).reduce((a, r) => a + r.loss, 0) / Math.min(10, curve.length);
    ctx.log(
      `MLM loss ${first?.toFixed(3)} -> ${last.toFixed(3)} in ${
        ((performance.now() - t0) / 1000).toFixed(0)
      }s`,
    );
  },
};
