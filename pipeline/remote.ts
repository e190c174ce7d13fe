/**
 * A shared remote cache in the layout of Bazel's HTTP remote cache, served by any HTTP
 * server that accepts PUT (nginx WebDAV, bazel-remote, ...):
 *
 * - `{url}/ac/{key}`: the entry record (`remote_record.ts`): manifest, file list, output hash;
 * - `{url}/cas/{sha256}`: one output file's bytes, so identical files are stored once.
 *
 * Nothing from the server is trusted: every blob's size and sha256 and the recomputed output
 * hash are checked in a private temp directory before the entry is committed to the local
 * store. A server that is down, slow or failing costs one warning and the run goes on without
 * it: every failure is a miss, never an exception or a hang.
 * @module
 */
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import pMap from "p-map";
import { hashTree, listTree, type Store, treeHash } from "./store.ts";
import type { Manifest, PushOutcome } from "./types.ts";
import { CacheHttp, Cancelled, timeFor, Unavailable } from "./remote_http.ts";
import { fault } from "./fault.ts";
import { type EntryRecord, makeRecord, parseRecord } from "./remote_record.ts";

/** Options for {@link RemoteCache}. */
export interface RemoteOptions {
  /** Base URL, e.g. `https://cache.example.org/graddrop`. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`; never printed. */
  token?: string;
  /** Longest one request may take, body included, before its bytes are counted (default 60 s). */
  timeoutMs?: number;
  /**
   * The slowest link the cache is expected over: every request may take its bytes at this
   * rate on top of `timeoutMs`, and a whole fetch or push its total bytes on top of
   * `deadlineMs` (default 1 MB/s).
   */
  minBytesPerSecond?: number;
  /** Longest one {@link RemoteCache.fetchEntry} or {@link RemoteCache.pushEntry} may take, before its bytes are counted (default 10 min). */
  deadlineMs?: number;
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
  /** Where warnings go (default stderr). */
  warn?: (line: string) => void;
}

/** A record no longer matching what the server sends for it; the entry is refused. */
class Corrupt extends Error {}

// Records hold a manifest and a file list: kilobytes. Anything huge is not a record.
const MAX_RECORD_BYTES = 16 << 20;
const KEY = /^[A-Za-z0-9_-]+$/;

/**
 * Client of one remote cache. After the server fails once (down, timeout, error status) the
 * client stops asking it for the rest of the process, so a run with hundreds of instances
 * warns once and waits at most one timeout.
 *
 * @example
 * ```ts ignore
 * const remote = new RemoteCache({ url: "http://127.0.0.1:8080", warn: console.error });
 * if (await remote.fetchEntry(key, store) === "hit") console.error(`[${id}] cached (remote)`);
 * else {
 *   // ... compute and commit the entry, then:
 *   await remote.pushEntry(key, store);
 * }
 * ```
 */
export class RemoteCache {
  readonly #http: CacheHttp;
  readonly #deadlineMs: number;
  readonly #concurrency: number;
  readonly #warn: (line: string) => void;
  readonly #minRate: number;
  /** Why the server was given up on, once it has been. */
  #down: string | undefined;
  /** Keys whose remote entry this process refused: a push re-sends all their blobs. */
  readonly #refused = new Set<string>();

  constructor(opts: RemoteOptions) {
    this.#minRate = opts.minBytesPerSecond ?? 1_000_000;
    this.#http = new CacheHttp(opts.url, opts.token, opts.timeoutMs ?? 60_000, this.#minRate);
    this.#deadlineMs = opts.deadlineMs ?? 600_000;
    this.#concurrency = opts.concurrency ?? 4;
    this.#warn = opts.warn ?? ((line) => console.error(line));
  }

  /** False once the server has failed; later calls then return at once. */
  get available(): boolean {
    return !this.#down;
  }

  /**
   * The manifest the server holds for `key`, without its files: enough for planning (its
   * `outputHash` gives downstream keys), not verified against the files until
   * {@link fetchEntry}.
   */
  async manifest(key: string): Promise<Manifest | undefined> {
    return await this.#guard(key, () => undefined, async (op) => {
      const text = await this.#http.text(`ac/${key}`, op.signal, MAX_RECORD_BYTES);
      return text === undefined ? undefined : this.#parse(text, key).manifest;
    });
  }

  /**
   * Downloads and verifies the entry for `key` and commits it into `store`. "miss" when the
   * server has no such entry, is unusable, or sends anything that does not verify.
   */
  async fetchEntry(key: string, store: Store): Promise<"hit" | "miss"> {
    if (store.manifest(key)) return "hit";
    return await this.#guard(key, () => "miss" as const, async (op, stretch) => {
      const text = await this.#http.text(`ac/${key}`, op.signal, MAX_RECORD_BYTES);
      if (text === undefined) return "miss";
      const record = this.#parse(text, key);
      stretch(record.manifest.bytes);
      const tmp = store.tmp(key);
      try {
        await this.#download(record, `${tmp}/out`, op);
        fault("fetch-downloaded");
        const tree = await hashTree(`${tmp}/out`);
        if (tree.hash !== record.treeHash) throw new Corrupt("its files do not add up to its output hash");
        store.commit(tmp, record.manifest, record.files);
        return "hit";
      } catch (e) {
        rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
    });
  }

  /**
   * Uploads the local entry for `key`: blobs the server lacks first, the record last, so a
   * reader never finds a record whose blobs are missing. Never throws: says whether the entry
   * was pushed, was already there, or failed and why (also warned).
   */
  async pushEntry(key: string, store: Store): Promise<PushOutcome> {
    let blobs = 0, bytes = 0;
    const failed = (reason: string): PushOutcome => ({ status: "failed", blobs, bytes, reason });
    const manifest = store.manifest(key);
    if (!manifest) {
      this.#warn(`remote: entry ${key}: not pushed: not in the local store`);
      return failed("not in the local store");
    }
    if (this.#down) return failed(`cache unavailable (${this.#down})`);
    return await this.#guard(key, failed, async (op, stretch) => {
      const refused = this.#refused.has(key);
      if (!refused && await this.#http.exists(`ac/${key}`, op.signal)) {
        return { status: "present", blobs, bytes } as PushOutcome;
      }
      const out = `${store.entry(key)}/out`;
      const files = await listTree(out);
      // Pushing a locally damaged entry would spread the damage to every reader.
      if (treeHash(files) !== manifest.outputHash) {
        throw new Error("not pushed: its local files no longer match its manifest's outputHash");
      }
      stretch(manifest.bytes);
      const bySha = new Map(files.map((f) => [f.sha256, f]));
      await this.#all([...bySha.values()], op, async (f) => {
        const there = refused ? undefined : await this.#http.exists(`cas/${f.sha256}`, op.signal);
        // A blob of the wrong size is a damaged upload from earlier: replace it.
        if (there && (there.size === undefined || there.size === f.size)) return;
        await this.#http.put(`cas/${f.sha256}`, { file: `${out}/${f.path}`, size: f.size }, op.signal);
        blobs++;
        bytes += f.size;
        fault("push-blob");
      });
      fault("push-record");
      await this.#http.put(`ac/${key}`, JSON.stringify(makeRecord(manifest, files)), op.signal);
      this.#refused.delete(key);
      return { status: "pushed", blobs, bytes } as PushOutcome;
    });
  }

  /**
   * Runs one lookup, fetch or push under the total deadline, which `stretch(bytes)` extends
   * by the time those bytes take at the slowest expected rate. Any failure is reported once
   * and gives `fallback(why)`; nothing is thrown.
   */
  async #guard<T>(
    key: string,
    fallback: (reason: string) => T,
    run: (op: AbortController, stretch: (bytes: number) => void) => Promise<T>,
  ): Promise<T> {
    if (this.#down) return fallback(`cache unavailable (${this.#down})`);
    if (!KEY.test(key)) return fallback("not a cache key");
    const op = new AbortController();
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number) => {
      clearTimeout(deadline);
      deadline = setTimeout(
        () => op.abort(new Unavailable(`no complete transfer within the total deadline of ${ms / 1000} s`)),
        ms,
      );
    };
    arm(this.#deadlineMs);
    try {
      return await run(op, (bytes) => arm(timeFor(bytes, this.#deadlineMs, this.#minRate)));
    } catch (e) {
      return fallback(this.#failed(e, key));
    } finally {
      clearTimeout(deadline);
    }
  }

  #parse(text: string, key: string): EntryRecord {
    try {
      return parseRecord(text, key);
    } catch (e) {
      throw new Corrupt(`bad record: ${(e as Error).message}`);
    }
  }

  /** Fetches every blob of `record` into `out`, each blob once; throws on any mismatch. */
  async #download(record: EntryRecord, out: string, op: AbortController): Promise<void> {
    for (const f of record.files) Deno.mkdirSync(dirname(`${out}/${f.path}`), { recursive: true });
    const bySha = Map.groupBy(record.files, (f) => f.sha256);
    await this.#all([...bySha.values()], op, async ([first, ...copies]) => {
      const got = await this.#http.download(
        `cas/${first.sha256}`,
        `${out}/${first.path}`,
        op.signal,
        first.size,
      );
      if (!got) throw new Corrupt(`file ${first.path}: blob ${first.sha256} is missing on the server`);
      if (got.size !== first.size) {
        const size = got.size > first.size ? `more than ${first.size}` : got.size;
        throw new Corrupt(
          `file ${first.path}: blob ${first.sha256} sent ${size} bytes, expected ${first.size}`,
        );
      }
      if (got.sha256 !== first.sha256) {
        throw new Corrupt(`file ${first.path}: blob ${first.sha256} has the content of ${got.sha256}`);
      }
      for (const c of copies) await Deno.copyFile(`${out}/${first.path}`, `${out}/${c.path}`);
    });
  }

  /**
   * Runs `task` over `items`, a few at a time; the first failure cancels the rest, and all
   * have settled before it is thrown (so nothing writes into a directory being removed).
   */
  async #all<T>(items: T[], op: AbortController, task: (item: T) => Promise<void>): Promise<void> {
    try {
      await pMap(items, async (item) => {
        try {
          await task(item);
        } catch (e) {
          op.abort();
          throw e;
        }
      }, { concurrency: this.#concurrency, stopOnError: false });
    } catch (e) {
      const errors = e instanceof AggregateError ? e.errors : [e];
      throw errors.find((x) => !(x instanceof Cancelled)) ?? errors[0];
    }
  }

  /**
   * Reports a failure and returns it in a few words: a server fault also disables the
   * client, a bad entry is just refused (and its push later re-sends every blob).
   */
  #failed(e: unknown, key: string): string {
    if (e instanceof Cancelled) return "cancelled";
    const message = this.#http.redact((e as Error).message ?? String(e));
    if (e instanceof Unavailable) this.#down = message;
    if (e instanceof Corrupt) this.#refused.add(key);
    const what = e instanceof Unavailable
      ? `cache unavailable (${message}); going on without it for the rest of this run`
      : e instanceof Corrupt
      ? `refused: ${message}`
      : message;
    this.#warn(this.#http.redact(`remote: entry ${key}: ${what}`));
    return e instanceof Unavailable ? `cache unavailable (${message})` : message;
  }
}
