/**
 * Built-in stage types: name -> module. Modules are imported on demand and import their
 * heavy libraries (tfjs, onnxruntime) only inside `run`, so planning stays fast.
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";

const here = (name: string) => fromFileUrl(new URL(`./${name}`, import.meta.url));

/** Built-in stage type names and their module files. */
export const builtinStageTypes: Record<string, string> = {
  "corpus/udhr": here("corpus_udhr.ts"),
  "corpus/sib200": here("corpus_sib200.ts"),
  "corpus/english-text": here("corpus_english_text.ts"),
  "corpus/cldr": here("corpus_cldr.ts"),
  "tokenizer/train": here("tokenizer_train.ts"),
  "tokenizer/load": here("tokenizer_load.ts"),
  "data/udhr-articles": here("data_udhr_articles.ts"),
  "data/sib200": here("data_sib200.ts"),
  "data/xnli": here("data_xnli.ts"),
  "data/pawsx": here("data_pawsx.ts"),
  "model/pretrain": here("model_pretrain.ts"),
  "model/load": here("model_load.ts"),
  "train/finetune": here("train_finetune.ts"),
  "model/export-onnx": here("model_export_onnx.ts"),
  "eval/classify": here("eval_classify.ts"),
  "eval/retrieval": here("eval_retrieval.ts"),
  "eval/char-ngram": here("eval_char_ngram.ts"),
  "eval/bag-of-subwords": here("eval_bag_of_subwords.ts"),
  "eval/layer-probe": here("eval_layer_probe.ts"),
  "analysis/compare": here("analysis_compare.ts"),
  "analysis/recipe": here("analysis_recipe.ts"),
};
