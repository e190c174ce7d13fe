/**
 * A bare SentencePiece `.model` (XLM-R's `sentencepiece.bpe.model`, or one `spm_train` wrote)
 * converted to a Hugging Face `tokenizer.json` the way `transformers`' `XLMRobertaConverter`
 * does: fairseq's ids (`<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, every other piece one above its
 * SentencePiece id, `<mask>` last), the pieces' scores, the unknown id and byte fallback,
 * whitespace split + Metaspace, and the model's own normaliser (its precompiled charsmap,
 * kept verbatim). The protobuf is decoded with `protobufjs` from the fields of
 * `sentencepiece_model.proto` that a conversion reads.
 * @module
 */
import protobuf from "protobufjs";
import { UserInputError } from "../pipeline/errors.ts";

// Field numbers and defaults as in sentencepiece_model.proto (sentencepiece 0.1.97).
const PROTO = `
syntax = "proto2";
package sentencepiece;
message TrainerSpec {
  enum ModelType { UNIGRAM = 1; BPE = 2; WORD = 3; CHAR = 4; }
  optional ModelType model_type = 3 [default = UNIGRAM];
  optional int32 vocab_size = 4 [default = 8000];
  optional bool treat_whitespace_as_suffix = 24 [default = false];
  optional bool byte_fallback = 35 [default = false];
  optional int32 unk_id = 40 [default = 0];
  optional int32 bos_id = 41 [default = 1];
  optional int32 eos_id = 42 [default = 2];
  optional int32 pad_id = 43 [default = -1];
}
message NormalizerSpec {
  optional string name = 1;
  optional bytes precompiled_charsmap = 2;
  optional bool add_dummy_prefix = 3 [default = true];
  optional bool remove_extra_whitespaces = 4 [default = true];
  optional bool escape_whitespaces = 5 [default = true];
}
message ModelProto {
  message SentencePiece {
    enum Type { NORMAL = 1; UNKNOWN = 2; CONTROL = 3; USER_DEFINED = 4; BYTE = 6; UNUSED = 5; }
    optional string piece = 1;
    optional float score = 2;
    optional Type type = 3 [default = NORMAL];
  }
  repeated SentencePiece pieces = 1;
  optional TrainerSpec trainer_spec = 2;
  optional NormalizerSpec normalizer_spec = 3;
}
`;

/** The parts of a SentencePiece model a conversion reads. */
export interface SentencePieceModel {
  pieces: { piece: string; score: number; type: number }[];
  modelType: "unigram" | "bpe" | "word" | "char";
  byteFallback: boolean;
  unkId: number;
  normalizer: {
    name: string;
    charsmap: Uint8Array;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
  };
}

let modelProto: protobuf.Type | undefined;

/**
 * Decodes a SentencePiece `.model` file's bytes.
 *
 * @example
 * ```ts ignore
 * const m = parseSentencePiece(await Deno.readFile("sentencepiece.bpe.model"), "sentencepiece.bpe.model");
 * console.log(m.pieces.length, m.modelType);
 * ```
 */
export function parseSentencePiece(bytes: Uint8Array, file: string): SentencePieceModel {
  modelProto ??= protobuf.parse(PROTO, { keepCase: true }).root.lookupType("sentencepiece.ModelProto");
  // deno-lint-ignore no-explicit-any
  let m: any;
  try {
    m = modelProto.toObject(modelProto.decode(bytes), { defaults: true, enums: Number, bytes: Uint8Array });
  } catch (e) {
    throw new UserInputError(`${file}: not a SentencePiece model (${(e as Error).message})`);
  }
  if (!m.pieces?.length) throw new UserInputError(`${file}: not a SentencePiece model (no pieces)`);
  const t = m.trainer_spec ?? {};
  const n = m.normalizer_spec ?? {};
  return {
    pieces: m.pieces.map((p: { piece: string; score: number; type: number }) => ({
      piece: p.piece,
      score: p.score,
      type: p.type,
    })),
    modelType: (["", "unigram", "bpe", "word", "char"] as const)[t.model_type ?? 1] as SentencePieceModel[
      "modelType"
    ],
    byteFallback: t.byte_fallback ?? false,
    unkId: t.unk_id ?? 0,
    normalizer: {
      name: n.name ?? "",
      charsmap: n.precompiled_charsmap ?? new Uint8Array(),
      addDummyPrefix: n.add_dummy_prefix ?? true,
      removeExtraWhitespaces: n.remove_extra_whitespaces ?? true,
    },
  };
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: content === "<mask>",
  normalized: false,
  rstrip: false,
  special: true,
});

/**
 * A `tokenizer.json` object for a Unigram SentencePiece model, with XLM-R's fairseq ids.
 * SentencePiece's first three pieces (`<unk>`, `<s>`, `</s>` in XLM-R's model) become
 * `<s> <pad> </s> <unk>`; piece `i >= 3` gets id `i + 1`; `<mask>` is last.
 *
 * @example
 * ```ts ignore
 * const json = sentencePieceToTokenizerJson(parseSentencePiece(bytes, file), file);
 * await Deno.writeTextFile("tokenizer.json", JSON.stringify(json));
 * ```
 */
export function sentencePieceToTokenizerJson(m: SentencePieceModel, file: string): Record<string, unknown> {
  if (m.modelType !== "unigram") {
    throw new UserInputError(
      `${file}: a SentencePiece ${m.modelType.toUpperCase()} model; only Unigram models (XLM-R's kind) are converted`,
    );
  }
  const head = m.pieces.slice(0, 3).map((p) => p.piece).sort().join(" ");
  if (head !== "</s> <s> <unk>") {
    throw new UserInputError(
      `${file}: the first three pieces are '${
        m.pieces.slice(0, 3).map((p) => p.piece).join("', '")
      }'; XLM-R's fairseq ids need <unk>, <s>, </s> there (spm_train's defaults)`,
    );
  }
  const vocab: [string, number][] = [["<s>", 0], ["<pad>", 0], ["</s>", 0], ["<unk>", 0]];
  for (const p of m.pieces.slice(3)) vocab.push([p.piece, p.score]);
  vocab.push(["<mask>", 0]);
  const mask = vocab.length - 1;
  const nz = m.normalizer;
  // SentencePiece's own whitespace handling (strip, collapse, dummy prefix) is whitespace
  // split then Metaspace, as the converter wrote it for XLM-R.
  const preTokenizers: Record<string, unknown>[] = [];
  if (nz.removeExtraWhitespaces) preTokenizers.push({ type: "WhitespaceSplit" });
  preTokenizers.push({
    type: "Metaspace",
    replacement: "\u2581",
    add_prefix_space: nz.addDummyPrefix,
    prepend_scheme: nz.addDummyPrefix ? "always" : "never",
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<s>"), special(1, "<pad>"), special(2, "</s>"), special(3, "<unk>"), {
      ...special(mask, "<mask>"),
    }],
    normalizer: nz.charsmap.length > 0
      ? { type: "Precompiled", precompiled_charsmap: base64(nz.charsmap) }
      : null,
    pre_tokenizer: { type: "Sequence", pretokenizers: preTokenizers },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "</s>", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "</s>", type_id: 0 } },
        { SpecialToken: { id: "</s>", type_id: 0 } },
        { Sequence: { id: "B", type_id: 0 } },
        { SpecialToken: { id: "</s>", type_id: 0 } },
      ],
      special_tokens: {
        "<s>": { id: "<s>", ids: [0], tokens: ["<s>"] },
        "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] },
      },
    },
    decoder: {
      type: "Metaspace",
      replacement: "\u2581",
      add_prefix_space: nz.addDummyPrefix,
      prepend_scheme: nz.addDummyPrefix ? "always" : "never",
    },
    model: { type: "Unigram", unk_id: 3, vocab, byte_fallback: m.byteFallback },
  };
}

/** What a conversion records beside the checkpoint's provenance. */
export interface ConversionRecord {
  source: string;
  source_sha256: string;
  converter: string;
  model_type: string;
  pieces: number;
  vocab_size: number;
  normalizer: string;
  byte_fallback: boolean;
  id_mapping: string;
}

/**
 * Reads a `.model` file and returns the `tokenizer.json` object and what was done.
 *
 * @example
 * ```ts ignore
 * const { json, record } = await convertSentencePieceFile("ckpt/sentencepiece.bpe.model");
 * ```
 */
export async function convertSentencePieceFile(
  file: string,
): Promise<{ json: Record<string, unknown>; record: ConversionRecord }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch {
    throw new UserInputError(`${file}: missing (expected a SentencePiece .model)`);
  }
  const m = parseSentencePiece(bytes, file);
  const json = sentencePieceToTokenizerJson(m, file);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return {
    json,
    record: {
      source: file.split("/").pop()!,
      source_sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
      converter: "graddrop data/sentencepiece.ts (as transformers' XLMRobertaConverter)",
      model_type: m.modelType,
      pieces: m.pieces.length,
      vocab_size: m.pieces.length + 2,
      normalizer: m.normalizer.charsmap.length > 0
        ? `Precompiled charsmap (${m.normalizer.name || "unnamed"}, ${m.normalizer.charsmap.length} bytes)`
        : "none (identity)",
      byte_fallback: m.byteFallback,
      id_mapping: "fairseq: <s> 0, <pad> 1, </s> 2, <unk> 3, piece i>=3 -> i+1, <mask> last",
    },
  };
}
