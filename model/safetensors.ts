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

/**
 * Reads every tensor of a safetensors file into F32.
 *
 * @example
 * ```ts ignore
 * const tensors = await readSafetensors("model.safetensors");
 * console.log(tensors.get("roberta.embeddings.word_embeddings.weight")?.shape);
 * ```
 */
export async function readSafetensors(path: string): Promise<Map<string, NamedTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    throw new UserInputError(`${path}: missing (a checkpoint needs model.safetensors)`);
  }
  if (bytes.length < 8) {
    throw new UserInputError(`${path}: truncated: ${bytes.length} bytes, not even the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen <= 0 || 8 + headerLen > bytes.length) {
    throw new UserInputError(
      `${path}: truncated or not safetensors: header of ${headerLen} bytes, file of ${bytes.length} bytes`,
    );
  }
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new UserInputError(`${path}: safetensors header is not JSON: ${(e as Error).message}`);
  }
  const base = 8 + headerLen;
  const expected = base +
    Math.max(
      0,
      ...Object.entries(header).filter(([k]) => k !== "__metadata__").map(([, t]) => t.data_offsets[1]),
    );
  if (bytes.length < expected) {
    throw new UserInputError(`${path}: truncated: expected ${expected} bytes, found ${bytes.length}`);
  }
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const [start, end] = t.data_offsets;
    const raw = bytes.subarray(base + start, base + end);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const data = new Float32Array(n);
    const width = { F32: 4, F16: 2, BF16: 2 }[t.dtype];
    if (!width) {
      throw new UserInputError(
        `${path}: tensor '${name}' has unsupported dtype ${t.dtype} (F32, F16, BF16 read)`,
      );
    }
    if (raw.length !== n * width) {
      throw new UserInputError(`${path}: tensor '${name}' byte size does not match its shape`);
    }
    for (let i = 0; i < n; i++) {
      if (t.dtype === "F32") data[i] = dv.getFloat32(i * 4, true);
      else if (t.dtype === "F16") data[i] = f16ToF32(dv.getUint16(i * 2, true));
      else data[i] = new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0];
    }
    out.set(name, { shape: t.shape, data });
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
