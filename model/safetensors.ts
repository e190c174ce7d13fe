/**
 * safetensors reader and writer (F32 written; F32, F16 and BF16 read into F32).
 * Written here rather than taken from npm: the format is an 8-byte length, a JSON header
 * and raw little-endian bytes, and the npm packages checked either wrap Node buffers or lack
 * BF16; fifty lines keep it exact and dependency-free.
 * @module
 */
import { UserInputError } from "../pipeline/errors.ts";

/** One tensor read from a file. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** The largest header read, as Hugging Face's own reader caps it: more is not a checkpoint. */
const MAX_HEADER = 100_000_000;
const WIDTH: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  start: number;
  end: number;
  count: number;
}

/**
 * Checks every field of a parsed header against the data section's size before anything is
 * allocated: a checkpoint is a file from a stranger, and a lying header must cost one line,
 * not memory, time or a stack trace.
 */
function checkHeader(path: string, header: unknown, base: number, dataBytes: number): TensorInfo[] {
  const bad = (field: string, why: string) => new UserInputError(`${path}: header field ${field}: ${why}`);
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw bad("(root)", "expected a JSON object of tensors");
  }
  const out: TensorInfo[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!t || typeof t !== "object") throw bad(`'${name}'`, "expected {dtype, shape, data_offsets}");
    const width = typeof t.dtype === "string" ? WIDTH[t.dtype] : undefined;
    if (!width) throw bad(`'${name}'.dtype`, `${JSON.stringify(t.dtype)} is not read (F32, F16, BF16)`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`'${name}'.shape`, "expected a list of non-negative integers");
    }
    let count = 1;
    for (const d of t.shape as number[]) {
      count *= d;
      if (count > Number.MAX_SAFE_INTEGER / 8) {
        throw bad(`'${name}'.shape`, `[${t.shape}]: its product overflows`);
      }
    }
    const o = t.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !o.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      throw bad(`'${name}'.data_offsets`, "expected [start, end], two non-negative integers");
    }
    const [start, end] = o as [number, number];
    if (end > dataBytes) {
      throw new UserInputError(
        `${path}: truncated: expected ${base + end} bytes, found ${
          base + dataBytes
        } (header field '${name}'.data_offsets)`,
      );
    }
    if (end < start) throw bad(`'${name}'.data_offsets`, `[${start}, ${end}] ends before it starts`);
    if (end - start !== count * width) {
      throw bad(
        `'${name}'.data_offsets`,
        `${end - start} bytes, but ${t.dtype} [${t.shape}] takes ${count * width}`,
      );
    }
    out.push({ name, dtype: t.dtype as string, shape: t.shape as number[], start, end, count });
  }
  const sorted = [...out].sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].end) {
      throw bad(`'${sorted[i].name}'.data_offsets`, `overlaps tensor '${sorted[i - 1].name}'`);
    }
  }
  return out;
}

/**
 * Reads every tensor of a safetensors file into F32. Every header field is checked against
 * the file before the data is read (see `checkHeader`), so a hostile file is refused in one
 * line naming the file and the field.
 *
 * @example
 * ```ts ignore
 * const tensors = await readSafetensors("model.safetensors");
 * console.log(tensors.get("roberta.embeddings.word_embeddings.weight")?.shape);
 * ```
 */
export async function readSafetensors(path: string): Promise<Map<string, NamedTensor>> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    throw new UserInputError(`${path}: missing (a checkpoint needs model.safetensors)`);
  }
  let bytes: Uint8Array, base: number, infos: TensorInfo[];
  try {
    const size = (await file.stat()).size;
    const readExactly = async (n: number) => {
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = await file.read(buf.subarray(got));
        if (r === null) break;
        got += r;
      }
      return buf.subarray(0, got);
    };
    if (size < 8) {
      throw new UserInputError(`${path}: truncated: ${size} bytes, not even the 8-byte header length`);
    }
    const headerLen = Number(new DataView((await readExactly(8)).buffer).getBigUint64(0, true));
    if (headerLen <= 0 || 8 + headerLen > size) {
      throw new UserInputError(
        `${path}: header field length: ${headerLen} bytes, but the file has ${size} (truncated or not safetensors)`,
      );
    }
    if (headerLen > MAX_HEADER) {
      throw new UserInputError(
        `${path}: header field length: ${headerLen} bytes, over the ${MAX_HEADER} read`,
      );
    }
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await readExactly(headerLen)));
    } catch (e) {
      throw new UserInputError(`${path}: header is not JSON: ${(e as Error).message.split("\n")[0]}`);
    }
    base = 8 + headerLen;
    infos = checkHeader(path, header, base, size - base);
    bytes = await readExactly(size - base);
    if (bytes.length !== size - base) throw new UserInputError(`${path}: truncated while reading`);
  } finally {
    file.close();
  }
  const out = new Map<string, NamedTensor>();
  for (const t of infos) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + t.start, t.end - t.start);
    const data = new Float32Array(t.count);
    for (let i = 0; i < t.count; i++) {
      if (t.dtype === "F32") data[i] = dv.getFloat32(i * 4, true);
      else if (t.dtype === "F16") data[i] = f16ToF32(dv.getUint16(i * 2, true));
      else data[i] = new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0];
    }
    out.set(t.name, { shape: t.shape, data });
  }
  return out;
}

/** Writes tensors as F32 safetensors, names sorted, with optional string metadata. */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, NamedTensor>,
  metadata: Record<string, string> = { format: "pt" },
): Promise<void> {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.length * 4] };
    offset += t.data.length * 4;
  }
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - (headerText.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p);
    p += d.byteLength;
  }
  await Deno.writeFile(path, out);
}
