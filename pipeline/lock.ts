/**
 * One lock file per cache key, so two `run` processes on one store compute each stage once,
 * also when the store is on a filesystem several hosts share (a cluster's NFS or Lustre home).
 *
 * A lock file names its owner by host, boot id, pid and the process's start time. On the
 * owner's own host that is exact: the lock is stale once that process (not a later one that
 * reused the pid) is gone. Another host cannot see the owner's processes, so the owner
 * refreshes the file's mtime every {@link HEARTBEAT_MS} and a lock from another host is stale
 * once its mtime has not moved for the lease (measured on the waiter's own clock, so clock
 * skew between hosts does not matter).
 * @module
 */
import { fault } from "./fault.ts";

/** Who holds a lock or made a temporary directory. */
export interface Owner {
  host: string;
  boot: string;
  pid: number;
  /** The process's start time in clock ticks since boot (`/proc/PID/stat` field 22). */
  start: number;
}

/** How often a holder refreshes its lock file. */
export const HEARTBEAT_MS = 20_000;
/** How long another host's lock may go without a heartbeat before it counts as stale. */
export const DEFAULT_LEASE_MS = 120_000;

function readOr(path: string, fallback: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

/** The start time of a process, or undefined when there is none with this pid. */
function startTime(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const stat = readOr(`/proc/${pid}/stat`, "");
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = Number(fields[19]);
  return stat && Number.isFinite(start) ? start : undefined;
}

let me: Owner | undefined;
/** This process as a lock owner. */
export function self(): Owner {
  me ??= {
    host: Deno.hostname(),
    boot: readOr("/proc/sys/kernel/random/boot_id", "unknown").trim(),
    pid: Deno.pid,
    start: startTime(Deno.pid) ?? 0,
  };
  return me;
}

/**
 * `alive` or `dead` when the owner ran on this host (checked exactly: a process of an earlier
 * boot is dead); `elsewhere` when it ran on another host, where only a lease can tell.
 *
 * @example
 * ```ts
 * import { ownerState, self } from "./lock.ts";
 * if (ownerState(self()) !== "alive") throw new Error("this process is alive");
 * if (ownerState({ ...self(), host: "node17" }) !== "elsewhere") throw new Error("another host");
 * ```
 */
export function ownerState(o: Owner): "alive" | "dead" | "elsewhere" {
  const here = self();
  // Without /proc (not Linux) processes cannot be checked: rely on the heartbeat there too.
  if (o.host !== here.host || here.start === 0) return "elsewhere";
  // This host has rebooted since: every process of the earlier boot is gone.
  if (o.boot !== here.boot) return "dead";
  return startTime(o.pid) === o.start ? "alive" : "dead";
}

/**
 * A short, dot-free tag naming this process, for names of temporary files and directories;
 * {@link tagState} reads it back.
 */
export function ownerTag(): string {
  const o = self();
  return `${o.pid}-${o.start}-${hostId(o)}`;
}

function hostId(o: Owner): string {
  // FNV-1a: a stable, dot-free 8-hex-digit name for host + boot.
  let h = 0x811c9dc5;
  for (const c of `${o.host}\n${o.boot}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/**
 * What {@link ownerState} says about the process an {@link ownerTag} names. A bare pid (the
 * older format) counts as this host's.
 */
export function tagState(tag: string): "alive" | "dead" | "elsewhere" {
  const [pid, start, host] = tag.split("-");
  if (start === undefined) return startTime(Number(pid)) !== undefined ? "alive" : "dead";
  if (host !== hostId(self()) || self().start === 0) return "elsewhere";
  return startTime(Number(pid)) === Number(start) ? "alive" : "dead";
}

/** Lock files of other hosts as this process last saw them: content + mtime, and since when. */
const seen = new Map<string, { stamp: string; since: number }>();

/** Whether the lock at `path`, held as `text` says, may be taken over. */
function isStale(path: string, text: string, leaseMs: number): boolean {
  let owner: Owner;
  try {
    owner = JSON.parse(text);
  } catch {
    // The older format: a bare pid of this host.
    const pid = Number(text.trim());
    return !(pid && startTime(pid) !== undefined);
  }
  const state = ownerState(owner);
  if (state !== "elsewhere") return state === "dead";
  let mtime: number;
  try {
    mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return false;
  }
  const stamp = `${text}\n${mtime}`;
  const prev = seen.get(path);
  const now = performance.now();
  if (!prev || prev.stamp !== stamp) {
    seen.set(path, { stamp, since: now });
    return false;
  }
  return now - prev.since >= leaseMs;
}

/** Options for {@link tryLock}. */
export interface LockOptions {
  /** How long another host's lock may go without a heartbeat (default {@link DEFAULT_LEASE_MS}). */
  leaseMs?: number;
  /** How often to refresh the lock while holding it (default {@link HEARTBEAT_MS}). */
  heartbeatMs?: number;
}

/**
 * Tries to take the lock at `path`. Returns a release function, or undefined while a live
 * owner holds it. Call it again (e.g. every 250 ms) while waiting: a lock of another host is
 * judged stale by watching its heartbeat across calls.
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
export function tryLock(path: string, opts: LockOptions = {}): (() => void) | undefined {
  const mine = JSON.stringify({ ...self(), token: crypto.randomUUID() });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // O_EXCL creation is atomic on local filesystems and on NFSv3+ (Linux >= 2.6.5).
      const f = Deno.openSync(path, { write: true, createNew: true });
      f.writeSync(new TextEncoder().encode(mine));
      f.close();
      seen.delete(path);
      fault("lock-taken");
      return holding(path, mine, opts.heartbeatMs ?? HEARTBEAT_MS);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const text = readOr(path, "");
      if (!text || !isStale(path, text, opts.leaseMs ?? DEFAULT_LEASE_MS)) return undefined;
      // Stale: move it aside atomically, so only one taker removes it; then retry.
      const aside = `${path}.stale.${ownerTag()}.${crypto.randomUUID().slice(0, 8)}`;
      try {
        Deno.renameSync(path, aside);
        if (readOr(aside, "") !== text) {
          // Between our read and the rename, a new owner took it: give it back.
          Deno.renameSync(aside, path);
          return undefined;
        }
        Deno.removeSync(aside);
        seen.delete(path);
      } catch {
        // Someone else took it over first.
      }
    }
  }
  return undefined;
}

/** Keeps the lock's heartbeat going; the returned function releases it if it is still ours. */
function holding(path: string, mine: string, heartbeatMs: number): () => void {
  const beat = setInterval(() => {
    try {
      if (readOr(path, "") === mine) Deno.utimeSync(path, new Date(), new Date());
    } catch {
      // The file went away (released or taken over): nothing to refresh.
    }
  }, heartbeatMs);
  Deno.unrefTimer(beat);
  return () => {
    clearInterval(beat);
    try {
      if (readOr(path, "") === mine) Deno.removeSync(path);
    } catch {
      // Already taken over as stale; nothing to release.
    }
  };
}
