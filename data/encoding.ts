/**
 * Encoding through `@huggingface/tokenizers`, for our trained tokenizers and a user's own
 * `tokenizer.json` alike: special tokens, truncation and per-language statistics.
 * @module
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { UserInputError } from "../pipeline/errors.ts";
import { charsmapNormalizer } from "./charsmap.ts";
import { unigramEncoder } from "./unigram.ts";
import { type ConversionRecord, convertSentencePieceFile } from "./sentencepiece.ts";

/** A loaded tokenizer with the ids the model needs. */
export interface LoadedTokenizer {
  tok: Tokenizer;
  vocabSize: number;
  bos: number;
  eos: number;
  pad: number;
  unk: number;
  mask: number;
}

/**
 * The largest tokenizer.json read: XLM-R's, 250k pieces, is 17 MB; a file many times that
 * is not a tokenizer, and reading it would only spend memory.
 */
const MAX_TOKENIZER_BYTES = 256 << 20;

/**
 * Where a tokenizer lives: `tokenizer.json`, a SentencePiece `.model`, or a directory holding
 * either (a `tokenizer.json` wins; else `sentencepiece.bpe.model`, XLM-R's name, or the one
 * `*.model` there).
 *
 * @example
 * ```ts ignore
 * tokenizerSource("ckpt"); // { file: "ckpt/tokenizer.json", kind: "json" }
 * ```
 */
export function tokenizerSource(path: string): { file: string; kind: "json" | "sentencepiece" } {
  if (path.endsWith(".json")) return { file: path, kind: "json" };
  if (path.endsWith(".model")) return { file: path, kind: "sentencepiece" };
  const has = (f: string) => {
    try {
      return Deno.statSync(`${path}/${f}`).isFile;
    } catch {
      return false;
    }
  };
  if (has("tokenizer.json")) return { file: `${path}/tokenizer.json`, kind: "json" };
  if (has("sentencepiece.bpe.model")) {
    return { file: `${path}/sentencepiece.bpe.model`, kind: "sentencepiece" };
  }
  let models: string[] = [];
  try {
    models = [...Deno.readDirSync(path)].map((e) => e.name).filter((n) => n.endsWith(".model")).sort();
  } catch {
    // Not a directory: reported below as a missing tokenizer.json.
  }
  if (models.length === 1) return { file: `${path}/${models[0]}`, kind: "sentencepiece" };
  if (models.length > 1) {
    throw new UserInputError(`${path}: several SentencePiece models (${models.join(", ")}); name one`);
  }
  return { file: `${path}/tokenizer.json`, kind: "json" };
}

/**
 * Reads a tokenizer as a `tokenizer.json` object, converting a SentencePiece `.model` on the
 * way (the record says what the conversion did; null for a `tokenizer.json`).
 */
export async function readTokenizerJson(
  path: string,
): Promise<{ file: string; json: Record<string, unknown>; conversion: ConversionRecord | null }> {
  const src = tokenizerSource(path);
  if (src.kind === "sentencepiece") {
    const { json, record } = await convertSentencePieceFile(src.file);
    return { file: src.file, json, conversion: record };
  }
  const file = src.file;
  let text: string;
  try {
    const size = (await Deno.stat(file)).size;
    if (size > MAX_TOKENIZER_BYTES) {
      throw new UserInputError(
        `${file}: ${size} bytes, over the ${MAX_TOKENIZER_BYTES} read: not a tokenizer.json`,
      );
    }
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof UserInputError) throw e;
    throw new UserInputError(
      `${file}: missing (expected a Hugging Face tokenizer.json or a SentencePiece .model)`,
    );
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserInputError(`${file}: not valid JSON: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new UserInputError(`${file}: not a tokenizer.json (expected a JSON object)`);
  }
  const vocab = (json.model as { vocab?: unknown } | null)?.vocab;
  if (!json.model || typeof json.model !== "object" || !vocab || typeof vocab !== "object") {
    throw new UserInputError(
      `${file}: not a tokenizer.json (field model.vocab: missing or not a list or map)`,
    );
  }
  const badPiece = Array.isArray(vocab)
    ? vocab.findIndex((v) => !Array.isArray(v) || typeof v[0] !== "string" || typeof v[1] !== "number")
    : Object.values(vocab).findIndex((v) => !Number.isSafeInteger(v) || (v as number) < 0);
  if (badPiece >= 0) {
    throw new UserInputError(
      `${file}: field model.vocab: entry ${badPiece} is not ${
        Array.isArray(vocab) ? "[piece, score]" : "piece: id (a non-negative integer)"
      }`,
    );
  }
  const addedRaw = json.added_tokens;
  if (
    addedRaw !== undefined &&
    (!Array.isArray(addedRaw) ||
      addedRaw.some((a) => !a || typeof a.content !== "string" || !Number.isSafeInteger(a.id) || a.id < 0))
  ) {
    throw new UserInputError(`${file}: field added_tokens: expected a list of {id, content}`);
  }
  return { file, json, conversion: null };
}

/**
 * SentencePiece's own normaliser and Viterbi in place of the library's approximations, for a
 * `Precompiled` normaliser and a `Unigram` model (see `charsmap.ts`, `unigram.ts`).
 */
function exactSentencePiece(tok: Tokenizer, json: Record<string, unknown>, file: string): void {
  // deno-lint-ignore no-explicit-any
  const t = tok as any;
  // deno-lint-ignore no-explicit-any
  const patch = (inst: any, cfg: any) => {
    if (!inst || !cfg) return;
    if (cfg.type === "Precompiled" && cfg.precompiled_charsmap) {
      const bytes = Uint8Array.from(atob(cfg.precompiled_charsmap), (c) => c.charCodeAt(0));
      inst.normalize = charsmapNormalizer(bytes, `${file}: normalizer.precompiled_charsmap`);
    } else if (cfg.type === "Sequence") {
      (cfg.normalizers ?? []).forEach((c: unknown, i: number) => patch(inst.normalizers?.[i], c));
    }
  };
  patch(t.normalizer, json.normalizer);
  const model = json.model as {
    type?: string;
    vocab: [string, number][];
    unk_id?: number;
    byte_fallback?: boolean;
  };
  const metaspace = metaspaceOf(json.pre_tokenizer);
  if (model.type === "Unigram" && Array.isArray(model.vocab) && metaspace && t.pre_tokenizer) {
    // SentencePiece runs one Viterbi over the whole sentence (scores accumulate across words,
    // in float32), not one per word: the pre-tokeniser hands over the sentence in one piece.
    t.pre_tokenizer.pre_tokenize_text = (text: string) => {
      const body = text.split(" ").filter(Boolean).join("\u2581");
      return body ? [metaspace.prefix ? `\u2581${body}` : body] : [];
    };
    const added = (json.added_tokens as { id: number; special?: boolean }[] | undefined) ?? [];
    t.model.tokenize = unigramEncoder({
      vocab: model.vocab,
      unkId: model.unk_id ?? 0,
      byteFallback: model.byte_fallback ?? false,
      skip: new Set(added.filter((a) => a.special).map((a) => a.id)),
    });
  }
}

/** A SentencePiece-style pre-tokeniser (Metaspace, alone or after a whitespace split) and its prefix rule. */
function metaspaceOf(cfg: unknown): { prefix: boolean } | null {
  const c = cfg as { type?: string; pretokenizers?: unknown[]; replacement?: string } | null;
  if (!c) return null;
  const steps = c.type === "Sequence" ? (c.pretokenizers ?? []) as typeof c[] : [c];
  const last = steps[steps.length - 1] as
    | { type?: string; replacement?: string; add_prefix_space?: boolean; prepend_scheme?: string }
    | undefined;
  const before = steps.slice(0, -1).every((s) => s?.type === "WhitespaceSplit");
  if (!before || last?.type !== "Metaspace" || (last.replacement ?? "\u2581") !== "\u2581") return null;
  return { prefix: last.prepend_scheme ? last.prepend_scheme !== "never" : last.add_prefix_space !== false };
}

/**
 * Loads a tokenizer (`tokenizer.json`, a SentencePiece `.model`, or a directory with either;
 * `tokenizer_config.json` beside it is read when present).
 *
 * @example
 * ```ts ignore
 * const t = await loadTokenizer("models/sib24-mini");
 * console.log(pieces(t, "Hello world"));
 * ```
 */
export async function loadTokenizer(path: string): Promise<LoadedTokenizer> {
  const { file, json } = await readTokenizerJson(path);
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await Deno.readTextFile(file.replace(/[^/]*$/, "tokenizer_config.json")));
  } catch {
    config = {};
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new UserInputError(
      `${file}: refused by the tokenizer library: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  exactSentencePiece(tok, json, file);
  const model = json.model as { vocab: Record<string, number> | [string, number][] };
  const vocabList: string[] = Array.isArray(model.vocab)
    ? model.vocab.map((v) => v[0])
    : Object.keys(model.vocab);
  const added = (json.added_tokens as { id: number; content: string }[] | undefined) ?? [];
  const lookup = (t: unknown): number | undefined => {
    if (typeof t !== "string") return undefined;
    const a = added.find((x) => x.content === t);
    if (a) return a.id;
    const v = Array.isArray(model.vocab) ? vocabList.indexOf(t) : (model.vocab as Record<string, number>)[t];
    return v === undefined || v < 0 ? undefined : v;
  };
  const tokenName = (v: unknown) => (v && typeof v === "object" ? (v as { content?: string }).content : v);
  // XLM-R's names first, then what tokenizer_config.json names, then BERT's.
  const idOf = (role: string, names: string[]): number => {
    for (const n of [...names.slice(0, 1), ...names.slice(1).map((k) => tokenName(config[k]))]) {
      const id = lookup(n);
      if (id !== undefined) return id;
    }
    const bert = lookup(`[${role.toUpperCase()}]`);
    if (bert !== undefined) return bert;
    throw new UserInputError(
      `${file}: special token '${names[0]}' is missing (nor tokenizer_config.json's ${
        names.slice(1).join("/")
      } or [${role.toUpperCase()}]; XLM-R-style tokenizers have <s> <pad> </s> <unk> <mask>)`,
    );
  };
  // A loop, not Math.max(...ids): spreading a vocabulary of millions overflows the stack.
  let maxId = Array.isArray(model.vocab) ? vocabList.length - 1 : -1;
  if (!Array.isArray(model.vocab)) {
    for (const id of Object.values(model.vocab)) maxId = Math.max(maxId, id);
  }
  for (const a of added) maxId = Math.max(maxId, a.id);
  return {
    tok,
    vocabSize: maxId + 1,
    bos: idOf("cls", ["<s>", "bos_token", "cls_token"]),
    eos: idOf("sep", ["</s>", "eos_token", "sep_token"]),
    pad: idOf("pad", ["<pad>", "pad_token"]),
    unk: idOf("unk", ["<unk>", "unk_token"]),
    mask: idOf("mask", ["<mask>", "mask_token"]),
  };
}

/** Subword ids of a text without special tokens. */
export function pieces(t: LoadedTokenizer, text: string): number[] {
  return t.tok.encode(text, { add_special_tokens: false }).ids;
}

/**
 * `<s> A </s>` or `<s> A </s></s> B </s>`, truncated longest-first to `maxLength`.
 *
 * @example
 * ```ts ignore
 * const ids = encodeExample(tok, "premise", "hypothesis", 128);
 * ```
 */
export function encodeExample(t: LoadedTokenizer, a: string, b: string | null, maxLength: number): number[] {
  const pa = pieces(t, a);
  if (b === null) return [t.bos, ...pa.slice(0, maxLength - 2), t.eos];
  const pb = pieces(t, b);
  const budget = maxLength - 4;
  while (pa.length + pb.length > budget) (pa.length >= pb.length ? pa : pb).pop();
  return [t.bos, ...pa, t.eos, t.eos, ...pb, t.eos];
}

/** Tokenizer fertility (subwords per whitespace word) and unknown-token rate over texts. */
export function tokenStats(
  t: LoadedTokenizer,
  texts: string[],
): { fertility: number; unk_rate: number; tokens: number } {
  let words = 0, toks = 0, unk = 0;
  for (const text of texts) {
    words += text.split(/\s+/).filter(Boolean).length;
    const ids = pieces(t, text);
    toks += ids.length;
    for (const id of ids) if (id === t.unk) unk++;
  }
  return { fertility: words ? toks / words : 0, unk_rate: toks ? unk / toks : 0, tokens: toks };
}
