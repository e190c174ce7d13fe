/**
 * Retrieval over every row of one shard: the English <-> X retrieval of `eval/retrieval`, on
 * text other than the test split. On SIB-200's dev sentences (the task's `unlabelled` shard)
 * it measures what the checkpoint aligns on sentences its pretraining read, beside the test
 * sentences it never read: the gap between the two is how much of its alignment is
 * memorised pairs rather than translation.
 * @module
 */
import type { Shard } from "../data/shards.ts";
import { infer, type Session } from "./classify.ts";
import { retrievalByLanguage, type RetrievalScore } from "./retrieval.ts";

/**
 * Retrieval of every language of `shard` against `pivot`, items matched by the shard's item
 * ids, from the exported encoder's pooled vectors.
 *
 * @example
 * ```ts ignore
 * const byLanguage = await shardRetrieval(sess, await readShard(taskDir, "unlabelled"), "eng_Latn");
 * ```
 */
export async function shardRetrieval(
  sess: Session,
  shard: Shard,
  pivot: string,
): Promise<Map<string, RetrievalScore>> {
  const rows = Array.from({ length: shard.index.n }, (_, i) => i);
  const out = await infer(sess, shard, rows);
  const langs = rows.map((r) => shard.index.languages[shard.langs[r]]);
  return retrievalByLanguage(out.pooled, out.hidden, shard.items, langs, pivot);
}
