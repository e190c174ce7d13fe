/**
 * The command runner: runs one stage instance from its spec file and reports its progress.
 * The scheduler only sees the {@link Runner} interface, so its tests use a fake runner and
 * never spawn a process. {@link SubprocessRunner} is the real one: a Deno subprocess per
 * instance, its output logged, a watchdog that reports a stage silent for too long and
 * kills it past its timeout, and SIGTERM (then SIGKILL) when the run is interrupted.
 * @module
 */
import { fileURLToPath } from "node:url";
import { PROGRESS_PREFIX, TRACE_PREFIX } from "./worker.ts";

/** One instance to run. */
export interface Job {
  id: string;
  /** The worker spec (see `worker.ts`), already written. */
  specPath: string;
  /** Where the stage's stdout/stderr go. */
  logPath: string;
  /** Extra environment for the stage process. */
  env: Record<string, string>;
  /** Aborted when the user interrupts the run. */
  signal: AbortSignal;
  /** Seconds without any output after which the stage is killed and fails. */
  timeoutSeconds: number;
  /** Seconds without output after which the stall is reported (once). */
  stallSeconds: number;
  onProgress(fraction: number, note: string): void;
  /** A log line worth showing on the terminal. */
  onLine(line: string): void;
  onStall(silentSeconds: number): void;
  /** Show stack traces on the terminal too. */
  debug: boolean;
}

/**
 * A stage process that died of a native fault (SIGSEGV and kin) rather than by its own error
 * or our kill: on this platform that is a crash inside llvmpipe or a wasm runtime, not the
 * stage's doing, so the engine may run it again.
 */
export class StageCrashed extends Error {
  constructor(readonly signal: Deno.Signal) {
    super(`crashed with ${signal}`);
  }
}

const CRASH_SIGNALS = new Set<string>(["SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"]);

/** Runs jobs; rejects with a one-line reason when the stage fails ({@link StageCrashed} on a native crash). */
export interface Runner {
  run(job: Job): Promise<void>;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const KILL_GRACE_MS = 5000;

/** Lines a stage process prints that are Deno's own noise, not the stage's. */
const NOISE = /approve-scripts|^\s*[│╭╰]|^Download |^Initialize |^Warning /;

/** Runs each job as `deno run pipeline/worker.ts SPEC` in its own process. */
export class SubprocessRunner implements Runner {
  async run(job: Job): Promise<void> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", `--config=${ROOT}deno.json`, `${ROOT}pipeline/worker.ts`, job.specPath],
      env: job.env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const log = await Deno.open(job.logPath, { write: true, create: true, append: true });
    const enc = new TextEncoder();
    let last = Date.now();
    let stalled = false, timedOut = false, interrupted = false;
    const kill = () => {
      try {
        child.kill("SIGTERM");
      } catch {
        return;
      }
      setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, KILL_GRACE_MS);
    };
    const onAbort = () => {
      interrupted = true;
      kill();
    };
    job.signal.addEventListener("abort", onAbort);
    if (job.signal.aborted) onAbort();
    const watchdog = setInterval(() => {
      const silent = (Date.now() - last) / 1000;
      if (!stalled && silent > job.stallSeconds) {
        stalled = true;
        job.onStall(Math.round(silent));
      }
      if (!timedOut && silent > job.timeoutSeconds) {
        timedOut = true;
        kill();
      }
    }, 250);
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        last = Date.now();
        stalled = false;
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith(PROGRESS_PREFIX)) {
            const [frac, ...note] = line.slice(PROGRESS_PREFIX.length).split(" ");
            job.onProgress(Number(frac), note.join(" "));
            continue;
          }
          await log.write(enc.encode(line + "\n"));
          const shown = !line.startsWith("error:") && (job.debug || !line.startsWith(TRACE_PREFIX));
          if (line.trim() && !NOISE.test(line) && shown) job.onLine(line);
        }
      }
      if (buf) await log.write(enc.encode(buf + "\n"));
    };
    try {
      const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
      if (status.success && !timedOut && !interrupted) return;
      if (interrupted) throw new Error("interrupted");
      if (timedOut) {
        throw new Error(`no output for ${job.timeoutSeconds} s (the stage's timeout); killed`);
      }
      if (status.signal && CRASH_SIGNALS.has(status.signal)) throw new StageCrashed(status.signal);
      const text = Deno.readTextFileSync(job.logPath);
      const reason = text.split("\n").filter((l) => l.startsWith("error:")).pop()?.slice(7);
      throw new Error(reason ?? `exited with ${status.signal ?? status.code}`);
    } finally {
      clearInterval(watchdog);
      job.signal.removeEventListener("abort", onAbort);
      log.close();
    }
  }
}
