/**
 * Fault injection for the fault suite (`tests/faults_test.ts`): `GRADDROP_FAULT` names
 * points in the engine and what happens the n-th time a process reaches one, e.g.
 * `GRADDROP_FAULT=commit-rename:1` (SIGKILL there), `stage-write@a:2:enospc` (instance
 * `a`'s second write fails as on a full disk) or `stage-run@a#1:1:segv` (instance `a`'s first
 * attempt dies of SIGSEGV). Stage points name the instance, since each stage runs in a
 * process of its own. Unset, {@link fault} is one comparison: the spec is read
 * once, when the module loads.
 * @module
 */

/** What an armed point does: die at once, crash as native code does, or fail as a full disk does. */
type Action = "kill" | "segv" | "enospc";

interface Armed {
  at: number;
  action: Action;
  seen: number;
}

const armed = parse(Deno.env.get("GRADDROP_FAULT") ?? "");

function parse(spec: string): Map<string, Armed> | undefined {
  if (!spec) return undefined;
  const out = new Map<string, Armed>();
  for (const item of spec.split(",")) {
    const [point, n = "1", action = "kill"] = item.split(":");
    if (!/^[0-9]+$/.test(n) || !["kill", "segv", "enospc"].includes(action)) {
      throw new Error(`GRADDROP_FAULT=${spec}: expected point:n[:kill|segv|enospc], e.g. commit-rename:1`);
    }
    out.set(point, { at: Number(n), action: action as Action, seen: 0 });
  }
  return out;
}

/** The error a full disk gives, as Deno reports it (code ENOSPC, os error 28). */
export function noSpace(where: string): Error {
  return Object.assign(new Error(`No space left on device (os error 28): ${where}`), { code: "ENOSPC" });
}

/**
 * Reached at an injection point: when `GRADDROP_FAULT` arms `point` for this visit, the
 * process is killed (SIGKILL, no cleanup) or a full-disk error is thrown.
 *
 * @example
 * ```ts
 * import { fault } from "./fault.ts";
 * fault("commit-rename"); // nothing happens unless GRADDROP_FAULT arms it
 * ```
 */
export function fault(point: string, where = point): void {
  if (armed === undefined) return;
  const a = armed.get(point);
  if (!a || ++a.seen !== a.at) return;
  if (a.action === "enospc") throw noSpace(where);
  // A real segfault, as a native bug gives: a SIGSEGV sent with kill is swallowed by V8's handler.
  if (a.action === "segv") new Deno.UnsafePointerView(Deno.UnsafePointer.create(8n)!).getUint8();
  Deno.kill(Deno.pid, "SIGKILL");
}

/** Whether any fault is armed (to install costlier hooks, such as {@link failingWrites}, only then). */
export function faultsArmed(): boolean {
  return armed !== undefined;
}

/**
 * Routes Deno's whole-file writes through the `stage-write@<instance id>` point, so a stage's n-th write
 * can die or run out of space half-way (half the bytes land, then ENOSPC), as on a full disk.
 * Installed by the stage worker only when a fault is armed.
 */
export function failingWrites(id: string): void {
  const writeFile = Deno.writeFile, writeTextFile = Deno.writeTextFile;
  const half = async (path: string | URL, data: Uint8Array) => {
    try {
      fault(`stage-write@${id}`, `write '${path}'`);
    } catch (e) {
      await writeFile(path, data.subarray(0, data.length >> 1));
      throw e;
    }
  };
  Deno.writeFile = async (path, data, options) => {
    if (data instanceof Uint8Array) await half(path, data);
    return await writeFile(path, data, options);
  };
  Deno.writeTextFile = async (path, data, options) => {
    if (typeof data === "string") await half(path, new TextEncoder().encode(data));
    return await writeTextFile(path, data, options);
  };
}
