/**
 * Test harness: a real nginx serving WebDAV PUT/GET/HEAD on 127.0.0.1, the way a team would
 * host the remote cache, with every file it writes (pid, logs, request temp files) under one
 * temporary directory. `deno task setup --tests` installs nginx on Debian when run as root.
 *
 * Besides the plain cache at `url`, it serves the same files with injected faults:
 * `url/fail500` answers 500 to everything and `url/slow` sends bodies at a few bytes a second.
 * The harnesses of other packaged servers (`apache.ts`, `slurm.ts`) use its helpers:
 * {@link findBinary}, {@link freePort}, {@link spawnOnFreePort}.
 * @module
 */

/** A running nginx; `stop()` ends it and removes its directory. */
export interface Nginx {
  /** Base URL of the cache, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Directory nginx serves and stores PUT files in (`ac/`, `cas/` appear under it). */
  root: string;
  /** nginx's access log: one line per request, in order (`"PUT /cas/... HTTP/1.1" 201`). */
  accessLog: string;
  stop(): Promise<void>;
}

/** Options for {@link startNginx}. */
export interface NginxOptions {
  /** When set, every request must carry `Authorization: Bearer <token>` or gets 401. */
  token?: string;
}

/** The first of `paths` that is a file, if any: where a packaged server's binary lives. */
export function findBinary(paths: string[]): string | undefined {
  for (const p of paths) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not here; try the next place
    }
  }
  return undefined;
}

/** A TCP port that was free a moment ago (the server binds it right after). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function config(dir: string, port: number, opts: NginxOptions): string {
  const root = `${dir}/root`;
  // nginx's `if` cannot compare against a literal containing spaces without quoting; the
  // token is test-generated, so quoting it is enough.
  const auth = opts.token ? `if ($http_authorization != "Bearer ${opts.token}") { return 401; }` : "";
  // One process, no daemon: it stays our child (so stop() can end it) and never switches to
  // another user who could not write the private temp directory.
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    ${auth}
    location /fail500/ { return 500; }
    location /slow/ { alias ${root}/; limit_rate 8; }
    location / {
      root ${root};
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw;
    }
  }
}
`;
}

/**
 * Starts nginx on a free loopback port.
 *
 * @example
 * ```ts ignore
 * const nginx = await startNginx();
 * await fetch(`${nginx.url}/cas/abc`, { method: "PUT", body: "x" });
 * await nginx.stop();
 * ```
 */
export async function startNginx(opts: NginxOptions = {}): Promise<Nginx> {
  const bin = findBinary(["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]);
  if (!bin) throw new Error("nginx is not installed (run `deno task setup --tests` as root)");
  const dir = Deno.makeTempDirSync({ prefix: "graddrop-nginx-" });
  Deno.mkdirSync(`${dir}/root`);
  const { url, stop } = await spawnOnFreePort("nginx", dir, `${dir}/error.log`, (port) => {
    Deno.writeTextFileSync(`${dir}/nginx.conf`, config(dir, port, opts));
    return new Deno.Command(bin, {
      args: ["-p", `${dir}/`, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  });
  return { url, root: `${dir}/root`, accessLog: `${dir}/access.log`, stop };
}

/**
 * Runs a server that `spawn(port)` starts (writing its config for that port first) until it
 * answers on 127.0.0.1; another process may take the port between {@link freePort} and the
 * server's bind, so a few ports are tried. `stop()` ends the server and removes `dir`. When none
 * answers, `dir` is removed and the error names the server with its `errorLog`.
 */
export async function spawnOnFreePort(
  name: string,
  dir: string,
  errorLog: string,
  spawn: (port: number) => Deno.ChildProcess,
): Promise<{ url: string; stop(): Promise<void> }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    const child = spawn(port);
    const url = `http://127.0.0.1:${port}`;
    if (await answers(url, child)) {
      return {
        url,
        stop: async () => {
          child.kill("SIGTERM");
          await child.status;
          Deno.removeSync(dir, { recursive: true });
        },
      };
    }
    try {
      child.kill("SIGKILL");
    } catch {
      // it already exited (e.g. the port was taken)
    }
    await child.status;
  }
  let log = "";
  try {
    log = Deno.readTextFileSync(errorLog);
  } catch {
    // it stopped before writing its log
  }
  Deno.removeSync(dir, { recursive: true });
  throw new Error(`${name} did not start:\n${log}`);
}

/** Polls until the server accepts connections (up to ~5 s), or it exits. */
async function answers(url: string, child: Deno.ChildProcess): Promise<boolean> {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 50 && !exited; i++) {
    try {
      const r = await fetch(`${url}/`, { method: "HEAD", signal: AbortSignal.timeout(500) });
      await r.body?.cancel();
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return false;
}
