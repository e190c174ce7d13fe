/**
 * Test harness: the plainest cache server there is, GET/HEAD/PUT over a folder, and strict
 * the way S3 and many small PUT servers are: an upload without Content-Length (a chunked
 * body) is refused with 411. `slow` sends every `/cas/` body a byte at a time, 50 ms apart;
 * `readOnly` answers every PUT with 403.
 * @module
 */
import { dirname } from "node:path";

/** A running server; `stop()` closes it. */
export interface PutServer {
  url: string;
  root: string;
  /** `METHOD /path STATUS`, one per request, in order. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * Serves `root` (a fresh temp dir by default, removed by `stop()`) on a free port of 127.0.0.1.
 *
 * @example
 * ```ts ignore
 * const server = putServer();
 * await fetch(`${server.url}/cas/x`, { method: "PUT", body: new Blob(["hi"]) }); // 201
 * await server.stop();
 * ```
 */
export function putServer(opts: { root?: string; slow?: boolean; readOnly?: boolean } = {}): PutServer {
  const root = opts.root ?? Deno.makeTempDirSync({ prefix: "graddrop-put-" });
  const requests: string[] = [];
  const answer = async (req: Request): Promise<Response> => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.split("/").includes("..")) return new Response(null, { status: 400 });
    const file = `${root}${path}`;
    if (req.method === "PUT") {
      if (opts.readOnly) {
        await req.body?.cancel();
        return new Response("read-only\n", { status: 403 });
      }
      const length = req.headers.get("content-length");
      if (length === null || req.headers.get("transfer-encoding")) {
        await req.body?.cancel();
        return new Response("Content-Length required\n", { status: 411 });
      }
      const body = new Uint8Array(await req.arrayBuffer());
      if (body.length !== Number(length)) return new Response(null, { status: 400 });
      Deno.mkdirSync(dirname(file), { recursive: true });
      // Written aside and renamed, as a careful server does: a reader never sees half a file.
      Deno.writeFileSync(`${file}.part`, body);
      Deno.renameSync(`${file}.part`, file);
      return new Response(null, { status: 201 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") return new Response(null, { status: 405 });
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = Deno.readFileSync(file);
    } catch {
      return new Response(null, { status: 404 });
    }
    const headers = { "content-length": String(bytes.length) };
    if (req.method === "HEAD") return new Response(null, { headers });
    if (!opts.slow || !path.startsWith("/cas/")) return new Response(bytes, { headers });
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        await new Promise((r) => setTimeout(r, 50));
        if (i < bytes.length) c.enqueue(bytes.subarray(i, ++i));
        else c.close();
      },
    });
    return new Response(body, { headers });
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const res = await answer(req);
    requests.push(`${req.method} ${new URL(req.url).pathname} ${res.status}`);
    return res;
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    root,
    requests,
    stop: async () => {
      await server.shutdown();
      if (!opts.root) Deno.removeSync(root, { recursive: true });
    },
  };
}
