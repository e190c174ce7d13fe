/**
 * HTTP for the remote cache: a bearer token on every request, a timeout on each request
 * (body included) under a deadline shared by one fetch or push, and error text with the
 * token and any URL password blanked out.
 * @module
 */
import { createHash } from "node:crypto";

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

/**
 * Requests against one cache base URL. Every method throws {@link Unavailable} (or
 * {@link Cancelled} once `op` is aborted by the caller) instead of a raw fetch error.
 *
 * @example
 * ```ts ignore
 * const http = new CacheHttp("http://127.0.0.1:8080", undefined, 30_000);
 * const op = AbortSignal.timeout(600_000);
 * const found = await http.exists("cas/ab12...", op);
 * ```
 */
export class CacheHttp {
  readonly #base: string;
  readonly #token?: string;
  readonly #timeoutMs: number;

  constructor(url: string, token: string | undefined, timeoutMs: number) {
    this.#base = url.replace(/\/+$/, "");
    this.#token = token || undefined;
    this.#timeoutMs = timeoutMs;
  }

  /** `text` with the token and the URL's user:password replaced by `***`. */
  redact(text: string): string {
    let out = text.replace(/(\/\/)[^/@\s]+@/g, "$1***@");
    if (this.#token) out = out.split(this.#token).join("***");
    return out;
  }

  /** Whether `path` exists (HEAD), and its size when the server says. */
  async exists(path: string, op: AbortSignal): Promise<{ size?: number } | undefined> {
    return await this.#run("HEAD", path, op, async (res) => {
      await res.body?.cancel();
      if (res.status === 404) return undefined;
      const len = res.headers.get("content-length");
      return { size: len === null ? undefined : Number(len) };
    });
  }

  /** The body of `path` as text, or undefined on 404; more than `maxBytes` is an error. */
  async text(path: string, op: AbortSignal, maxBytes: number): Promise<string | undefined> {
    return await this.#run("GET", path, op, async (res) => {
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
    return await this.#run("GET", path, op, async (res) => {
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

  /** Uploads a file's bytes (streamed) to `path`. */
  async put(path: string, body: ReadableStream<Uint8Array> | string, op: AbortSignal): Promise<void> {
    await this.#run("PUT", path, op, async (res) => {
      await res.body?.cancel();
      if (res.status === 404) throw new Unavailable(`PUT ${path}: HTTP 404`);
    }, body);
  }

  /** Sends one request and lets `use` read the response, all within the per-request timeout. */
  async #run<T>(
    method: string,
    path: string,
    op: AbortSignal,
    use: (res: Response) => Promise<T>,
    body?: ReadableStream<Uint8Array> | string,
  ): Promise<T> {
    if (op.aborted) throw this.#aborted(method, path, op);
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = AbortSignal.any([op, timeout]);
    try {
      const res = await fetch(`${this.#base}/${path}`, {
        method,
        body,
        signal,
        headers: this.#token ? { authorization: `Bearer ${this.#token}` } : {},
      });
      if (!res.ok && res.status !== 404) {
        await res.body?.cancel();
        throw new Unavailable(`${method} ${path}: HTTP ${res.status} ${res.statusText}`.trim());
      }
      return await use(res);
    } catch (e) {
      if (e instanceof Unavailable || e instanceof Cancelled) throw e;
      if (op.aborted) throw this.#aborted(method, path, op);
      if (timeout.aborted) {
        throw new Unavailable(`${method} ${path}: no complete answer within ${this.#timeoutMs / 1000} s`);
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

/** The useful part of a fetch error: Deno puts the OS error in `cause`, after the URL. */
function reason(e: unknown): string {
  const err = e as Error & { cause?: Error };
  return (err.cause?.message ?? err.message).replace(/^error sending request for url \([^)]*\): /, "");
}
