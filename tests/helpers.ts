/**
 * Test helpers: temporary projects and running the CLI as a user would.
 * @module
 */
import { fileURLToPath } from "node:url";

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
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/main.ts`, ...args],
    env: { GRADDROP_HOME: home, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
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
