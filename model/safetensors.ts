/**
 * safetensors reader and writer (F32, F16 and BF16 read into F32, one tensor at a time; F32
 * written, or F16/BF16 for tests that need a user's half-precision files).
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

/** One tensor's entry in a safetensors header. */
export interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A safetensors file's header: tensor entries by name, and where the data starts. */
export interface SafetensorsHeader {
  path: string;
  base: number;
  tensors: Map<string, TensorEntry>;
}

/** The largest header read, as Hugging Face's own reader caps it: more is not a checkpoint. */
const MAX_HEADER = 100_000_000;
const WIDTH: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/**
 * Checks every field of a parsed header against the data section's size before anything is
 * allocated: a checkpoint is a file from a stranger, and a lying header must cost one line,
 * not memory, time or a stack trace.
 */
function checkHeader(
  path: string,
  header: unknown,
  base: number,
  dataBytes: number,
): Map<string, TensorEntry> {
  const bad = (field: string, why: string) => new UserInputError(`${path}: header field ${field}: ${why}`);
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw bad("(root)", "expected a JSON object of tensors");
  }
  const out = new Map<string, TensorEntry>();
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
    out.set(name, { dtype: t.dtype as string, shape: t.shape as number[], data_offsets: [start, end] });
  }
  const sorted = [...out].sort(([, a], [, b]) =>
    a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]
  );
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i][1].data_offsets[0] < sorted[i - 1][1].data_offsets[1]) {
      throw bad(`'${sorted[i][0]}'.data_offsets`, `overlaps tensor '${sorted[i - 1][0]}'`);
    }
  }
  return out;
}

/**
 * Reads only the header of a safetensors file (names, dtypes, shapes, offsets), checking
 * that the file is long enough for every tensor it lists.
 *
 * @example
 * ```ts ignore
 * const h = await readSafetensorsHeader("model.safetensors");
 * console.log([...h.tensors.keys()].length);
 * ```
 */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
  } catch {
    throw new UserInputError(`${path}: missing (a checkpoint needs model.safetensors)`);
  }
  try {
    const size = (await f.stat()).size;
    const head = new Uint8Array(8);
    if (size < 8 || (await f.read(head)) !== 8) {
      throw new UserInputError(`${path}: truncated: ${size} bytes, not even the 8-byte header length`);
    }
    const headerLen = Number(new DataView(head.buffer).getBigUint64(0, true));
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
    const text = new Uint8Array(headerLen);
    let got = 0;
    while (got < headerLen) {
      const n = await f.read(text.subarray(got));
      if (n === null) break;
      got += n;
    }
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(text));
    } catch (e) {
      throw new UserInputError(`${path}: header is not JSON: ${(e as Error).message.split("\n")[0]}`);
    }
    const base = 8 + headerLen;
    const tensors = checkHeader(path, header, base, size - base);
    return { path, base, tensors };
  } finally {
    f.close();
  }
}

let f16Table: Float32Array | undefined;

/** Every half-precision bit pattern as float32, built once (F16 tensors convert by lookup). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  return f16Table;
}

/**
 * Reads one tensor of a file whose header was read, converting F16/BF16 to F32.
 *
 * @example
 * ```ts ignore
 * const h = await readSafetensorsHeader("model.safetensors");
 * const w = await readTensor(h, "roberta.embeddings.LayerNorm.weight");
 * ```
 */
export async function readTensor(h: SafetensorsHeader, name: string): Promise<NamedTensor> {
  const t = h.tensors.get(name);
  if (!t) throw new UserInputError(`${h.path}: no tensor '${name}'`);
  const [start, end] = t.data_offsets;
  const raw = new Uint8Array(end - start);
  const f = await Deno.open(h.path);
  try {
    await f.seek(h.base + start, Deno.SeekMode.Start);
    let got = 0;
    while (got < raw.length) {
      const n = await f.read(raw.subarray(got));
      if (n === null) throw new UserInputError(`${h.path}: truncated inside tensor '${name}'`);
      got += n;
    }
  } finally {
    f.close();
  }
  const n = raw.length / WIDTH[t.dtype];
  if (t.dtype === "F32") return { shape: t.shape, data: new Float32Array(raw.buffer, 0, n) };
  const half = new Uint16Array(raw.buffer, 0, n);
  if (t.dtype === "F16") {
    const table = halfTable();
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = table[half[i]];
    return { shape: t.shape, data };
  }
  // bfloat16 is the top half of a float32.
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) bits[i] = half[i] << 16;
  return { shape: t.shape, data: new Float32Array(bits.buffer) };
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
  const h = await readSafetensorsHeader(path);
  const out = new Map<string, NamedTensor>();
  for (const name of h.tensors.keys()) out.set(name, await readTensor(h, name));
  return out;
}

function f32ToF16(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  const m = b & 0x7fffff;
  if (e <= 0) return sign; // underflow to zero: tests write values F16 holds
  if (e >= 31) return sign | 0x7c00;
  return sign | ((e << 10) + Math.round(m / 8192));
}

function encodeHeader(metadata: Record<string, string>, entries: [string, TensorEntry][]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  for (const [name, e] of entries) header[name] = e;
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - (headerText.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  return out;
}

function layout(specs: [string, number[]][], dtype: "F32" | "F16" | "BF16"): [string, TensorEntry][] {
  let offset = 0;
  return specs.map(([name, shape]) => {
    const bytes = shape.reduce((a, b) => a * b, 1) * WIDTH[dtype];
    const e: TensorEntry = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
    return [name, e];
  });
}

/**
 * Writes tensors as safetensors (F32 unless `dtype` says F16 or BF16, as a user's half-precision
 * checkpoint is), names sorted, with optional string metadata.
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, NamedTensor>,
  metadata: Record<string, string> = { format: "pt" },
  dtype: "F32" | "F16" | "BF16" = "F32",
): Promise<void> {
  const names = [...tensors.keys()].sort();
  const entries = layout(names.map((n) => [n, tensors.get(n)!.shape]), dtype);
  const head = encodeHeader(metadata, entries);
  const total = entries.length ? entries[entries.length - 1][1].data_offsets[1] : 0;
  const out = new Uint8Array(head.length + total);
  out.set(head);
  let p = head.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    if (dtype === "F32") out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p);
    else {
      const half = new Uint16Array(d.length);
      const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
      for (let i = 0; i < d.length; i++) half[i] = dtype === "F16" ? f32ToF16(d[i]) : bits[i] >>> 16;
      out.set(new Uint8Array(half.buffer), p);
    }
    p += d.length * WIDTH[dtype];
  }
  await Deno.writeFile(path, out);
}

/**
 * Writes a safetensors file whose tensors are all zero, without holding them in memory: the
 * header, then the file extended to its full length (a sparse file on most file systems).
 * For tests that need a checkpoint of XLM-R's real shape.
 *
 * @example
 * ```ts ignore
 * await writeZeroSafetensors("model.safetensors", [["w", [250002, 768]]], "F16");
 * ```
 */
export async function writeZeroSafetensors(
  path: string,
  specs: [string, number[]][],
  dtype: "F32" | "F16" | "BF16",
): Promise<void> {
  const entries = layout([...specs].sort((a, b) => (a[0] < b[0] ? -1 : 1)), dtype);
  const head = encodeHeader({ format: "pt" }, entries);
  await Deno.writeFile(path, head);
  const total = entries.length ? entries[entries.length - 1][1].data_offsets[1] : 0;
  await Deno.truncate(path, head.length + total);
}
