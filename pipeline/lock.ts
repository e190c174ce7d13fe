/**
 * One lock file per cache key, so two `run` processes on one store compute each stage once.
 * A lock names its owner by pid, the process's start time and the boot id: a pid alone is
 * not enough, since after a crash the kernel hands the same pid to some other process. A
 * lock whose owner is gone is stale and is taken over.
 * @module
 */
import { fault } from "./fault.ts";

/** A process as a lock names it: pid, start time (clock ticks after boot) and boot id. */
export interface Owner {
  pid: number;
  start?: string;
  boot?: string;
}

function readOr(path: string, fallback: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

/** Field 22 of `/proc/PID/stat`: when the process started, in clock ticks after boot. */
export function startTime(pid: number): string | undefined {
  const stat = readOr(`/proc/${pid}/stat`, "");
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] || undefined;
}

const BOOT = readOr("/proc/sys/kernel/random/boot_id", "").trim() || undefined;

/** This process as a lock names it. */
export function self(): Owner {
  return { pid: Deno.pid, start: startTime(Deno.pid), boot: BOOT };
}

/** `pid start boot`, one line: what a lock file holds. */
export function formatOwner(o: Owner): string {
  return `${o.pid} ${o.start ?? "-"} ${o.boot ?? "-"}\n`;
}

/** Reads {@link formatOwner}'s line; a bare pid (an older lock) is an owner too. */
export function parseOwner(text: string): Owner | undefined {
  const [pid, start, boot] = text.trim().split(/\s+/);
  if (!/^[0-9]+$/.test(pid ?? "")) return undefined;
  const known = (s?: string) => s && s !== "-" ? s : undefined;
  return { pid: Number(pid), start: known(start), boot: known(boot) };
}

/**
 * Whether the process a lock names still runs: the pid exists, it started when the lock
 * says, and the machine has not rebooted since. A lock without start time or boot id
 * falls back to the pid alone.
 *
 * @example
 * ```ts
 * import { alive, self } from "./lock.ts";
 * if (!alive(self())) throw new Error("this process is alive");
 * if (alive({ ...self(), start: "1" })) throw new Error("a reused pid is not the owner");
 * ```
 */
export function alive(o: Owner | number): boolean {
  const owner = typeof o === "number" ? { pid: o } : o;
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  if (owner.boot && BOOT && owner.boot !== BOOT) return false;
  try {
    Deno.statSync(`/proc/${owner.pid}`);
  } catch {
    return false;
  }
  return !owner.start || owner.start === startTime(owner.pid);
}

/**
 * Tries to take the lock at `path`. Returns a release function, or undefined while a live
 * process holds it.
 *
 * @example
 * ```ts
 * import { tryLock } from "./lock.ts";
 * const path = `${Deno.makeTempDirSync()}/abc.lock`;
 * const release = tryLock(path);
 * if (!release || tryLock(path)) throw new Error("a live lock must not be taken twice");
 * release();
 * ```
 */
export function tryLock(path: string): (() => void) | undefined {
  const me = formatOwner(self());
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written aside and linked into place: a lock file is never seen empty, half-written.
    const draft = `${path}.${Deno.pid}.draft`;
    try {
      Deno.writeTextFileSync(draft, me);
      try {
        Deno.linkSync(draft, path);
      } finally {
        Deno.removeSync(draft);
      }
      fault("lock-taken");
      return () => {
        try {
          Deno.removeSync(path);
        } catch {
          // Already taken over as stale; nothing to release.
        }
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const text = readOr(path, "");
      const holder = parseOwner(text);
      if (holder && alive(holder)) return undefined;
      // Stale: move it aside atomically, so only one taker removes it; then retry.
      const aside = `${path}.stale.${Deno.pid}`;
      try {
        Deno.renameSync(path, aside);
        const moved = readOr(aside, "");
        const owner = parseOwner(moved);
        if (moved !== text && owner && alive(owner)) {
          Deno.renameSync(aside, path);
          return undefined;
        }
        Deno.removeSync(aside);
      } catch {
        // Someone else took it over first.
      }
    }
  }
  return undefined;
}
