/**
 * Choosing a fine-tuning recipe on dev: each grid point's fine-tunes are scored by their
 * source-language dev accuracy at the end of training, averaged over seeds. Each method keeps
 * its best point, or under the one-standard-error rule (Breiman et al. 1984) the cheapest point
 * whose dev accuracy is within one binomial standard error of the best: on a dev set of 99
 * sentences that error is about 5 points, and a point better by less than that is not known to
 * be better. Test data is never read.
 * @module
 */

/** One fine-tune of the grid: its method, seed, grid values and final dev accuracy. */
export interface RecipeRun {
  method: string;
  seed: number;
  point: Record<string, string | number | boolean>;
  dev: number;
}

/** A grid point's score for one method. */
export interface PointScore {
  point: Record<string, string | number | boolean>;
  dev_mean: number;
  dev_by_seed: Record<string, number>;
}

/** What was chosen for one method, and every point it was chosen from (best first). */
export interface MethodRecipe {
  chosen: Record<string, string | number | boolean>;
  dev_mean: number;
  /** The best point's dev accuracy, and how far below it a point may be and still count (0: best only). */
  best_dev: number;
  tolerance: number;
  points: PointScore[];
}

/** How a method's point is picked: the best, or the cheapest within one standard error of it. */
export interface RecipeRule {
  rule: "best" | "one-se";
  /** Dev items each run is scored on (for the standard error). */
  devItems: number;
  /** The grid axis whose smaller values cost less (e.g. epochs). */
  cost: string;
}

/** The chosen recipe: the grid's axes and values, and per method its best point. */
export interface Recipe {
  grid: Record<string, (string | number | boolean)[]>;
  methods: Record<string, MethodRecipe>;
}

const key = (point: Record<string, unknown>) => JSON.stringify(Object.entries(point).sort());

/** The binomial standard error of an accuracy `p` over `n` items. */
const binomialSE = (p: number, n: number) => Math.sqrt(p * (1 - p) / Math.max(1, n));

/**
 * Picks each method's grid point by mean dev accuracy over seeds: the best, or with `one-se`
 * the cheapest (smallest value of the `cost` axis) within one standard error of the best, and
 * the best among those. Ties go to the point listed first in the grid's own order (axis values
 * as the pipeline lists them), so a tie is settled by the declaration, not by chance.
 *
 * @example
 * ```ts
 * import { chooseRecipe } from "./recipe.ts";
 * const r = chooseRecipe([
 *   { method: "full", seed: 1, point: { lr: 0.001 }, dev: 0.4 },
 *   { method: "full", seed: 1, point: { lr: 0.003 }, dev: 0.5 },
 * ]);
 * if (r.methods.full.chosen.lr !== 0.003) throw new Error("picked the worse point");
 * ```
 */
export function chooseRecipe(
  runs: RecipeRun[],
  rule: RecipeRule = { rule: "best", devItems: 1, cost: "epochs" },
): Recipe {
  const grid: Record<string, (string | number | boolean)[]> = {};
  for (const r of runs) {
    for (const [k, v] of Object.entries(r.point)) {
      grid[k] ??= [];
      if (!grid[k].includes(v)) grid[k].push(v);
    }
  }
  const order = (p: Record<string, string | number | boolean>) =>
    Object.keys(grid).map((k) => grid[k].indexOf(p[k]));
  const earlier = (a: PointScore, b: PointScore) => {
    const [x, y] = [order(a.point), order(b.point)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  };
  const methods: Record<string, MethodRecipe> = {};
  for (const method of [...new Set(runs.map((r) => r.method))]) {
    const byPoint = new Map<string, PointScore>();
    for (const r of runs.filter((r) => r.method === method)) {
      const k = key(r.point);
      const s = byPoint.get(k) ?? { point: r.point, dev_mean: 0, dev_by_seed: {} };
      s.dev_by_seed[String(r.seed)] = r.dev;
      byPoint.set(k, s);
    }
    const points = [...byPoint.values()].map((s) => {
      const devs = Object.values(s.dev_by_seed);
      return { ...s, dev_mean: devs.reduce((a, b) => a + b, 0) / devs.length };
    }).sort((a, b) => b.dev_mean - a.dev_mean || earlier(a, b));
    const best = points[0].dev_mean;
    const tolerance = rule.rule === "one-se" ? binomialSE(best, rule.devItems) : 0;
    const cost = (p: PointScore) => Number(p.point[rule.cost] ?? 0);
    // `points` is sorted best first, so the first of the cheapest candidates is the best of them.
    const within = points.filter((p) => p.dev_mean >= best - tolerance - 1e-12);
    const cheapest = Math.min(...within.map(cost));
    const chosen = within.find((p) => cost(p) === cheapest)!;
    methods[method] = { chosen: chosen.point, dev_mean: chosen.dev_mean, best_dev: best, tolerance, points };
  }
  return { grid, methods };
}

/**
 * `recipe.md`: per method the chosen point and the best one (with the binomial standard error
 * of the best, whatever the rule: under `best` the tolerance is 0, not the error), then every
 * point the method ran, best first, with its dev accuracy per seed.
 *
 * @example
 * ```ts
 * import { chooseRecipe, recipeMarkdown } from "./recipe.ts";
 * const rule = { rule: "best" as const, devItems: 99, cost: "epochs" };
 * const r = chooseRecipe([{ method: "full", seed: 1, point: { lr: 0.001 }, dev: 0.4 }], rule);
 * if (!recipeMarkdown(r, { rule, languages: ["eng_Latn"] }).includes("40.0 ± 4.9")) throw new Error("no SE");
 * ```
 */
export function recipeMarkdown(recipe: Recipe, o: { rule: RecipeRule; languages: string[] }): string {
  const pct = (x: number) => (100 * x).toFixed(1);
  const fmt = (p: Record<string, unknown>) => Object.entries(p).map(([k, v]) => `${k}=${v}`).join(", ");
  const { rule, devItems, cost } = o.rule;
  const lines = [
    "# Recipe chosen on source-language dev accuracy",
    "",
    `Grid: ${Object.entries(recipe.grid).map(([k, v]) => `${k} ∈ {${v.join(", ")}}`).join("; ")}. ` +
    `Scored on ${devItems} dev items of ${o.languages.join(", ")}, at the end of training. ` +
    (rule === "one-se"
      ? `Rule: the point with the smallest ${cost} within one binomial standard error of the best.`
      : "Rule: the best point."),
    "",
    "| method | chosen | its dev accuracy (%) | best point | best dev accuracy (%) ± one SE |",
    "| --- | --- | --- | --- | --- |",
    ...Object.entries(recipe.methods).map(([m, r]) => {
      const se = pct(binomialSE(r.best_dev, devItems));
      return `| ${m} | ${fmt(r.chosen)} | ${pct(r.dev_mean)} | ${fmt(r.points[0].point)} | ${
        pct(r.best_dev)
      } ± ${se} |`;
    }),
  ];
  for (const [m, r] of Object.entries(recipe.methods)) {
    lines.push(
      "",
      `## ${m}: every point, best first`,
      "",
      "| point | dev accuracy (%), mean | by seed |",
      "| --- | --- | --- |",
    );
    for (const p of r.points) {
      const bySeed = Object.entries(p.dev_by_seed).map(([s, d]) => `${s}: ${pct(d)}`).join(", ");
      lines.push(`| ${fmt(p.point)} | ${pct(p.dev_mean)} | ${bySeed} |`);
    }
  }
  return lines.join("\n") + "\n";
}
