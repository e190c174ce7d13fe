/**
 * Canonical JSON and sha256 helpers shared by cache keys and output hashes.
 * @module
 */
import { createHash } from "node:crypto";

/** JSON with object keys sorted at every depth, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      out[k] = sortKeys((value as Record<string, unknown>)[k]);
    }
    return out;
  }
  return value;
}

/**
 * Hex sha256 of a string or bytes.
 *
 * @example
 * ```ts
 * sha256("abc"); // "ba7816bf..."
 * ```
 */
export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

const CHUNK = 4 << 20;
const SMALL = 1 << 20;

/**
 * Hex sha256 of a file's bytes. A small file is read in one synchronous call: on a busy
 * machine each async file operation waits its turn, and a store of many small files paid
 * for five of them per file. A large one is read in pieces of up to 4 MiB, so large shards
 * do not sit in memory (a file's `readable` stream hands out 64 KiB chunks, which cost about
 * six times as much per byte).
 */
export async function sha256File(path: string): Promise<string> {
  if (Deno.statSync(path).size <= SMALL) return sha256(Deno.readFileSync(path));
  const h = createHash("sha256");
  using f = await Deno.open(path);
  const buf = new Uint8Array(CHUNK);
  for (let n; (n = await f.read(buf)) !== null;) h.update(buf.subarray(0, n));
  return h.digest("hex");
}
