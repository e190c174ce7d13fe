/**
 * One lock file per cache key, so two `run` processes on one store compute each stage once.
 * A lock whose owner process is gone is stale and is taken over.
 * @module
 */

/** Whether a process with this pid exists (PID reuse is not guarded against). */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
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
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const f = Deno.openSync(path, { write: true, createNew: true });
      f.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
      f.close();
      return () => {
        try {
          Deno.removeSync(path);
        } catch {
          // Already taken over as stale; nothing to release.
        }
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const holder = Number(readOr(path, "0").trim());
      if (holder && alive(holder)) return undefined;
      // Stale: move it aside atomically, so only one taker removes it; then retry.
      const aside = `${path}.stale.${Deno.pid}`;
      try {
        Deno.renameSync(path, aside);
        const moved = Number(readOr(aside, "0").trim());
        if (moved !== holder && moved && alive(moved)) {
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

function readOr(path: string, fallback: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}
