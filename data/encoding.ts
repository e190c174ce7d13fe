/**
 * Encoding through `@huggingface/tokenizers`, for our trained tokenizers and a user's own
 * `tokenizer.json` alike: special tokens, truncation and per-language statistics.
 * @module
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { UserInputError } from "../pipeline/errors.ts";

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

/** Loads `tokenizer.json` (and `tokenizer_config.json` when present) from a directory or file path. */
export async function loadTokenizer(path: string): Promise<LoadedTokenizer> {
  const file = path.endsWith(".json") ? path : `${path}/tokenizer.json`;
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
    throw new UserInputError(`${file}: missing (expected a Hugging Face tokenizer.json)`);
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
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await Deno.readTextFile(file.replace(/tokenizer\.json$/, "tokenizer_config.json")));
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
  const model = json.model as { vocab: Record<string, number> | [string, number][] };
  const vocabList: string[] = Array.isArray(model.vocab)
    ? model.vocab.map((v) => v[0])
    : Object.keys(model.vocab);
  const added = (json.added_tokens as { id: number; content: string }[] | undefined) ?? [];
  const idOf = (t: string) => {
    const a = added.find((x) => x.content === t);
    if (a) return a.id;
    const v = Array.isArray(model.vocab) ? vocabList.indexOf(t) : (model.vocab as Record<string, number>)[t];
    if (v === undefined || v < 0) {
      throw new UserInputError(
        `${file}: special token '${t}' is missing (XLM-R-style tokenizers have <s> <pad> </s> <unk> <mask>)`,
      );
    }
    return v;
  };
  // A loop, not Math.max(...ids): spreading a vocabulary of millions overflows the stack.
  let maxId = Array.isArray(model.vocab) ? vocabList.length - 1 : -1;
  if (!Array.isArray(model.vocab)) {
    for (const id of Object.values(model.vocab)) {
      maxId = Math.max(maxId, id);
    }
  }
  for (const a of added) maxId = Math.max(maxId, a.id);
  return {
    tok,
    vocabSize: maxId + 1,
    bos: idOf("<s>"),
    eos: idOf("</s>"),
    pad: idOf("<pad>"),
    unk: idOf("<unk>"),
    mask: idOf("<mask>"),
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
