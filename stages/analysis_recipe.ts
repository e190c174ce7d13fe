/**
 * `analysis/recipe`: fan-in over a grid of fine-tunes; per method, the grid point with the best
 * mean source-language dev accuracy (at the end of training) over seeds. Writes `recipe.json`
 * and `recipe.md`; the default pipeline's settings are copied from it (see README, "Recipe").
 * @module
 */
import { z } from "zod";
import { inputsOfType, type StageType } from "../pipeline/stage.ts";

const schema = z.strictObject({});

/** Writes `recipe.json` (grid, per-method choice and every point's dev scores) and `recipe.md`. */
export const stage: StageType<typeof schema> = {
  type: "analysis/recipe",
  description: "choose each method's fine-tuning settings on source-language dev accuracy",
  schema,
  publish: ["recipe.json", "recipe.md"],
  async run(ctx) {
    const { chooseRecipe } = await import("../eval/recipe.ts");
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
    const recipe = chooseRecipe(runs);
    await Deno.writeTextFile(
      `${ctx.out}/recipe.json`,
      JSON.stringify({ split: "source-language dev", ...recipe }, null, 1),
    );
    const pct = (x: number) => (100 * x).toFixed(1);
    const lines = [
      "# Recipe chosen on source-language dev accuracy",
      "",
      `Grid: ${Object.entries(recipe.grid).map(([k, v]) => `${k} ∈ {${v.join(", ")}}`).join("; ")}.`,
      "",
      "| method | chosen | dev accuracy (%) | runner-up |",
      "| --- | --- | --- | --- |",
      ...Object.entries(recipe.methods).map(([m, r]) => {
        const fmt = (p: Record<string, unknown>) => Object.entries(p).map(([k, v]) => `${k}=${v}`).join(", ");
        const second = r.points[1];
        return `| ${m} | ${fmt(r.chosen)} | ${pct(r.dev_mean)} | ${
          second ? `${fmt(second.point)}: ${pct(second.dev_mean)}` : "—"
        } |`;
      }),
      "",
    ];
    await Deno.writeTextFile(`${ctx.out}/recipe.md`, lines.join("\n"));
    for (const [m, r] of Object.entries(recipe.methods)) {
      ctx.log(`${m}: ${JSON.stringify(r.chosen)} dev ${pct(r.dev_mean)}%`);
    }
  },
};
