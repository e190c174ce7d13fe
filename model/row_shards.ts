/**
 * Row blocks of the word embedding. An XLM-R embedding (250,002 x 768 float32 = 768 MB) is
 * larger than Mesa's software adapter can bind (128 MiB), so on such a device it is held as
 * consecutive row blocks `NAME#0`, `NAME#1`, ... each under the limit; the MLM decoder tied to
 * it follows. Only a tensor over the limit is split, so small models (their parameter order
 * and GradDrop streams included) are unchanged. Checkpoints keep the HF name: blocks are
 * joined on save and split on load.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** HF name of the word embedding, the one tensor split into blocks. */
export const WORD_EMBEDDINGS = "roberta.embeddings.word_embeddings.weight";

/** One block: its first row and row count. */
export interface RowBlock {
  start: number;
  rows: number;
}

/**
 * Splits `rows` x `cols` float32 rows into the fewest near-equal blocks of at most
 * `limitBytes` each; one block when the whole fits.
 *
 * @example
 * ```ts
 * rowBlocks(250002, 768, 134217728).length; // 6
 * rowBlocks(8000, 64, 134217728); // [{ start: 0, rows: 8000 }]
 * ```
 */
export function rowBlocks(rows: number, cols: number, limitBytes: number): RowBlock[] {
  const rowBytes = cols * 4;
  const maxRows = Math.floor(limitBytes / rowBytes);
  if (maxRows < 1) throw new Error(`one row of ${rowBytes} bytes exceeds the limit of ${limitBytes} bytes`);
  const n = Math.ceil(rows / maxRows);
  const per = Math.ceil(rows / n);
  return Array.from({ length: n }, (_, k) => ({ start: k * per, rows: Math.min(per, rows - k * per) }));
}

/** Name of block `k` of tensor `name`. */
function blockName(name: string, k: number): string {
  return `${name}#${k}`;
}

/** The HF name a parameter key stands for (a block's tensor, or itself). */
function hfName(key: string): string {
  const i = key.indexOf("#");
  return i < 0 ? key : key.slice(0, i);
}

/**
 * The host tensors to create for one HF tensor: the tensor itself, or the word embedding's
 * row blocks when it is larger than `limitBytes`. Blocks are views on `data`.
 *
 * @example
 * ```ts
 * const parts = splitForLimit(WORD_EMBEDDINGS, new Float32Array(10 * 4), [10, 4], 64);
 * parts.map(([k, , s]) => `${k} [${s}]`); // ["...weight#0 [4,4]", "...weight#1 [4,4]", "...weight#2 [2,4]"]
 * ```
 */
export function splitForLimit(
  name: string,
  data: Float32Array,
  shape: number[],
  limitBytes: number,
): [string, Float32Array, number[]][] {
  if (name !== WORD_EMBEDDINGS || data.length * 4 <= limitBytes) return [[name, data, shape]];
  const cols = shape[1];
  return rowBlocks(shape[0], cols, limitBytes).map((b, k) => [
    blockName(name, k),
    data.subarray(b.start * cols, (b.start + b.rows) * cols),
    [b.rows, cols],
  ]);
}

/**
 * The word embedding as its blocks in row order (one element when it is not split).
 *
 * @example
 * ```ts ignore
 * const blocks = wordEmbeddingBlocks(params); // [Variable [41667, 768], ...] on llvmpipe
 * ```
 */
export function wordEmbeddingBlocks(p: Map<string, tf.Variable>): tf.Variable[] {
  const whole = p.get(WORD_EMBEDDINGS);
  if (whole) return [whole];
  const blocks: tf.Variable[] = [];
  for (let k = 0; p.has(blockName(WORD_EMBEDDINGS, k)); k++) {
    blocks.push(p.get(blockName(WORD_EMBEDDINGS, k))!);
  }
  if (blocks.length === 0) throw new Error(`parameters have no '${WORD_EMBEDDINGS}'`);
  return blocks;
}

/**
 * Host values of every parameter under its HF name, blocks joined in row order.
 *
 * @example
 * ```ts ignore
 * const tensors = await joinedTensors(params); // Map { "roberta.embeddings.word_embeddings.weight" => ... }
 * ```
 */
export async function joinedTensors(
  p: Map<string, tf.Variable>,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const parts = new Map<string, [number, tf.Variable][]>();
  for (const [key, v] of p) {
    const name = hfName(key);
    const k = key === name ? -1 : Number(key.slice(name.length + 1));
    parts.set(name, [...(parts.get(name) ?? []), [k, v]]);
  }
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, indexed] of parts) {
    const vs = indexed.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
    if (indexed[0][0] < 0) {
      out.set(name, { shape: vs[0].shape, data: (await vs[0].data()) as Float32Array });
      continue;
    }
    const rows = vs.reduce((a, v) => a + v.shape[0], 0), cols = vs[0].shape[1]!;
    const data = new Float32Array(rows * cols);
    let o = 0;
    for (const v of vs) {
      data.set((await v.data()) as Float32Array, o);
      o += v.size;
    }
    out.set(name, { shape: [rows, cols], data });
  }
  return out;
}
