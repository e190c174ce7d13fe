/**
 * Checkpoints in Hugging Face layout: `config.json` + `model.safetensors`, parameters by HF
 * name. Loading checks every expected tensor's presence and shape and names the offender.
 * A word embedding held as row blocks is saved whole and split again on load when the
 * active device needs it.
 * @module
 */
import { type EncoderConfig, fromHfConfig, toHfConfig } from "./config.ts";
import { type Heads, initParams, initValue, ownedVariable, type Params, paramShapes } from "./encoder.ts";
import { mulberry32 } from "../kernels/random.ts";
import { UserInputError } from "../pipeline/errors.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
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

/**
 * Loads a checkpoint for the given heads. Encoder tensors must all be present with the
 * right shapes; head tensors absent from the file (a new classification head on a
 * pretrained encoder) are initialised from `seed`. `XLMRobertaModel` files without the
 * `roberta.` prefix load too.
 *
 * @example
 * ```ts ignore
 * const { cfg, params } = await loadCheckpoint("ckpt", { mlm: false, numLabels: 6 }, 1);
 * ```
 */
export async function loadCheckpoint(
  dir: string,
  heads: Heads,
  seed: number,
  cfgOverride?: Partial<EncoderConfig>,
): Promise<{ cfg: EncoderConfig; params: Params; fresh: string[] }> {
  const cfg = { ...(await readConfig(dir)), ...cfgOverride };
  const file = `${dir}/model.safetensors`;
  const tensors = await readSafetensors(file);
  const rand = mulberry32(seed);
  const limit = bindingLimit();
  const params: Params = new Map();
  const fresh: string[] = [];
  try {
    for (const [name, shape] of paramShapes(cfg, heads)) {
      const t = tensors.get(name) ?? tensors.get(name.replace(/^roberta\./, ""));
      const isHead = name.startsWith("classifier.") || name.startsWith("lm_head.");
      if (!t) {
        if (!isHead) {
          throw new UserInputError(`${file}: missing tensor '${name}' (expected shape [${shape}])`);
        }
        params.set(name, ownedVariable(initValue(name, shape, rand), shape, name));
        fresh.push(name);
        continue;
      }
      if (t.shape.join(",") !== shape.join(",")) {
        throw new UserInputError(`${file}: tensor '${name}' has shape [${t.shape}], expected [${shape}]`);
      }
      for (const [key, data, s] of splitForLimit(name, t.data, shape, limit)) {
        params.set(key, ownedVariable(data, s, key));
      }
    }
  } catch (e) {
    for (const v of params.values()) v.dispose();
    throw e;
  }
  return { cfg, params, fresh };
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
 * import { reinitialise } from "./checkpoint.ts";
 * import { initParams } from "./encoder.ts";
 * import { namedConfig } from "./config.ts";
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
