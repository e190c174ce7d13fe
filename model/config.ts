/**
 * XLM-R / RoBERTa encoder configurations, in Hugging Face `config.json` field names.
 * @module
 */
import { UserInputError } from "../pipeline/errors.ts";

/** Encoder shape and special ids, as in HF's `XLMRobertaConfig`. */
export interface EncoderConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  layer_norm_eps: number;
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  /** Classification labels; 0 when the checkpoint has no classification head. */
  num_labels?: number;
  /**
   * What the classification head reads: `cls`, RoBERTa's `<s>` position (the default, and the
   * only one Hugging Face's XLM-R head knows), `mean`, the mean over non-pad positions, or
   * `max`, their elementwise max.
   */
  classifier_pooling?: Pooling;
}

/** What a classification head reads from the hidden states. */
export type Pooling = "cls" | "mean" | "max";

type Shape = Omit<EncoderConfig, "vocab_size" | "num_labels">;

const common = {
  type_vocab_size: 1,
  layer_norm_eps: 1e-5,
  pad_token_id: 1,
  bos_token_id: 0,
  eos_token_id: 2,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
};

/** Named shapes: `tiny` for tests, `small` for the demo, `base`/`large` as XLM-R's. */
export const NAMED_CONFIGS: Record<"tiny" | "small" | "base" | "large", Shape> = {
  tiny: {
    ...common,
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 64,
    max_position_embeddings: 130,
  },
  small: {
    ...common,
    hidden_size: 64,
    num_hidden_layers: 4,
    num_attention_heads: 2,
    intermediate_size: 128,
    max_position_embeddings: 130,
  },
  base: {
    ...common,
    hidden_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    intermediate_size: 3072,
    max_position_embeddings: 514,
  },
  large: {
    ...common,
    hidden_size: 1024,
    num_hidden_layers: 24,
    num_attention_heads: 16,
    intermediate_size: 4096,
    max_position_embeddings: 514,
  },
};

/** A full config for a named shape and vocabulary size. */
export function namedConfig(name: keyof typeof NAMED_CONFIGS, vocabSize: number): EncoderConfig {
  return { ...NAMED_CONFIGS[name], vocab_size: vocabSize };
}

/** The `config.json` object HF tools expect for this config. */
export function toHfConfig(cfg: EncoderConfig, labels?: string[]): Record<string, unknown> {
  const base: Record<string, unknown> = {
    architectures: [labels ? "XLMRobertaForSequenceClassification" : "XLMRobertaForMaskedLM"],
    model_type: "xlm-roberta",
    hidden_act: "gelu",
    initializer_range: 0.02,
    position_embedding_type: "absolute",
    ...cfg,
  };
  delete base.num_labels;
  if (labels) {
    base.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
    base.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  }
  return base;
}

/** Reads an HF `config.json` object, checking the fields the encoder needs. */
export function fromHfConfig(obj: Record<string, unknown>, file = "config.json"): EncoderConfig {
  const need = [
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
  ];
  for (const k of need) {
    if (typeof obj[k] !== "number") throw new UserInputError(`${file}: field '${k}' must be a number`);
  }
  const id2label = obj.id2label as Record<string, string> | undefined;
  const pooling = obj.classifier_pooling;
  if (pooling !== undefined && pooling !== "cls" && pooling !== "mean" && pooling !== "max") {
    throw new UserInputError(`${file}: field 'classifier_pooling' must be "cls", "mean" or "max"`);
  }
  return {
    vocab_size: obj.vocab_size as number,
    hidden_size: obj.hidden_size as number,
    num_hidden_layers: obj.num_hidden_layers as number,
    num_attention_heads: obj.num_attention_heads as number,
    intermediate_size: obj.intermediate_size as number,
    max_position_embeddings: obj.max_position_embeddings as number,
    type_vocab_size: (obj.type_vocab_size as number) ?? 1,
    layer_norm_eps: (obj.layer_norm_eps as number) ?? 1e-5,
    pad_token_id: (obj.pad_token_id as number) ?? 1,
    bos_token_id: (obj.bos_token_id as number) ?? 0,
    eos_token_id: (obj.eos_token_id as number) ?? 2,
    hidden_dropout_prob: (obj.hidden_dropout_prob as number) ?? 0.1,
    attention_probs_dropout_prob: (obj.attention_probs_dropout_prob as number) ?? 0.1,
    num_labels: id2label ? Object.keys(id2label).length : undefined,
    ...(pooling ? { classifier_pooling: pooling } : {}),
  };
}
