/**
 * The `README.md` model card written beside an exported fine-tune, in the form the Hugging
 * Face Hub reads (YAML metadata, then Markdown): the method and its parameters, the data,
 * the run's metrics per language when an evaluation of it is cached, and the provenance
 * digest that ties the folder to the run.
 * @module
 */
import { stringify } from "yaml";
import type { EvalRow } from "./evaluate.ts";

/** What the card says. */
export interface CardFacts {
  pipeline: string;
  instance: string;
  params: Record<string, unknown>;
  /** The task stage (type and params) and the base checkpoint stage. */
  data?: { type: string; params: Record<string, unknown> };
  base?: { type: string; params: Record<string, unknown> };
  labels: string[];
  metrics: EvalRow[] | null;
  /** sha256 of the exported `provenance.json`. */
  provenanceSha256: string;
}

const pct = (x: number | undefined) => (x === undefined ? "" : (100 * x).toFixed(1));

/**
 * The model card's text.
 *
 * @example
 * ```ts
 * import { modelCard } from "./model_card.ts";
 * const md = modelCard({
 *   pipeline: "sib200", instance: "finetune[method=graddrop,seed=1]", params: { method: "graddrop", lr: 0.001 },
 *   labels: ["a", "b"], metrics: null, provenanceSha256: "ab12",
 * });
 * if (!md.startsWith("---\n") || !md.includes("ab12")) throw new Error(md);
 * ```
 */
export function modelCard(f: CardFacts): string {
  const langs = f.metrics?.map((r) => r.language.split("_")[0]) ?? [];
  const meta: Record<string, unknown> = {
    library_name: "transformers",
    pipeline_tag: "text-classification",
    tags: ["xlm-roberta", "graddrop", String(f.params.method ?? "")],
    ...(langs.length ? { language: [...new Set(langs)] } : {}),
    ...(f.data?.type === "data/sib200" ? { datasets: ["Davlan/sib200"] } : {}),
  };
  const method = Object.entries(f.params).filter(([k]) => k !== "backend")
    .map(([k, v]) => `| ${k} | ${typeof v === "object" ? JSON.stringify(v) : String(v)} |`);
  const lines = [
    "---",
    stringify(meta).trimEnd(),
    "---",
    "",
    `# ${f.instance} (${f.pipeline})`,
    "",
    `An XLM-R-architecture sequence classifier (${f.labels.length} labels: ${
      f.labels.join(", ")
    }), fine-tuned`,
    `by the graddrop pipeline with method \`${f.params.method}\`. It loads with`,
    "`AutoModelForSequenceClassification.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`.",
    "",
    "## Method and parameters",
    "",
    "| parameter | value |",
    "| --- | --- |",
    ...method,
    "",
    "## Data",
    "",
    f.data
      ? `\`${f.data.type}\` with ${
        Object.entries(f.data.params).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")
      }.`
      : "Not recorded.",
    f.base ? `Base checkpoint: \`${f.base.type}\` ${JSON.stringify(f.base.params)}.` : "",
    "",
    "## Metrics per language",
    "",
  ];
  if (f.metrics?.length) {
    lines.push(
      "| language | split | scored on | n | accuracy % | macro-F1 % | retrieval % |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...f.metrics.map((r) =>
        `| ${r.language} | ${r.split} | ${r.scored_on} | ${r.n} | ${pct(r.accuracy)} | ${pct(r.f1)} | ${
          pct(r.retrieval)
        } |`
      ),
    );
  } else {
    lines.push(
      "No evaluation of this run was cached when it was exported (run the pipeline's evaluate stage).",
    );
  }
  lines.push(
    "",
    "## Provenance",
    "",
    `\`provenance.json\` (sha256 \`${f.provenanceSha256}\`) lists the pipeline, every upstream stage with its`,
    "parameters, the code fingerprint and each file's sha256; `model/load` checks them when this folder is loaded.",
    "",
  );
  return lines.join("\n");
}

/** A `tokenizer_config.json` that lets `AutoTokenizer` load the folder's `tokenizer.json` as XLM-R's. */
export const TOKENIZER_CONFIG = {
  tokenizer_class: "XLMRobertaTokenizerFast",
  bos_token: "<s>",
  eos_token: "</s>",
  sep_token: "</s>",
  cls_token: "<s>",
  unk_token: "<unk>",
  pad_token: "<pad>",
  mask_token: "<mask>",
  model_max_length: 512,
};
