/**
 * Test helpers: temporary projects and running the CLI as a user would.
 * @module
 */
import { fileURLToPath } from "node:url";
import type { EncoderConfig } from "../model/config.ts";
import type { NamedTensor } from "../model/safetensors.ts";

/** Project root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Result of one CLI invocation. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json?: Record<string, unknown> & { stages: { id: string; status: string; key?: string }[] };
}

/** Runs `main.ts` with args in a subprocess, with `$GRADDROP_HOME` set to `home`. */
export async function cli(
  args: string[],
  home: string,
  env: Record<string, string> = {},
  stdin?: string,
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/main.ts`, ...args],
    env: { GRADDROP_HOME: home, ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Read while writing: a child that answers as it reads would otherwise fill its pipe and stall.
  const output = child.output();
  const w = child.stdin.getWriter();
  if (stdin) await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await output;
  const stdout = new TextDecoder().decode(out.stdout);
  let json;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: out.code, stdout, stderr: new TextDecoder().decode(out.stderr), json };
}

/** Status by instance id from a `--json` run. */
export function statuses(r: CliResult): Record<string, string> {
  if (!r.json) throw new Error(`no JSON on stdout; stderr:\n${r.stderr}`);
  return Object.fromEntries(r.json.stages.map((s) => [s.id, s.status]));
}

/** A fresh temporary directory, removed by the returned disposer. */
export function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "graddrop-test-" });
}

/**
 * Writes a `pipelines.yaml` with one pipeline, `demo`, whose stages (YAML, indented six
 * spaces) use the `test/write` fixture type; returns its path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const file = writeTestProject("      a: {uses: test/write, with: {text: A}}\n");
 * assert.match(Deno.readTextFileSync(file), /demo:\n    stages:\n      a:/);
 * ```
 */
export function writeTestProject(stages: string): string {
  const dir = tempDir();
  Deno.writeTextFileSync(
    `${dir}/pipelines.yaml`,
    `stage_types:\n  test/write: ${ROOT}/tests/fixtures/test_stages.ts\npipelines:\n  demo:\n    stages:\n${stages}`,
  );
  return `${dir}/pipelines.yaml`;
}

/** Every vendored SIB-200 test sentence, by language folder: what no pretraining text may contain. */
export async function sib200TestSentences(): Promise<Map<string, string[]>> {
  const { languageFolders } = await import("../data/tsv.ts");
  const { readSib200Split } = await import("../data/sib200.ts");
  const path = `${ROOT}/datasets/sib200`;
  const out = new Map<string, string[]>();
  for (const lang of languageFolders(path)) {
    out.set(lang, (await readSib200Split(path, lang, "test")).map((e) => e.text));
  }
  return out;
}

/**
 * A tiny 4-label classifier (`namedConfig("tiny", 300)` unless `cfg` is given): its tfjs
 * parameters, scaled by `scale` so logits are not trivially near zero, and their host copies
 * as an exporter reads them.
 */
export async function tinyClassifier(seed: number, cfg?: EncoderConfig, scale = 10) {
  const { namedConfig } = await import("../model/config.ts");
  const { initParams } = await import("../model/encoder.ts");
  const c = cfg ?? namedConfig("tiny", 300);
  const params = initParams(c, { mlm: false, numLabels: 4 }, seed);
  for (const v of params.values()) v.assign(v.mul(scale));
  const weights = new Map<string, NamedTensor>();
  for (const [n, v] of params) weights.set(n, { shape: v.shape, data: await v.data() as Float32Array });
  return { cfg: c, params, weights };
}
