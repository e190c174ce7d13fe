/**
 * Test helpers: a checkpoint written in each layout users bring from the Hub.
 * @module
 */
import { type EncoderConfig, toHfConfig } from "../model/config.ts";
import { type Heads, paramShapes } from "../model/encoder.ts";
import { type NamedTensor, writeSafetensors, writeZeroSafetensors } from "../model/safetensors.ts";

/** Every layout the loader accepts, and the one it refuses. */
export const LAYOUTS = [
  "prefixed",
  "bare",
  "f16",
  "bf16",
  "sharded",
  "hub",
  "classifier7",
  "classifier3",
] as const;
export type Layout = typeof LAYOUTS[number] | "bin-only";

/**
 * Tensors for a config and heads, with values F16 and BF16 hold exactly (k/256, |k| <= 64),
 * so a half-precision layout loads to the very same numbers.
 */
export function exactTensors(cfg: EncoderConfig, heads: Heads, salt = 0): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  let k = salt;
  for (const [name, shape] of paramShapes(cfg, heads)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from(
      { length: n },
      () => (((k = (k * 1103515245 + 12345) >>> 0) % 129) - 64) / 256,
    );
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * Writes `tensors` as a checkpoint in `layout` under `root`; returns the path to give
 * `model/load` (a directory, or a model id for `hub`, found under `root/hf/hub`).
 */
export async function writeLayout(
  root: string,
  layout: Layout,
  cfg: EncoderConfig,
  tensors: Map<string, NamedTensor>,
  extra: Record<string, string | Uint8Array> = {},
  labels?: string[],
): Promise<string> {
  const dir = layout === "hub" ? `${root}/hf/hub/models--org--tiny` : `${root}/${layout}`;
  const files = layout === "hub" ? `${dir}/blobs` : dir;
  await Deno.mkdir(files, { recursive: true });
  const named = new Map(
    [...tensors].map(([n, t]) => [layout === "bare" ? n.replace(/^roberta\./, "") : n, t]),
  );
  const out = new Map<string, Uint8Array | string>(Object.entries(extra));
  out.set("config.json", JSON.stringify(toHfConfig(cfg, labels)));
  const tmp = `${root}/.tmp-${layout}.safetensors`;
  if (layout === "sharded") {
    const names = [...named.keys()].sort();
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, part] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(tmp, new Map(part.map((n) => [n, named.get(n)!])));
      out.set(file, await Deno.readFile(tmp));
      for (const n of part) weightMap[n] = file;
    }
    out.set("model.safetensors.index.json", JSON.stringify({ metadata: {}, weight_map: weightMap }));
  } else if (layout === "bin-only") {
    out.set("pytorch_model.bin", new Uint8Array([0x80, 0x02]));
  } else {
    const dtype = layout === "f16" ? "F16" : layout === "bf16" ? "BF16" : "F32";
    await writeSafetensors(tmp, named, { format: "pt" }, dtype);
    out.set("model.safetensors", await Deno.readFile(tmp));
  }
  await Deno.remove(tmp).catch(() => {});
  for (const [name, body] of out) {
    const target = layout === "hub" ? `${files}/${name.replace(/\W/g, "")}` : `${dir}/${name}`;
    if (typeof body === "string") await Deno.writeTextFile(target, body);
    else await Deno.writeFile(target, body);
  }
  if (layout !== "hub") return dir;
  // huggingface_hub's layout: refs/main names the snapshot; its files link into blobs/.
  await Deno.mkdir(`${dir}/refs`, { recursive: true });
  await Deno.writeTextFile(`${dir}/refs/main`, "0123abcd");
  const snap = `${dir}/snapshots/0123abcd`;
  await Deno.mkdir(snap, { recursive: true });
  for (const name of out.keys()) {
    await Deno.symlink(`../../blobs/${name.replace(/\W/g, "")}`, `${snap}/${name}`);
  }
  return "org/tiny";
}

/**
 * A zero-filled checkpoint of a real shape (XLM-R base) as the Hub ships it: F16, two shards
 * with an index, `roberta.` names and an MLM head. Sparse files: nothing is held in memory.
 */
export async function writeZeroCheckpoint(dir: string, cfg: EncoderConfig): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const shapes = paramShapes(cfg, { mlm: true, numLabels: 0 });
  const half = Math.ceil(shapes.length / 2);
  const weightMap: Record<string, string> = {};
  for (const [i, part] of [shapes.slice(0, half), shapes.slice(half)].entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeZeroSafetensors(`${dir}/${file}`, part, "F16");
    for (const [n] of part) weightMap[n] = file;
  }
  await Deno.writeTextFile(`${dir}/model.safetensors.index.json`, JSON.stringify({ weight_map: weightMap }));
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(toHfConfig(cfg)));
}
