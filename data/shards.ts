/**
 * Encoded datasets as binary token shards: typed-array files plus a small JSON index.
 * `NAME.ids.i32` holds `n * max_length` token ids (padded), `NAME.len.u16` the attention
 * lengths, `NAME.label.i16` labels (-1 for none), `NAME.lang.u16` indexes into `languages`,
 * `NAME.item.i32` the dataset's own item id (SIB-200's index_id: the same across
 * languages, so translations can be matched; -1 when the dataset has none).
 * @module
 */

/** A split held in memory. */
export interface Shard {
  index: ShardIndex;
  ids: Int32Array;
  lengths: Uint16Array;
  labels: Int16Array;
  langs: Uint16Array;
  items: Int32Array;
}

/** The JSON part of a shard. */
export interface ShardIndex {
  name: string;
  n: number;
  max_length: number;
  pad_id: number;
  languages: string[];
  labels: string[];
}

/** Writes a shard as `dir/NAME.*`. */
export async function writeShard(dir: string, s: Shard): Promise<void> {
  const base = `${dir}/${s.index.name}`;
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  await Deno.writeFile(`${base}.ids.i32`, bytes(s.ids));
  await Deno.writeFile(`${base}.len.u16`, bytes(s.lengths));
  await Deno.writeFile(`${base}.label.i16`, bytes(s.labels));
  await Deno.writeFile(`${base}.lang.u16`, bytes(s.langs));
  await Deno.writeFile(`${base}.item.i32`, bytes(s.items));
  await Deno.writeTextFile(`${base}.json`, JSON.stringify(s.index));
}

/**
 * Reads `dir/NAME.*`.
 *
 * @example
 * ```ts ignore
 * const train = await readShard(taskDir, "train");
 * console.log(train.index.n, train.index.labels);
 * ```
 */
export async function readShard(dir: string, name: string): Promise<Shard> {
  const base = `${dir}/${name}`;
  const index: ShardIndex = JSON.parse(await Deno.readTextFile(`${base}.json`));
  const buf = async (ext: string) => (await Deno.readFile(`${base}.${ext}`)).buffer;
  const s: Shard = {
    index,
    ids: new Int32Array(await buf("ids.i32")),
    lengths: new Uint16Array(await buf("len.u16")),
    labels: new Int16Array(await buf("label.i16")),
    langs: new Uint16Array(await buf("lang.u16")),
    items: new Int32Array(await buf("item.i32")),
  };
  if (s.ids.length !== index.n * index.max_length || s.lengths.length !== index.n) {
    throw new Error(
      `${base}: shard files do not match their index (n=${index.n}, max_length=${index.max_length})`,
    );
  }
  return s;
}

/** Builds a shard from encoded rows (each already truncated to `maxLength`). */
export function buildShard(
  name: string,
  rows: { ids: number[]; label: number; lang: number; item?: number }[],
  maxLength: number,
  padId: number,
  languages: string[],
  labels: string[],
): Shard {
  const n = rows.length;
  const ids = new Int32Array(n * maxLength).fill(padId);
  const lengths = new Uint16Array(n), lab = new Int16Array(n), langs = new Uint16Array(n);
  const items = new Int32Array(n);
  rows.forEach((r, i) => {
    items[i] = r.item ?? -1;
    ids.set(r.ids.slice(0, maxLength), i * maxLength);
    lengths[i] = Math.min(r.ids.length, maxLength);
    lab[i] = r.label;
    langs[i] = r.lang;
  });
  return {
    index: { name, n, max_length: maxLength, pad_id: padId, languages, labels },
    ids,
    lengths,
    labels: lab,
    langs,
    items,
  };
}

/**
 * The rows of `s` whose language is one of `languages`, in shard order.
 *
 * @example
 * ```ts
 * import { rowsInLanguages, type Shard } from "./shards.ts";
 * const s = { index: { n: 3, languages: ["eng_Latn", "fra_Latn"] }, langs: Uint16Array.of(1, 0, 1) } as Shard;
 * if (rowsInLanguages(s, ["fra_Latn"]).join() !== "0,2") throw new Error("rowsInLanguages");
 * ```
 */
export function rowsInLanguages(s: Shard, languages: readonly string[]): number[] {
  const wanted = new Set(languages.map((l) => s.index.languages.indexOf(l)));
  const rows: number[] = [];
  for (let r = 0; r < s.index.n; r++) if (wanted.has(s.langs[r])) rows.push(r);
  return rows;
}

/** A batch of rows cut to the longest row rounded up to a multiple of 8 (fewer shapes to compile). */
export function batchRows(
  s: Shard,
  rows: number[],
): { ids: Int32Array; B: number; T: number; labels: Int32Array } {
  const L = s.index.max_length;
  const longest = Math.max(...rows.map((r) => s.lengths[r]));
  const T = Math.min(L, Math.ceil(longest / 8) * 8);
  const ids = new Int32Array(rows.length * T).fill(s.index.pad_id);
  rows.forEach((r, i) => ids.set(s.ids.subarray(r * L, r * L + Math.min(T, s.lengths[r])), i * T));
  return { ids, B: rows.length, T, labels: Int32Array.from(rows, (r) => s.labels[r]) };
}
