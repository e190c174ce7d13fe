import assert from "node:assert/strict";
import { loadConfig } from "../pipeline/config.ts";
import { makePlan } from "../pipeline/plan.ts";
import { builtinStageTypes } from "../stages/registry.ts";
import { ROOT } from "./helpers.ts";

/** Methods the recipe grid did not tune, and whose recipe they take (README, "The recipe"). */
const TAKES = {
  "random-init": "full",
  "frozen": "full",
  "childtuning-f": "full",
  "childtuning-d": "full",
} as Record<string, string>;

for (const pipeline of ["sib200", "sib200-full"]) {
  Deno.test(`${pipeline}'s fine-tunes use the recipe chosen on dev (recipes/sib200.json, then sib200_epochs.json)`, async () => {
    const recipe = JSON.parse(await Deno.readTextFile(`${ROOT}/recipes/sib200.json`));
    const epochs = JSON.parse(await Deno.readTextFile(`${ROOT}/recipes/sib200_epochs.json`));
    for (const r of [recipe, epochs]) {
      assert.equal(r.split, "source-language dev", "the recipe was chosen on dev, never on test");
    }
    const cfg = await loadConfig(`${ROOT}/pipelines.yaml`);
    const plan = await makePlan(cfg, pipeline, builtinStageTypes);
    const finetunes = plan.instances.filter((i) => i.type === "train/finetune");
    assert.ok(finetunes.length > 0);
    for (const ft of finetunes) {
      const method = String(ft.params.method);
      const as = TAKES[method] ?? method;
      const chosen = recipe.methods[as]?.chosen;
      assert.ok(chosen, `${ft.id}: method ${method} has no recipe`);
      // The epochs chosen again with the head fit override the grid's, for the methods scored.
      const merged = { ...chosen, ...epochs.methods[as]?.chosen };
      for (const [k, v] of Object.entries(merged)) assert.equal(ft.params[k], v, `${ft.id}: ${k}`);
    }
  });
}

Deno.test("the report's recipe paragraph states what recipes/sib200.json chose", async () => {
  const recipe = JSON.parse(await Deno.readTextFile(`${ROOT}/recipes/sib200.json`));
  const cfg = await loadConfig(`${ROOT}/pipelines.yaml`);
  const plan = await makePlan(cfg, "sib200", builtinStageTypes);
  const stated = plan.instances.find((i) => i.type === "analysis/compare")!.params.recipe as {
    chosen: Record<string, Record<string, unknown>>;
  };
  for (
    const [method, r] of Object.entries(recipe.methods as Record<string, { chosen: Record<string, unknown> }>)
  ) {
    assert.deepEqual(stated.chosen[method], r.chosen, method);
  }
});

Deno.test("README's recipe table states the dev accuracies recipes/sib200.json holds", async () => {
  const recipe = JSON.parse(await Deno.readTextFile(`${ROOT}/recipes/sib200.json`));
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const section = readme.slice(readme.indexOf("## The recipe, chosen on English dev"));
  const table = section.slice(0, section.indexOf("\n## "));
  for (const [method, r] of Object.entries(recipe.methods as Record<string, { dev_mean: number }>)) {
    const row = table.split("\n").find((l) => l.startsWith(`| \`${method}\``));
    assert.ok(row, `README's recipe table has a row for ${method}`);
    assert.ok(row.includes(`${(100 * r.dev_mean).toFixed(1)}%`), `${method}: ${row}`);
  }
});

Deno.test("LP-FT's head fit is what recipes/sib200_lpft.json chose on dev, for every method alike", async () => {
  const lpft = JSON.parse(await Deno.readTextFile(`${ROOT}/recipes/sib200_lpft.json`));
  assert.equal(lpft.split, "source-language dev");
  const { head_fit_steps: steps, lr } = lpft.methods.full.chosen;
  const recipe = JSON.parse(await Deno.readTextFile(`${ROOT}/recipes/sib200.json`));
  assert.equal(lr, recipe.methods.full.chosen.lr, "chosen at full's own learning rate");
  const cfg = await loadConfig(`${ROOT}/pipelines.yaml`);
  for (const pipeline of ["sib200", "sib200-full"]) {
    const plan = await makePlan(cfg, pipeline, builtinStageTypes);
    for (const ft of plan.instances.filter((i) => i.type === "train/finetune")) {
      assert.equal(ft.params.head_fit_steps, steps, ft.id);
    }
  }
  const plan = await makePlan(cfg, "sib200", builtinStageTypes);
  const stated = plan.instances.find((i) => i.type === "analysis/compare")!.params.recipe as {
    then: { pipeline: string; grid: Record<string, unknown[]>; chosen: Record<string, unknown> }[];
  };
  assert.deepEqual(stated.then[0].chosen, lpft.methods.full.chosen);
  for (const [k, vs] of Object.entries(lpft.grid as Record<string, unknown[]>)) {
    assert.deepEqual([...stated.then[0].grid[k]].sort(), [...vs].sort(), k);
  }
});

Deno.test("the report states the epochs recipes/sib200_epochs.json chose with the head fit", async () => {
  const epochs = JSON.parse(await Deno.readTextFile(`${ROOT}/recipes/sib200_epochs.json`));
  const cfg = await loadConfig(`${ROOT}/pipelines.yaml`);
  const plan = await makePlan(cfg, "sib200", builtinStageTypes);
  const stated = plan.instances.find((i) => i.type === "analysis/compare")!.params.recipe as {
    then: { pipeline: string; grid: Record<string, unknown[]>; chosen: Record<string, unknown> }[];
  };
  const said = stated.then.find((t) => t.pipeline === "recipe-epochs");
  assert.ok(said, "the report names the recipe-epochs pipeline");
  assert.deepEqual(said.grid, epochs.grid);
  // One statement for every method: each method's choice agrees with it on the axes it was offered.
  for (
    const [method, r] of Object.entries(epochs.methods as Record<string, { chosen: Record<string, unknown> }>)
  ) {
    for (const [k, v] of Object.entries(r.chosen)) assert.equal(said.chosen[k], v, `${method}: ${k}`);
  }
  assert.deepEqual(Object.keys(said.chosen).sort(), Object.keys(epochs.grid).sort(), "every axis stated");
});
