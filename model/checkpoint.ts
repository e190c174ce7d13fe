/**
 * Checkpoints in Hugging Face layout: `config.json` + `model.safetensors` (or shards with
 * `model.safetensors.index.json`), parameters by HF name with or without `roberta.`, F32,
 * F16 or BF16. Loading checks every expected tensor's presence and shape and names the
 * offender; `pytorch_model.bin` alone is refused with the command that converts it.
 * A word embedding held as row blocks is saved whole and split again on load when the
 * active device needs it.
 * @module
 */
import { type EncoderConfig, fromHfConfig, toHfConfig } from "./config.ts";
import { type Heads, initParams, initValue, ownedVariable, type Params, paramShapes } from "./encoder.ts";
import { mulberry32 } from "../kernels/random.ts";
import { UserInputError } from "../pipeline/errors.ts";
import {
  type NamedTensor,
  readSafetensorsHeader,
  readTensor,
  type SafetensorsHeader,
  writeSafetensors,
} from "./safetensors.ts";
import { bindingLimit } from "./limits.ts";
import { joinedTensors, splitForLimit } from "./row_shards.ts";

/** Writes params to `dir/model.safetensors` and the config to `dir/config.json`. */
export async function saveCheckpoint(
  dir: string,
  cfg: EncoderConfig,
  params: Params,
  labels?: string[],
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeSafetensors(`${dir}/model.safetensors`, await joinedTensors(params));
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(toHfConfig(cfg, labels), null, 2));
}

/** Reads `config.json` of a checkpoint directory. */
export async function readConfig(dir: string): Promise<EncoderConfig> {
  const file = `${dir}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    throw new UserInputError(
      `${file}: missing (a checkpoint directory needs config.json in Hugging Face layout)`,
    );
  }
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new UserInputError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return fromHfConfig(obj, file);
}

/** Where each tensor of a checkpoint lives: one `model.safetensors`, or shards listed by an index. */
export interface CheckpointTensors {
  /** `model.safetensors` or `model.safetensors.index.json`. */
  layout: "single" | "sharded";
  headers: SafetensorsHeader[];
  /** Tensor name -> the header of the file holding it. */
  byName: Map<string, SafetensorsHeader>;
}

const exists = (p: string) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
};

/** The one-line conversion a user with only `pytorch_model.bin` can run (needs torch and safetensors). */
export function binConversionCommand(dir: string): string {
  return `python3 -c "import torch; from safetensors.torch import save_file; sd = torch.load('${dir}/pytorch_model.bin', map_location='cpu'); save_file({k: v.clone().contiguous() for k, v in sd.items()}, '${dir}/model.safetensors', metadata={'format': 'pt'})"`;
}

/**
 * Finds a checkpoint's tensors: `model.safetensors`, or `model.safetensors.index.json` and its
 * shards (headers only; nothing is read yet). A directory with only `pytorch_model.bin` (or a
 * `.bin` index) is refused with the conversion to run.
 *
 * @example
 * ```ts ignore
 * const t = await checkpointTensors("ckpt");
 * console.log(t.layout, t.byName.size);
 * ```
 */
export async function checkpointTensors(dir: string): Promise<CheckpointTensors> {
  const single = `${dir}/model.safetensors`, index = `${dir}/model.safetensors.index.json`;
  if (exists(single)) {
    const h = await readSafetensorsHeader(single);
    return { layout: "single", headers: [h], byName: new Map([...h.tensors.keys()].map((n) => [n, h])) };
  }
  if (exists(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(await Deno.readTextFile(index)).weight_map;
    } catch (e) {
      throw new UserInputError(`${index}: not valid JSON: ${(e as Error).message}`);
    }
    if (!map || typeof map !== "object") throw new UserInputError(`${index}: no 'weight_map' object`);
    const headers = new Map<string, SafetensorsHeader>();
    const byName = new Map<string, SafetensorsHeader>();
    for (const [name, shard] of Object.entries(map)) {
      if (typeof shard !== "string" || shard.includes("/")) {
        throw new UserInputError(`${index}: weight_map.${name}: expected a shard file name beside the index`);
      }
      if (!headers.has(shard)) {
        if (!exists(`${dir}/${shard}`)) {
          throw new UserInputError(`${index}: weight_map.${name}: shard ${shard} is missing from ${dir}`);
        }
        headers.set(shard, await readSafetensorsHeader(`${dir}/${shard}`));
      }
      const h = headers.get(shard)!;
      if (!h.tensors.has(name)) {
        throw new UserInputError(`${dir}/${shard}: has no tensor '${name}' (${index} says it does)`);
      }
      byName.set(name, h);
    }
    return { layout: "sharded", headers: [...headers.values()], byName };
  }
  if (exists(`${dir}/pytorch_model.bin`) || exists(`${dir}/pytorch_model.bin.index.json`)) {
    throw new UserInputError(
      `${dir}: only PyTorch weights (pytorch_model.bin), which are pickles and not read here; convert them once with: ${
        binConversionCommand(dir)
      }`,
    );
  }
  throw new UserInputError(`${dir}: no model.safetensors or model.safetensors.index.json`);
}

/** What loading found beyond the expected tensors. */
export interface LoadReport {
  /** Whether encoder names carry `roberta.` (XLMRobertaFor*) or not (XLMRobertaModel). */
  prefix: "roberta." | "none";
  layout: "single" | "sharded";
  /** Stored dtypes seen (converted to F32 on load). */
  dtypes: string[];
  /** Head tensors initialised afresh (absent from the file). */
  fresh: string[];
  /** Classifier tensors in the file replaced because the label count differs. */
  replaced: string[];
  /** Tensors in the file the model does not use (another head, buffers). */
  ignored: string[];
}

/**
 * Matches a checkpoint's tensors to the parameters a config and heads need, from headers
 * only: a missing encoder tensor or a wrong shape is an error naming the tensor; a classifier
 * with another label count is replaced (reported).
 */
export function matchTensors(
  dir: string,
  found: CheckpointTensors,
  cfg: EncoderConfig,
  heads: Heads,
): { plan: [string, number[], string | null][]; report: LoadReport } {
  const plan: [string, number[], string | null][] = [];
  const used = new Set<string>();
  const report: LoadReport = {
    prefix: [...found.byName.keys()].some((n) => n.startsWith("roberta.")) ? "roberta." : "none",
    layout: found.layout,
    dtypes: [...new Set(found.headers.flatMap((h) => [...h.tensors.values()].map((t) => t.dtype)))].sort(),
    fresh: [],
    replaced: [],
    ignored: [],
  };
  for (const [name, shape] of paramShapes(cfg, heads)) {
    const key = [name, name.replace(/^roberta\./, "")].find((k) => found.byName.has(k)) ?? null;
    const isHead = name.startsWith("classifier.") || name.startsWith("lm_head.");
    const where = key ? found.byName.get(key)!.path : `${dir}/model.safetensors`;
    if (!key) {
      if (!isHead) throw new UserInputError(`${where}: missing tensor '${name}' (expected shape [${shape}])`);
      report.fresh.push(name);
      plan.push([name, shape, null]);
      continue;
    }
    used.add(key);
    const have = found.byName.get(key)!.tensors.get(key)!.shape;
    if (have.join(",") !== shape.join(",")) {
      if (name.startsWith("classifier.")) {
        report.replaced.push(`${name} [${have}] -> [${shape}]`);
        plan.push([name, shape, null]);
        continue;
      }
      throw new UserInputError(`${where}: tensor '${key}' has shape [${have}], expected [${shape}]`);
    }
    plan.push([name, shape, key]);
  }
  report.ignored = [...found.byName.keys()].filter((k) => !used.has(k)).sort();
  return { plan, report };
}

/**
 * Checks a checkpoint against its config without reading tensor data: the layout, every
 * expected tensor's presence and shape, and what else is there.
 *
 * @example
 * ```ts ignore
 * const { cfg, report } = await inspectCheckpoint("ckpt", { mlm: false, numLabels: 7 });
 * ```
 */
export async function inspectCheckpoint(
  dir: string,
  heads: Heads,
): Promise<{ cfg: EncoderConfig; report: LoadReport }> {
  const cfg = await readConfig(dir);
  const { report } = matchTensors(dir, await checkpointTensors(dir), cfg, heads);
  return { cfg, report };
}

/**
 * Every tensor of a checkpoint (single or sharded, any prefix) as F32, under the names this
 * project uses (`roberta.` added where the file has none).
 */
export async function readCheckpointWeights(dir: string): Promise<Map<string, NamedTensor>> {
  const found = await checkpointTensors(dir);
  const prefixed = [...found.byName.keys()].some((n) => n.startsWith("roberta."));
  const out = new Map<string, NamedTensor>();
  for (const [name, h] of found.byName) {
    const encoder = /^(embeddings|encoder|pooler)\./.test(name);
    out.set(!prefixed && encoder ? `roberta.${name}` : name, await readTensor(h, name));
  }
  return out;
}

/**
 * Loads a checkpoint for the given heads. Encoder tensors must all be present with the
 * right shapes; head tensors absent from the file (a new classification head on a
 * pretrained encoder), or a classifier for another label count, are initialised from
 * `seed`. Names with or without `roberta.`, one file or shards, F32/F16/BF16 all load.
 *
 * @example
 * ```ts ignore
 * const { cfg, params, report } = await loadCheckpoint("ckpt", { mlm: false, numLabels: 6 }, 1);
 * ```
 */
export async function loadCheckpoint(
  dir: string,
  heads: Heads,
  seed: number,
  cfgOverride?: Partial<EncoderConfig>,
): Promise<{ cfg: EncoderConfig; params: Params; fresh: string[]; report: LoadReport }> {
  const cfg = { ...(await readConfig(dir)), ...cfgOverride };
  const found = await checkpointTensors(dir);
  const { plan, report } = matchTensors(dir, found, cfg, heads);
  const rand = mulberry32(seed);
  const limit = bindingLimit();
  const params: Params = new Map();
  try {
    for (const [name, shape, key] of plan) {
      if (!key) {
        params.set(name, ownedVariable(initValue(name, shape, rand), shape, name));
        continue;
      }
      const t = await readTensor(found.byName.get(key)!, key);
      for (const [k, data, s] of splitForLimit(name, t.data, shape, limit)) {
        params.set(k, ownedVariable(data, s, k));
      }
    }
  } catch (e) {
    for (const v of params.values()) v.dispose();
    throw e;
  }
  return { cfg, params, fresh: [...report.fresh, ...report.replaced.map((r) => r.split(" ")[0])], report };
}

/** Disposes every variable of a parameter map. */
export function disposeParams(params: Params): void {
  for (const v of params.values()) v.dispose();
  params.clear();
}

/**
 * Overwrites every parameter with a fresh initialisation from `seed`, as {@link initParams}
 * would draw it for the same shape: what a model without pretraining starts from.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { reinitialise } from "./checkpoint.ts";
 * import { initParams } from "./encoder.ts";
 * import { namedConfig } from "./config.ts";
 * await tf.setBackend("cpu");
 * const cfg = namedConfig("tiny", 100), heads = { mlm: false, numLabels: 3 };
 * const params = initParams(cfg, heads, 1);
 * reinitialise(params, cfg, heads, 2);
 * const want = initParams(cfg, heads, 2).get("classifier.dense.weight")!.dataSync();
 * if (params.get("classifier.dense.weight")!.dataSync()[0] !== want[0]) throw new Error("not re-drawn");
 * ```
 */
export function reinitialise(params: Params, cfg: EncoderConfig, heads: Heads, seed: number): void {
  const fresh = initParams(cfg, heads, seed);
  try {
    for (const [name, v] of fresh) {
      const target = params.get(name);
      if (!target) throw new Error(`reinitialise: no parameter '${name}' to overwrite`);
      target.assign(v);
    }
  } finally {
    for (const v of fresh.values()) v.dispose();
  }
}
