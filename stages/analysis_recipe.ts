/**
 * `analysis/recipe`: fan-in over a grid of fine-tunes and their task; per method, the grid point
 * chosen on mean source-language dev accuracy (at the end of training) over seeds, by the
 * rule in `eval/recipe.ts`. Writes `recipe.json` and `recipe.md`; the default pipeline's
 * settings are copied from it (see README, "Recipe").
 * @module
 */
import { z } from "zod";
import { inputOfType, inputsOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({
  /** `best`, or `one-se`: the cheapest point within one binomial standard error of the best. */
  rule: z.enum(["best", "one-se"]).default("one-se"),
  /** The grid axis whose smaller values cost less. */
  cost: z.string().default("epochs"),
});

/** Writes `recipe.json` (grid, per-method choice and every point's dev scores) and `recipe.md`. */
export const stage: StageType<typeof schema> = {
  type: "analysis/recipe",
  description: "choose each method's fine-tuning settings on source-language dev accuracy",
  schema,
  publish: ["recipe.json", "recipe.md"],
  async run(ctx) {
    const { chooseRecipe, recipeMarkdown } = await import("../eval/recipe.ts");
    const { readTask } = await import("../data/task.ts");
    const taskDir = inputOfType(ctx, ["data/"]).dir;
    const task = await readTask(taskDir);
    const devItems = task.train_languages.reduce((a, l) => a + (task.languages[l]?.examples.dev ?? 0), 0);
    const runs = [];
    for (const ft of inputsOfType(ctx, ["train/finetune"])) {
      const file = `${ft.dir}/dev_metrics.json`;
      const dev = JSON.parse(await Deno.readTextFile(file)).dev_accuracy as number[];
      if (!Array.isArray(dev) || dev.length === 0) throw new Error(`${file}: no dev_accuracy`);
      const point = Object.fromEntries(
        Object.entries(ft.matrix).filter(([k]) => k !== "method" && k !== "seed"),
      );
      runs.push({
        method: String(ft.matrix.method ?? ft.params.method),
        seed: Number(ft.matrix.seed ?? ft.params.seed),
        point,
        dev: dev[dev.length - 1],
      });
    }
    if (runs.length === 0) throw new Error("analysis/recipe: no train/finetune inputs");
    const rule = { rule: ctx.params.rule, devItems, cost: ctx.params.cost };
    const recipe = chooseRecipe(runs, rule);
    await Deno.writeTextFile(
      `${ctx.out}/recipe.json`,
      JSON.stringify(
        {
          split: "source-language dev",
          dev_items: devItems,
          rule: ctx.params.rule,
          cost: ctx.params.cost,
          ...recipe,
        },
        null,
        1,
      ),
    );
    await Deno.writeTextFile(
      `${ctx.out}/recipe.md`,
      recipeMarkdown(recipe, { rule, languages: task.train_languages }),
    );
    for (const [m, r] of Object.entries(recipe.methods)) {
      ctx.log(`${m}: ${JSON.stringify(r.chosen)} dev ${(100 * r.dev_mean).toFixed(1)}%`);
    }
  },
};
