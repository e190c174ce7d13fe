/**
 * A cached output leaves the store with its provenance: `export` copies it and records how it
 * was made; loading checks every file against the recorded sha256.
 */
import assert from "node:assert/strict";
import { cli, ROOT, tempDir } from "./helpers.ts";
import { verifyProvenance } from "../pipeline/export_entry.ts";
import { UserInputError } from "../pipeline/errors.ts";

Deno.test("export: a cached output with provenance (pipeline, params, upstream, code, sha256); tampering is refused", async () => {
  const dir = tempDir();
  Deno.mkdirSync(`${dir}/data`);
  Deno.writeTextFileSync(`${dir}/data/x.txt`, "x");
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `stage_types:\n  test/write: ${ROOT}/tests/fixtures/test_stages.ts\npipelines:\n  demo:\n    stages:\n      a:\n        uses: test/write\n        with: {file: data/x.txt}\n      b:\n        uses: test/write\n        needs: [a]\n        with: {text: B}\n`,
  );
  const home = `${dir}/home`, out = `${dir}/shipped`;
  const args = [
    "export",
    "demo",
    "--config",
    `${dir}/pipelines.yaml`,
    "--id",
    "b",
    "--path",
    ".",
    "--to",
    out,
  ];
  const early = await cli(args, home);
  assert.equal(early.code, 1);
  assert.match(early.stderr, /b is not cached: run 'main\.ts run demo --only b' first/);
  assert.equal((await cli(["run", "--config", `${dir}/pipelines.yaml`], home)).code, 0);
  const r = await cli(args, home);
  assert.equal(r.code, 0, r.stderr);
  const prov = JSON.parse(Deno.readTextFileSync(`${out}/provenance.json`));
  assert.equal(prov.pipeline, "demo");
  assert.equal(prov.instance, "b");
  assert.equal(prov.params.text, "B");
  assert.equal(prov.upstream.a.params.file, "data/x.txt", "paths relative to the pipelines file");
  assert.ok(prov.code.hash && prov.code.parts["tests/fixtures/test_stages.ts"]);
  assert.ok(/^[0-9a-f]{64}$/.test(prov.sha256["value.txt"]));
  assert.equal((await verifyProvenance(out))?.instance, "b");
  Deno.writeTextFileSync(`${out}/value.txt`, "tampered");
  await assert.rejects(
    verifyProvenance(out),
    (e) =>
      e instanceof UserInputError &&
      /value\.txt: sha256 [0-9a-f]{64} does not match provenance\.json's [0-9a-f]{64}/.test(e.message),
  );
  assert.equal(await verifyProvenance(dir), undefined, "a directory without provenance loads as before");
});
