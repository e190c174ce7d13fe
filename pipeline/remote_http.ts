/**
 * HTTP for the remote cache: a bearer token on every request, a timeout on each request
 * (body included) that grows with the bytes it moves, under a deadline shared by one fetch
 * or push, and error text with the token and any URL password blanked out. Uploads carry
 * Content-Length: S3 and many plain PUT servers refuse a chunked body (HTTP 411, or a cut
 * connection), and `fetch` streams a file body chunked, so PUT goes through `node:http`.
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import http from "node:http";
import https from "node:https";

/** The server could not be used: down, too slow, an unexpected status or a cut-off body. */
export class Unavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Unavailable";
  }
}

/** A request given up because its caller cancelled it; the caller reports why. */
export class Cancelled extends Error {
  constructor() {
    super("cancelled");
    this.name = "Cancelled";
  }
}

/** Bytes and hash of a downloaded body. */
export interface Downloaded {
  sha256: string;
  size: number;
}

/** A file to upload, with its size (sent as Content-Length). */
export interface FileBody {
  file: string;
  size: number;
}

/** How long a request moving `bytes` may take: `baseMs` plus the bytes at `minBytesPerSecond`. */
export function timeFor(bytes: number, baseMs: number, minBytesPerSecond: number): number {
  return baseMs + Math.round((bytes / minBytesPerSecond) * 1000);
}

/**
 * Requests against one cache base URL. Every method throws {@link Unavailable} (or
 * {@link Cancelled} once `op` is aborted by the caller) instead of a raw fetch error.
 *
 * @example
 * ```ts ignore
 * const http = new CacheHttp("http://127.0.0.1:8080", undefined, 30_000, 1_000_000);
 * const op = AbortSignal.timeout(600_000);
 * const found = await http.exists("cas/ab12...", op);
 * ```
 */
export class CacheHttp {
  readonly #base: string;
  readonly #token?: string;
  readonly #timeoutMs: number;
  readonly #minRate: number;

  /** `timeoutMs` for any request, plus the time its bytes take at `minBytesPerSecond`. */
  constructor(url: string, token: string | undefined, timeoutMs: number, minBytesPerSecond: number) {
    this.#base = url.replace(/\/+$/, "");
    this.#token = token || undefined;
    this.#timeoutMs = timeoutMs;
    this.#minRate = minBytesPerSecond;
  }

  /** `text` with the token and the URL's user:password replaced by `***`. */
  redact(text: string): string {
    let out = text.replace(/(\/\/)[^/@\s]+@/g, "$1***@");
    if (this.#token) out = out.split(this.#token).join("***");
    return out;
  }

  /** Whether `path` exists (HEAD), and its size when the server says. */
  async exists(path: string, op: AbortSignal): Promise<{ size?: number } | undefined> {
    return await this.#run("HEAD", path, op, 0, async (res) => {
      await res.body?.cancel();
      if (res.status === 404) return undefined;
      const len = res.headers.get("content-length");
      return { size: len === null ? undefined : Number(len) };
    });
  }

  /** The body of `path` as text, or undefined on 404; more than `maxBytes` is an error. */
  async text(path: string, op: AbortSignal, maxBytes: number): Promise<string | undefined> {
    // A record is kilobytes: `maxBytes` is a cap, not its size, and buys no time.
    return await this.#run("GET", path, op, 0, async (res) => {
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      const decoder = new TextDecoder();
      let text = "", size = 0;
      for await (const chunk of res.body ?? []) {
        size += chunk.length;
        if (size > maxBytes) throw new Unavailable(`GET ${path}: body larger than ${maxBytes} bytes`);
        text += decoder.decode(chunk, { stream: true });
      }
      return text + decoder.decode();
    });
  }

  /**
   * Streams `path` into `file`, hashing as it goes; stops reading past `maxBytes` (the
   * size the record promises, plus one byte so an overlong body is still detected).
   * Undefined on 404.
   */
  async download(
    path: string,
    file: string,
    op: AbortSignal,
    maxBytes: number,
  ): Promise<Downloaded | undefined> {
    return await this.#run("GET", path, op, maxBytes, async (res) => {
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      const hash = createHash("sha256");
      let size = 0;
      const out = (await Deno.open(file, { write: true, create: true, truncate: true })).writable.getWriter();
      try {
        for await (const chunk of res.body ?? []) {
          size += chunk.length;
          hash.update(chunk);
          if (size > maxBytes) break;
          await out.write(chunk);
        }
      } finally {
        await out.close();
      }
      return { sha256: hash.digest("hex"), size };
    });
  }

  /** Uploads a file (streamed from disk) or a string to `path`, with its Content-Length. */
  async put(path: string, body: FileBody | string, op: AbortSignal): Promise<void> {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const size = bytes instanceof Uint8Array ? bytes.length : bytes.size;
    await this.#run("PUT", path, op, size, async (res) => {
      await res.body?.cancel();
      if (res.status === 404) throw new Unavailable(`PUT ${path}: HTTP 404`);
    }, bytes);
  }

  /**
   * Sends one request and lets `use` read the response, all within the request's time
   * (which grows with `bytes`, the size of what it sends or may receive).
   */
  async #run<T>(
    method: string,
    path: string,
    op: AbortSignal,
    bytes: number,
    use: (res: Response) => Promise<T>,
    body?: Uint8Array | FileBody,
  ): Promise<T> {
    if (op.aborted) throw this.#aborted(method, path, op);
    const ms = timeFor(bytes, this.#timeoutMs, this.#minRate);
    const timeout = AbortSignal.timeout(ms);
    const signal = AbortSignal.any([op, timeout]);
    const headers: Record<string, string> = this.#token ? { authorization: `Bearer ${this.#token}` } : {};
    try {
      const res = body === undefined
        ? await fetch(`${this.#base}/${path}`, { method, signal, headers })
        : await upload(new URL(`${this.#base}/${path}`), body, headers, signal);
      if (!res.ok && res.status !== 404) {
        await res.body?.cancel();
        throw new Unavailable(`${method} ${path}: HTTP ${res.status} ${res.statusText}`.trim());
      }
      return await use(res);
    } catch (e) {
      if (e instanceof Unavailable || e instanceof Cancelled) throw e;
      if (op.aborted) throw this.#aborted(method, path, op);
      if (timeout.aborted) {
        throw new Unavailable(`${method} ${path}: no complete answer within ${ms / 1000} s`);
      }
      throw new Unavailable(this.redact(`${method} ${path}: ${reason(e)}`));
    }
  }

  #aborted(method: string, path: string, op: AbortSignal): Error {
    // The caller aborts with an Unavailable at its deadline, and plainly to cancel.
    return op.reason instanceof Unavailable
      ? new Unavailable(`${method} ${path}: ${op.reason.message}`)
      : new Cancelled();
  }
}

/**
 * PUT with Content-Length through `node:http(s)`; the answer comes back as a bodyless
 * Response. The body is streamed from disk, so a large checkpoint is never held in memory.
 */
function upload(
  url: URL,
  body: Uint8Array | FileBody,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<Response> {
  const size = body instanceof Uint8Array ? body.length : body.size;
  return new Promise<Response>((resolve, reject) => {
    const req = (url.protocol === "https:" ? https : http).request(url, {
      method: "PUT",
      headers: { ...headers, "content-length": String(size) },
    });
    const onAbort = () => req.destroy(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    const done = () => signal.removeEventListener("abort", onAbort);
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => {
        done();
        resolve(new Response(null, { status: res.statusCode ?? 502, statusText: res.statusMessage ?? "" }));
      });
      res.on("error", (e) => (done(), reject(e)));
    });
    req.on("error", (e) => (done(), reject(e)));
    if (body instanceof Uint8Array) req.end(body);
    else {
      const file = createReadStream(body.file);
      file.on("error", (e) => req.destroy(e));
      file.pipe(req);
    }
  });
}

/** The useful part of a fetch error: Deno puts the OS error in `cause`, after the URL. */
function reason(e: unknown): string {
  const err = e as Error & { cause?: Error };
  return (err.cause?.message ?? err.message).replace(/^error sending request for url \([^)]*\): /, "");
}
