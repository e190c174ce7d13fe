/**
 * Test harness: a real one-node Slurm cluster (munged, slurmctld, slurmd from Debian's
 * `slurm-wlm` and `munge`) on this host, with its key, sockets, state, spool and logs under
 * one temporary directory and its own ports, so it touches no system configuration.
 * `deno task setup --tests` installs the packages on Debian when run as root.
 * @module
 */
import { freePort } from "./nginx.ts";

/** A running cluster; `stop()` ends its daemons and removes its directory. */
export interface Slurm {
  /** Environment for `sbatch`, `squeue`, ... and for `main.ts slurm` (carries `SLURM_CONF`). */
  env: Record<string, string>;
  dir: string;
  /** Runs a Slurm client (`squeue`, `scancel`, ...) and returns its stdout; throws on failure. */
  client(cmd: string, args: string[]): Promise<string>;
  /** Array task and job states by id (`12_0` -> `RUNNING`), finished ones included. */
  states(): Promise<Record<string, string>>;
  /** Waits until no job is pending or running. */
  idle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const DAEMONS = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch"];

/**
 * Why this host cannot run the cluster (binaries missing, not root), or undefined when it can.
 */
export function slurmUnavailable(): string | undefined {
  const missing = DAEMONS.filter((p) => {
    try {
      return !Deno.statSync(p).isFile;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    return `Slurm is not installed (${
      missing.join(", ")
    } missing): run \`deno task setup --tests\` as root on Debian (apt packages slurm-wlm, munge)`;
  }
  if (Deno.uid?.() !== 0) return "slurmd must run as root to start jobs; these tests need root";
  return undefined;
}

function conf(dir: string, host: string, ctldPort: number, dPort: number): string {
  return `ClusterName=graddroptest
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctldPort}
SlurmdPort=${dPort}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${dir}/munge/munge.socket
CredType=cred/munge
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/slurmctld.log
SlurmdLogFile=${dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=3600
NodeName=${host} NodeAddr=127.0.0.1 CPUs=4 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
`;
}

async function output(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(r.stderr).trim()}`);
  return dec.decode(r.stdout);
}

/**
 * Starts munged, slurmctld and slurmd (CPUs=4, so three array tasks run side by side) and
 * waits until the node is idle.
 *
 * @example
 * ```ts ignore
 * const slurm = await startSlurm();
 * console.log(await slurm.client("sinfo", []));
 * await slurm.stop();
 * ```
 */
export async function startSlurm(): Promise<Slurm> {
  const why = slurmUnavailable();
  if (why) throw new Error(why);
  const dir = Deno.makeTempDirSync({ prefix: "graddrop-slurm-" });
  for (const d of ["munge", "state", "spool"]) Deno.mkdirSync(`${dir}/${d}`, { mode: 0o700 });
  Deno.chmodSync(dir, 0o755);
  Deno.writeFileSync(`${dir}/munge/munge.key`, crypto.getRandomValues(new Uint8Array(1024)), { mode: 0o400 });
  const host = Deno.hostname();
  const ctldPort = freePort();
  let dPort = freePort();
  while (dPort === ctldPort) dPort = freePort();
  Deno.writeTextFileSync(`${dir}/slurm.conf`, conf(dir, host, ctldPort, dPort));
  const env = { SLURM_CONF: `${dir}/slurm.conf` };
  const children: Deno.ChildProcess[] = [];
  const spawn = (cmd: string, args: string[]) =>
    children.push(
      new Deno.Command(cmd, { args, env, stdin: "null", stdout: "null", stderr: "null" }).spawn(),
    );
  const stop = async () => {
    for (const c of children.reverse()) {
      try {
        c.kill("SIGTERM");
      } catch {
        // it already exited
      }
      await c.status;
    }
    Deno.removeSync(dir, { recursive: true });
  };
  try {
    spawn("/usr/sbin/munged", [
      "--foreground",
      "--force",
      `--socket=${dir}/munge/munge.socket`,
      `--key-file=${dir}/munge/munge.key`,
      `--log-file=${dir}/munged.log`,
      `--pid-file=${dir}/munge/munged.pid`,
      `--seed-file=${dir}/munge/seed`,
    ]);
    await until(() => exists(`${dir}/munge/munge.socket`), 5000, "munged did not start", `${dir}/munged.log`);
    spawn("/usr/sbin/slurmctld", ["-D", "-i", "-f", env.SLURM_CONF]);
    spawn("/usr/sbin/slurmd", ["-D", "-f", env.SLURM_CONF, "-N", host]);
    await until(
      async () => (await output("sinfo", ["-h", "-o", "%T"], env).catch(() => "")).trim() === "idle",
      20000,
      "the Slurm node did not come up idle",
      `${dir}/slurmctld.log`,
    );
  } catch (e) {
    const log = (e as Error).message;
    await stop();
    throw new Error(log);
  }
  const slurm: Slurm = {
    env,
    dir,
    client: (cmd, args) => output(cmd, args, env),
    async states() {
      const out = await output("squeue", ["-h", "-r", "-t", "all", "-o", "%i %T"], env);
      return Object.fromEntries(out.trim().split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/)));
    },
    async idle(timeoutMs = 120000) {
      await until(
        async () => (await output("squeue", ["-h", "-o", "%i"], env)).trim() === "",
        timeoutMs,
        "Slurm jobs did not finish",
        `${dir}/slurmctld.log`,
      );
    },
    stop,
  };
  return slurm;
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

async function until(ok: () => boolean | Promise<boolean>, ms: number, what: string, log: string) {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) {
      let tail = "";
      try {
        tail = Deno.readTextFileSync(log).split("\n").slice(-15).join("\n");
      } catch {
        tail = "(no log)";
      }
      throw new Error(`${what} within ${ms / 1000} s; ${log}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
