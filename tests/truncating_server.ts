/**
 * Test harness: a loopback HTTP server that serves the files under a directory but cuts
 * every `/cas/` body off halfway, after promising the full length, then closes the
 * connection (what a crashing server or a dropped proxy connection looks like). Written on
 * raw TCP because an HTTP server library refuses to send a body shorter than its length.
 * @module
 */

/** A running server; `stop()` closes it and every connection. */
export interface TruncatingServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Serves `root` on a free port of 127.0.0.1.
 *
 * @example
 * ```ts ignore
 * const server = truncatingServer(nginx.root);
 * await remote.fetchEntry(key, store); // "miss": a blob arrives half-sent
 * await server.stop();
 * ```
 */
export function truncatingServer(root: string): TruncatingServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const conn of listener) {
      const p = answer(conn, root).finally(() => open.delete(p));
      open.add(p);
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    stop: async () => {
      listener.close();
      await accepting;
      await Promise.all(open);
    },
  };
}

async function answer(conn: Deno.Conn, root: string): Promise<void> {
  const enc = new TextEncoder();
  try {
    const head = await readHead(conn);
    const path = head.split(" ")[1] ?? "/";
    let body: Uint8Array;
    try {
      body = path.includes("..") ? new Uint8Array() : Deno.readFileSync(`${root}${path}`);
    } catch {
      await writeAll(
        conn,
        enc.encode("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
      );
      return;
    }
    const sent = path.startsWith("/cas/") ? body.subarray(0, Math.floor(body.length / 2)) : body;
    await writeAll(
      conn,
      enc.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
    );
    await writeAll(conn, sent);
  } catch {
    // the client gave up first; nothing to answer
  } finally {
    conn.close();
  }
}

/** The request line and headers (a GET has no body to read). */
async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(16 * 1024);
  let n = 0;
  while (n < buf.length) {
    const got = await conn.read(buf.subarray(n));
    if (got === null) break;
    n += got;
    const text = new TextDecoder().decode(buf.subarray(0, n));
    if (text.includes("\r\n\r\n")) return text;
  }
  return new TextDecoder().decode(buf.subarray(0, n));
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}
