/**
 * Where the remote cache is and whether to push to it, from CLI flags and the environment:
 * `--remote URL` / `GRADDROP_REMOTE`, `--remote-push` / `GRADDROP_REMOTE_PUSH=1` (a failed
 * push warns), `--remote-push=require` / `GRADDROP_REMOTE_PUSH=require` (a failed push fails
 * the run), `GRADDROP_REMOTE_TOKEN` (environment only, so it never shows in a process
 * listing), and for slow links `GRADDROP_REMOTE_TIMEOUT` (seconds any request may take, 60)
 * and `GRADDROP_REMOTE_MIN_RATE` (bytes a second a transfer may fall to, 1000000).
 * @module
 */
import { ConfigError } from "./errors.ts";

/** The remote cache a run uses. */
export interface RemoteConfig {
  url: string;
  token?: string;
  /** Upload entries this run computes (off unless asked for). */
  push: boolean;
  /** A push that fails fails the run (exit 1), as CI wants: its results must reach the cache. */
  requirePush: boolean;
  timeoutMs?: number;
  minBytesPerSecond?: number;
}

/** The flags as `parseArgs` returns them for {@link remoteArgs}. */
export interface RemoteFlags {
  remote?: string;
  /** `true` or `""` (plain `--remote-push`), or `"require"`. */
  "remote-push"?: boolean | string;
}

/** `node:util` `parseArgs` options for the remote flags, to spread into a command's options. */
export const remoteArgs = {
  remote: { type: "string" },
  "remote-push": { type: "string" },
} as const;

/**
 * Lets `--remote-push` stand alone although it takes an optional value (`=require`):
 * `parseArgs` would otherwise swallow the next argument as its value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(normaliseRemotePush(["--remote-push", "demo"]), ["--remote-push=", "demo"]);
 * ```
 */
export function normaliseRemotePush(argv: string[]): string[] {
  return argv.map((a) => a === "--remote-push" ? "--remote-push=" : a);
}

const TRUE = ["1", "true", "yes"], FALSE = ["", "0", "false", "no"];

/**
 * The remote cache configuration, or undefined when no URL is given. Flags win over the
 * environment; an empty variable counts as unset (CI passes unset secrets as "").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const env: Record<string, string> = { GRADDROP_REMOTE: "http://127.0.0.1:8080/", GRADDROP_REMOTE_PUSH: "1" };
 * const cfg = remoteFromEnv({}, (name) => env[name]);
 * assert.deepEqual(cfg, { url: "http://127.0.0.1:8080", token: undefined, push: true, requirePush: false });
 * ```
 */
export function remoteFromEnv(
  flags: RemoteFlags,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): RemoteConfig | undefined {
  const url = flags.remote || env("GRADDROP_REMOTE") || undefined;
  const pushVar = (env("GRADDROP_REMOTE_PUSH") ?? "").toLowerCase();
  if (!TRUE.includes(pushVar) && !FALSE.includes(pushVar) && pushVar !== "require") {
    throw new ConfigError(`GRADDROP_REMOTE_PUSH=${pushVar}: expected 1, 0 or require`);
  }
  const flag = flags["remote-push"];
  if (typeof flag === "string" && flag !== "" && flag !== "require") {
    throw new ConfigError(`--remote-push=${flag}: expected --remote-push or --remote-push=require`);
  }
  const asked = flag === true || typeof flag === "string";
  if (!url) {
    if (asked) throw new ConfigError("--remote-push needs --remote URL or GRADDROP_REMOTE");
    return undefined;
  }
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
    // The URL may carry a password: name where it came from, not what it is.
    throw new ConfigError(`${flags.remote ? "--remote" : "GRADDROP_REMOTE"}: expected an http(s) URL`);
  }
  const positive = (name: string) => {
    const v = env(name);
    if (!v) return undefined;
    if (!(Number(v) > 0)) throw new ConfigError(`${name}=${v}: expected a positive number`);
    return Number(v);
  };
  const timeout = positive("GRADDROP_REMOTE_TIMEOUT"), rate = positive("GRADDROP_REMOTE_MIN_RATE");
  return {
    ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
    ...(rate ? { minBytesPerSecond: rate } : {}),
    url: url.replace(/\/+$/, ""),
    token: env("GRADDROP_REMOTE_TOKEN") || undefined,
    push: asked || TRUE.includes(pushVar) || pushVar === "require",
    requirePush: flag === "require" || pushVar === "require",
  };
}
