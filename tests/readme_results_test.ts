import assert from "node:assert/strict";
import { readmeResultsCommand, regenerate } from "../eval/readme_results.ts";

Deno.test("README: the results section is exactly what its committed analysis snapshot generates", async () => {
  const { expected, actual, snapshot } = await regenerate("README.md");
  assert.ok(actual.length > 0, "the README has a results section");
  assert.equal(
    actual,
    expected,
    `README.md's results differ from ${snapshot}: run 'deno run -A main.ts readme-results --analysis <analysis.json>'`,
  );
});

async function run(argv: string[]) {
  const err: string[] = [];
  const { log, error } = console;
  console.log = () => {};
  console.error = (...xs: unknown[]) => err.push(xs.join(" "));
  try {
    return { code: await readmeResultsCommand(argv), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("readme-results: writes the snapshot and the section; --check fails once a README number differs", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "graddrop-readme-" });
  try {
    const readme = `${dir}/README.md`;
    Deno.writeTextFileSync(
      readme,
      "# x\n\n<!-- results:begin snapshot=docs/a.json (generated) -->\nold text\n<!-- results:end -->\n\n## rest\n",
    );
    const made = await run([
      "--analysis",
      "docs/sib200_analysis.json",
      "--readme",
      readme,
      "--snapshot",
      "docs/a.json",
    ]);
    assert.equal(made.code, 0, made.err);
    assert.deepEqual(
      JSON.parse(Deno.readTextFileSync(`${dir}/docs/a.json`)),
      JSON.parse(Deno.readTextFileSync("docs/sib200_analysis.json")),
      "the snapshot is the analysis the section was made from",
    );
    const text = Deno.readTextFileSync(readme);
    assert.ok(!text.includes("old text") && text.endsWith("<!-- results:end -->\n\n## rest\n"));
    assert.match(text, /\*\*graddrop − full\*\*, zero-shot accuracy: [+-]\d+\.\d points, 95% CI/);
    assert.equal((await run(["--check", "--readme", readme])).code, 0);
    // One digit of one stated number changed by hand: the check fails.
    Deno.writeTextFileSync(
      readme,
      text.replace(/p_Holm (\d)\.(\d)/, (_, a, b) => `p_Holm ${a}.${(+b + 1) % 10}`),
    );
    const changed = await run(["--check", "--readme", readme]);
    assert.equal(changed.code, 1);
    assert.match(changed.err, /differs from what docs\/a\.json generates/);
    Deno.writeTextFileSync(readme, "# no markers\n");
    assert.equal((await run(["--analysis", "docs/sib200_analysis.json", "--readme", readme])).code, 2);
    assert.equal((await run(["--analysis", readme, "--readme", readme])).code, 2, "not an analysis");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("readme-results: the section states the recipe, its grid and split, when the analysis has one", async () => {
  const { resultsSection } = await import("../eval/readme_results.ts");
  const a = JSON.parse(Deno.readTextFileSync("docs/sib200_analysis.json"));
  a.recipe = {
    pipeline: "recipe",
    split: "English dev",
    grid: { epochs: [3, 6] },
    chosen: { full: { epochs: 6 } },
  };
  assert.ok(
    resultsSection(a, "x.json").includes(
      "**Recipe:** chosen by the `recipe` pipeline on English dev from epochs ∈ {3, 6}: full epochs 6.",
    ),
  );
});
