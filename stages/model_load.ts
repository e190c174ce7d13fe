/**
 * `model/load`: a checkpoint from disk as users have them (HF `config.json` + `model.safetensors`
 * or shards with `model.safetensors.index.json`; names with or without `roberta.`; F32, F16 or
 * BF16; `path` a directory or a model id in the Hugging Face cache), checked tensor by tensor
 * from the headers before anything trains on it. A tokenizer comes as `tokenizer.json` or as
 * a SentencePiece `.model`, which is converted (`tokenizer_conversion.json` says how). When the
 * directory has a `provenance.json`, every file it lists must match its sha256.
 * @module
 */
import { z } from "zod";
import { inputPath, type StageType } from "../pipeline/stage.ts";
import { hubCacheDir, hubSnapshot } from "../model/hub.ts";

const schema = z.strictObject({
  path: inputPath("dir", {
    find: (raw) => hubSnapshot(raw),
    describe:
      `not a model id in the Hugging Face cache at ${hubCacheDir()} either; HF_HUB_CACHE or HF_HOME moves it`,
  }),
});

// Other frameworks' copies of the same weights: a Hub snapshot often carries them.
const SKIP = /\.(bin|h5|msgpack|ot|onnx|pt|pth|gguf)$/;

/** Validates the checkpoint and copies what the pipeline uses to `checkpoint/`. */
export const stage: StageType<typeof schema> = {
  type: "model/load",
  description:
    "use an HF-layout XLM-R checkpoint from disk or the Hub cache (sha256-checked when it has a provenance.json)",
  schema,
  async run(ctx) {
    const { inspectCheckpoint } = await import("../model/checkpoint.ts");
    const { verifyProvenance } = await import("../pipeline/export_entry.ts");
    const { readTokenizerJson, loadTokenizer, tokenizerSource } = await import("../data/encoding.ts");
    const dir = ctx.params.path;
    const prov = await verifyProvenance(dir);
    const { cfg, report } = await inspectCheckpoint(dir, { mlm: false, numLabels: 0 });
    const out = `${ctx.out}/checkpoint`;
    await Deno.mkdir(out);
    for (const e of Deno.readDirSync(dir)) {
      // Hub snapshots hold links into blobs/: copy what they point at.
      if ((e.isFile || e.isSymlink) && !e.name.startsWith(".") && !SKIP.test(e.name)) {
        if (Deno.statSync(`${dir}/${e.name}`).isFile) {
          await Deno.copyFile(`${dir}/${e.name}`, `${out}/${e.name}`);
        }
      }
    }
    let tokNote = "";
    if (tokenizerSource(dir).kind === "sentencepiece") {
      const { json, conversion } = await readTokenizerJson(dir);
      await Deno.writeTextFile(`${out}/tokenizer.json`, JSON.stringify(json));
      await Deno.writeTextFile(
        `${out}/tokenizer_conversion.json`,
        JSON.stringify(conversion, null, 2) + "\n",
      );
      tokNote = `; tokenizer converted from ${conversion!.source} (tokenizer_conversion.json)`;
    }
    // A checkpoint may come without a tokenizer (a tokenizer/load stage then gives one).
    const tok = tokNote || (await Deno.stat(`${out}/tokenizer.json`).catch(() => null))
      ? await loadTokenizer(out)
      : null;
    if (tok && tok.vocabSize > cfg.vocab_size) {
      const { UserInputError } = await import("../pipeline/errors.ts");
      throw new UserInputError(
        `${dir}: the tokenizer has ${tok.vocabSize} ids but config.json's vocab_size is ${cfg.vocab_size}`,
      );
    }
    ctx.log(
      `loaded ${dir}: ${cfg.num_hidden_layers} layers, hidden ${cfg.hidden_size}, vocab ${cfg.vocab_size}; ${report.layout} safetensors, ${
        report.dtypes.join("/")
      } (F32 on load), names ${report.prefix === "none" ? "without" : "with"} roberta.${
        report.ignored.length ? `; not used: ${report.ignored.join(", ")}` : ""
      }${tokNote}${
        prov ? `; sha256 matches provenance.json (${prov.pipeline}/${prov.instance})` : "; no provenance.json"
      }`,
    );
  },
};
