/**
 * Types the engine's modules share (keys, records, runner, scheduler, store), kept apart so
 * that none of them has to import another just for a type.
 * @module
 */
import type { Fingerprint } from "./fingerprint.ts";

/** Everything an instance's cache key is computed from. */
export interface KeyParts {
  type: string;
  /** Params after defaults, input paths resolved to absolute paths. */
  params: Record<string, unknown>;
  /** Upstream instance id -> its output hash (so identical upstream outputs keep this cached). */
  inputs: Record<string, string>;
  /** Input-path param -> sha256 of that file's or directory's content. */
  inputFiles: Record<string, string>;
  /** What the stage type's `environment` hook reported (e.g. the backend `auto` became). */
  environment: Record<string, string>;
  code: Fingerprint;
}

/** Provenance and identity of one cache entry. */
export interface Manifest {
  key: string;
  id: string;
  stage: string;
  type: string;
  pipeline: string;
  params: Record<string, unknown>;
  /** Upstream instance id -> its output hash. */
  inputs: Record<string, string>;
  inputFiles?: Record<string, string>;
  environment?: Record<string, string>;
  code: Fingerprint;
  outputHash: string;
  /** Number of output files. */
  files: number;
  bytes: number;
  deno: string;
  git?: string;
  provenance?: Record<string, unknown>;
  started: string;
  finished: string;
  seconds: number;
}

/** Outcome of one instance in a run. */
export interface StageResult {
  id: string;
  status: "ran" | "cached" | "remote" | "failed" | "skipped" | "interrupted";
  key?: string;
  seconds: number;
  error?: string;
  /** How the upload to the remote cache went, for an instance that ran with `--remote-push`. */
  push?: PushOutcome;
}

/**
 * One push to the remote cache: `pushed` (uploaded), `present` (the remote already held it,
 * nothing sent) or `failed`, with why.
 */
export interface PushOutcome {
  status: "pushed" | "present" | "failed";
  /** Blobs and bytes sent. */
  blobs: number;
  bytes: number;
  reason?: string;
}

/** Why an instance would (or would not) run. */
export interface StaleInfo {
  id: string;
  state: "cached" | "stale";
  /** Unknown (null) while an upstream is stale: the key depends on upstream outputs. */
  key: string | null;
  reasons: string[];
  /** Cached on the remote, not (yet) in the local store. */
  remote?: boolean;
}
