/**
 * The comparison across methods, seeds and languages: summaries, gains over a baseline with
 * a paired permutation test, wins/ties/losses, and how gains relate to resource covariates.
 * @module
 */
import { mean, pairedPermutation, spearman, std } from "./stats.ts";
import type { TaskInfo } from "../data/task.ts";

/** One scored (method, seed, language). */
export interface MetricRow {
  method: string;
  seed: number;
  language: string;
  split: "source" | "test";
  accuracy: number;
  f1: number;
}

/** Options for {@link compare}. */
export interface CompareOptions {
  baseline: string;
  resamples: number;
  seed: number;
  /** |gain| below this counts as a tie. */
  tie: number;
}

/** Computes everything the report shows. */
export function compare(rows: MetricRow[], task: TaskInfo, o: CompareOptions) {
  const methods = [...new Set(rows.map((r) => r.method))];
  const languages = [...new Set(rows.map((r) => r.language))].sort();
  const at = (m: string, l: string) => rows.filter((r) => r.method === m && r.language === l);
  const summary = methods.map((m) => {
    const seeds = [...new Set(rows.filter((r) => r.method === m).map((r) => r.seed))];
    const perSeed = (split: string) =>
      seeds.map((s) =>
        mean(rows.filter((r) => r.method === m && r.seed === s && r.split === split).map((r) => r.accuracy))
      );
    const src = perSeed("source"), zs = perSeed("test");
    return {
      method: m,
      seeds: seeds.length,
      source_mean: mean(src),
      source_std: std(src),
      zero_shot_mean: mean(zs),
      zero_shot_std: std(zs),
      zero_shot_f1: mean(rows.filter((r) => r.method === m && r.split === "test").map((r) => r.f1)),
    };
  });
  const perLanguage = languages.map((l) => ({
    language: l,
    split: rows.find((r) => r.language === l)!.split,
    ...Object.fromEntries(
      methods.map((m) => [m, {
        mean: mean(at(m, l).map((r) => r.accuracy)),
        std: std(at(m, l).map((r) => r.accuracy)),
      }]),
    ),
  }));
  const covariates = ["pretrain_share", "fertility", "unk_rate", "resource_size"] as const;
  const vsBaseline = methods.filter((m) => m !== o.baseline && m !== "majority").map((m) => {
    const diffs: number[] = [];
    for (const r of rows.filter((x) => x.method === m && x.split === "test")) {
      const b = rows.find((x) => x.method === o.baseline && x.seed === r.seed && x.language === r.language);
      if (b) diffs.push(r.accuracy - b.accuracy);
    }
    const gains = languages.filter((l) => rows.some((r) => r.language === l && r.split === "test")).map((
      l,
    ) => ({
      language: l,
      gain: mean(at(m, l).map((r) => r.accuracy)) - mean(at(o.baseline, l).map((r) => r.accuracy)),
    }));
    const test = pairedPermutation(diffs, o.resamples, o.seed);
    const correlations = Object.fromEntries(covariates.map((c) => {
      const pts = gains.map((g) => [task.languages[g.language]?.[c], g.gain] as const).filter((p) =>
        typeof p[0] === "number"
      );
      return [c, spearman(pts.map((p) => p[0] as number), pts.map((p) => p[1]), o.resamples, o.seed)];
    }));
    const byScript: Record<string, number[]> = {};
    for (const g of gains) (byScript[task.languages[g.language]?.script ?? "Other"] ??= []).push(g.gain);
    return {
      method: m,
      baseline: o.baseline,
      mean_gain: test.mean,
      p_value: test.p,
      resamples: test.resamples,
      pairs: diffs.length,
      wins: gains.filter((g) => g.gain > o.tie).length,
      ties: gains.filter((g) => Math.abs(g.gain) <= o.tie).length,
      losses: gains.filter((g) => g.gain < -o.tie).length,
      gains: gains.sort((a, b) => b.gain - a.gain),
      correlations,
      by_script: Object.fromEntries(
        Object.entries(byScript).map(([s, g]) => [s, { n: g.length, mean_gain: mean(g) }]),
      ),
    };
  });
  return { methods, languages, summary, per_language: perLanguage, vs_baseline: vsBaseline };
}

/** The analysis object {@link compare} returns. */
export type Comparison = ReturnType<typeof compare>;
