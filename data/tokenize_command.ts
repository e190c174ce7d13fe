/**
 * `main.ts tokenize --tokenizer PATH [--pieces] [--special]`: reads lines on stdin and prints
 * each line's ids (or pieces) as one JSON array per line, so a user sees what the model sees
 * and tests can compare with a reference encoder. PATH is a `tokenizer.json`, a SentencePiece
 * `.model` (converted as XLM-R's is), or a checkpoint directory holding either.
 * @module
 */
import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import process from "node:process";
import { ConfigError } from "../pipeline/errors.ts";
import { loadTokenizer } from "./encoding.ts";

const USAGE =
  "usage: main.ts tokenize --tokenizer PATH [--pieces] [--special]  (lines on stdin; --special adds <s> </s>)";

/**
 * Runs the command; returns the exit code.
 *
 * @example
 * ```ts ignore
 * // echo "Hello world" | deno run -A main.ts tokenize --tokenizer models/sib24-mini
 * await tokenizeCommand(["--tokenizer", "models/sib24-mini"]);
 * ```
 */
export async function tokenizeCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      tokenizer: { type: "string" },
      pieces: { type: "boolean", default: false },
      special: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.tokenizer) throw new ConfigError(`tokenize needs --tokenizer PATH\n${USAGE}`);
  const t = await loadTokenizer(values.tokenizer);
  // deno-lint-ignore no-explicit-any
  const vocab: string[] = (t.tok as any).model.vocab;
  const out = Deno.stdout.writable.getWriter();
  const enc = new TextEncoder();
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    const ids = t.tok.encode(line, { add_special_tokens: false }).ids;
    const all = values.special ? [t.bos, ...ids, t.eos] : ids;
    await out.write(enc.encode(JSON.stringify(values.pieces ? all.map((i) => vocab[i]) : all) + "\n"));
  }
  await out.close();
  return 0;
}
