/**
 * Retrieval over every row of one shard: the English <-> X retrieval of `eval/retrieval`, on
 * text other than the test split. On SIB-200's dev sentences (the task's `unlabelled` shard)
 * it measures what the checkpoint aligns on sentences its pretraining read, beside the test
 * sentences it never read: the gap between the two is how much of its alignment is
 * memorised pairs rather than translation.
 * @module
 */
import type { Shard } from "../data/shards.ts";
import type { Inference } from "./classify.ts";
import { retrievalByLanguage, type RetrievalScore } from "./retrieval.ts";

/**
 * Retrieval of every language of `shard` against `pivot`, items matched by the shard's item
 * ids, from the exported encoder's pass over every row of it (`infer` in row order; the pass
 * evaluation already made for centring, `evaluateExport`'s `unlabelled`).
 *
 * @example
 * ```ts ignore
 * const { task, unlabelled } = await evaluateExport(exportDir, taskDir, "auto", ctx.progress);
 * const byLanguage = shardRetrieval(unlabelled!.shard, unlabelled!.inference, task.train_languages[0]);
 * ```
 */
export function shardRetrieval(shard: Shard, pass: Inference, pivot: string): Map<string, RetrievalScore> {
  const langs = Array.from(shard.langs, (l) => shard.index.languages[l]);
  return retrievalByLanguage(pass.pooled, pass.hidden, shard.items, langs, pivot);
}
