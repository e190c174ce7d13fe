/**
 * Subprocess entry point that runs one stage instance from a spec file. The same entry
 * lets another scheduler run a single stage later.
 *
 * Usage: `deno run -A pipeline/worker.ts SPEC.json`
 * @module
 */
import { type InputRef, loadStageType, type StageContext } from "./stage.ts";
import { UserInputError } from "./errors.ts";
import { failingWrites, fault, faultsArmed } from "./fault.ts";

/** What the engine hands a worker. */
export interface WorkerSpec {
  id: string;
  type: string;
  modulePath: string;
  params: Record<string, unknown>;
  matrix: Record<string, string | number | boolean>;
  inputs: InputRef[];
  out: string;
  work: string;
}

/** Marks a progress line on stderr for the engine to parse. */
export const PROGRESS_PREFIX = "@@progress ";

/** Marks stack-trace lines: kept in the stage's log, shown on the terminal only with `--debug`. */
export const TRACE_PREFIX = "trace: ";

if (import.meta.main) {
  const spec: WorkerSpec = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  const enc = new TextEncoder();
  const ctx: StageContext<Record<string, unknown>> = {
    id: spec.id,
    params: spec.params,
    matrix: spec.matrix,
    inputs: spec.inputs,
    out: spec.out,
    work: spec.work,
    log: (m) => Deno.stderr.writeSync(enc.encode(`${m}\n`)),
    progress: (f, note) =>
      Deno.stderr.writeSync(
        enc.encode(`${PROGRESS_PREFIX}${Math.max(0, Math.min(1, f)).toFixed(4)} ${note ?? ""}\n`),
      ),
  };
  if (faultsArmed()) failingWrites(spec.id);
  try {
    const stage = await loadStageType(spec.type, spec.modulePath);
    fault(`stage-run@${spec.id}`);
    fault(`stage-run@${spec.id}#${Deno.env.get("GRADDROP_ATTEMPT") ?? 1}`);
    await stage.run(ctx);
    Deno.exit(0);
  } catch (e) {
    const err = e as Error & { code?: string };
    const full = err.code === "ENOSPC";
    // One line for the engine to report; the stack only when asked for (--debug) or for a bug.
    const line = full ? `disk full: ${err.message}` : err.message.split("\n")[0];
    Deno.stderr.writeSync(enc.encode(`error: ${line}\n`));
    if (Deno.env.get("GRADDROP_DEBUG") || !(e instanceof UserInputError || full)) {
      const trace = (err.stack ?? "").split("\n").map((l) => `${TRACE_PREFIX}${l}\n`).join("");
      Deno.stderr.writeSync(enc.encode(trace));
    }
    Deno.exit(1);
  }
}
