/**
 * SentencePiece's precompiled normaliser (the `Precompiled` normaliser of a `tokenizer.json`,
 * `precompiled_charsmap` of a `.model`), run exactly as SentencePiece runs it: the longest
 * prefix of the UTF-8 input found in the charsmap's double-array trie is replaced by its
 * normalised string, else one character is copied. `@huggingface/tokenizers` 0.2.0
 * approximates this with NFKC and a few regexes, which differs from SentencePiece on
 * zero-width and compatibility characters (about one SIB-200 test sentence in ten).
 * The blob is a little-endian u32 trie size, the Darts-clone units, then NUL-separated strings.
 * @module
 */
import { UserInputError } from "../pipeline/errors.ts";

/**
 * A normalising function for a charsmap blob.
 *
 * @example
 * ```ts ignore
 * const normalize = charsmapNormalizer(bytes);
 * normalize("ｶ"); // "カ" under nmt_nfkc
 * ```
 */
export function charsmapNormalizer(
  blob: Uint8Array,
  where = "precompiled_charsmap",
): (text: string) => string {
  if (blob.length < 4) throw new UserInputError(`${where}: shorter than its 4-byte trie size`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const trieBytes = view.getUint32(0, true);
  if (trieBytes % 4 !== 0 || 4 + trieBytes > blob.length) {
    throw new UserInputError(`${where}: trie of ${trieBytes} bytes does not fit a ${blob.length}-byte blob`);
  }
  const units = new Uint32Array(trieBytes / 4);
  for (let i = 0; i < units.length; i++) units[i] = view.getUint32(4 + 4 * i, true);
  const strings = blob.subarray(4 + trieBytes);
  const enc = new TextEncoder(), dec = new TextDecoder();
  const offset = (u: number) => (u >>> 10) << ((u & (1 << 9)) >>> 6);
  const label = (u: number) => u & ((1 << 31) | 0xff);
  const hasLeaf = (u: number) => ((u >>> 8) & 1) === 1;

  /** Longest match at `at`: [bytes consumed, string offset], or null. */
  const longest = (bytes: Uint8Array, at: number): [number, number] | null => {
    let node = offset(units[0]);
    let best: [number, number] | null = null;
    for (let i = at; i < bytes.length; i++) {
      const c = bytes[i];
      node ^= c;
      const u = units[node];
      if (u === undefined || (label(u) >>> 0) !== c) break;
      node ^= offset(u);
      if (hasLeaf(u)) best = [i + 1 - at, units[node] & 0x7fffffff];
    }
    return best;
  };
  const stringAt = (off: number) => {
    let end = off;
    while (end < strings.length && strings[end] !== 0) end++;
    return dec.decode(strings.subarray(off, end));
  };
  const charLength = (b: number) => (b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4);
  return (text: string) => {
    const bytes = enc.encode(text);
    let out = "";
    for (let i = 0; i < bytes.length;) {
      const hit = longest(bytes, i);
      if (hit) {
        out += stringAt(hit[1]);
        i += hit[0];
      } else {
        const n = charLength(bytes[i]);
        out += dec.decode(bytes.subarray(i, i + n));
        i += n;
      }
    }
    return out;
  };
}
