/**
 * Test harness: a real Apache httpd 2.4 serving WebDAV PUT/GET/HEAD (mod_dav, mod_dav_fs) on
 * 127.0.0.1, with every file it writes (pid, logs, lock database) under one temporary
 * directory. `deno task setup --tests` installs it (`apache2`) on Debian when run as root.
 *
 * It is configured to refuse what S3 and MinIO refuse: a request whose body is chunked (no
 * Content-Length) is answered 411 Length Required, by a mod_rewrite rule of ours; Apache itself
 * accepts chunked uploads, as do nginx, lighttpd and s3rver. The access log records each
 * request's Content-Length, so a test can check every upload carried one.
 *
 * WebDAV does not create a missing collection on PUT (409 Conflict) and the client does not
 * MKCOL, so `ac/` and `cas/` are created in the root here, as whoever hosts the cache would.
 * @module
 */
import { findBinary, spawnOnFreePort } from "./nginx.ts";

/** A running Apache; `stop()` ends it and removes its directory. */
export interface Apache {
  /** Base URL of the cache, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Directory Apache serves and stores PUT files in (`ac/`, `cas/` are under it). */
  root: string;
  /**
   * The access log: one line per request, `"PUT /cas/... HTTP/1.1" 201 1234`, the last field the
   * request's Content-Length (`-` when it had none). A line is written just after its answer.
   */
  accessLog: string;
  stop(): Promise<void>;
}

const MODULES = "/usr/lib/apache2/modules";

/** uid and gid of `user` from /etc/passwd, if it has one. */
function ids(user: string): { uid: number; gid: number } | undefined {
  for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === user) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

function config(dir: string, port: number, user: string | undefined): string {
  const root = `${dir}/root`;
  // One child process with a few threads is plenty for a test and light on a shared machine.
  // Started as root, Apache serves as `User` (it refuses to serve as root); otherwise as whoever
  // started it.
  return `
ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${dir}/apache.pid
ErrorLog ${dir}/error.log
${user ? `User ${user}\nGroup ${user}` : ""}
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule dav_module ${MODULES}/mod_dav.so
LoadModule dav_fs_module ${MODULES}/mod_dav_fs.so
LoadModule rewrite_module ${MODULES}/mod_rewrite.so
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 32
LogFormat "\\"%r\\" %>s %{Content-Length}i" cache
CustomLog ${dir}/access.log cache
DAVLockDB ${dir}/lock/db
DocumentRoot ${root}
RewriteEngine On
RewriteCond %{HTTP:Transfer-Encoding} chunked [NC]
RewriteRule ^ - [R=411,L]
<Directory ${root}>
  Dav On
  Require all granted
</Directory>
`;
}

/**
 * Starts Apache on a free loopback port.
 *
 * @example
 * ```ts ignore
 * const apache = await startApache();
 * await fetch(`${apache.url}/cas/abc`, { method: "PUT", body: "x" }); // 201
 * await apache.stop();
 * ```
 */
export async function startApache(): Promise<Apache> {
  const bin = findBinary(["/usr/sbin/apache2"]);
  if (!bin) throw new Error("apache2 is not installed (run `deno task setup --tests` as root)");
  const dir = Deno.makeTempDirSync({ prefix: "graddrop-apache-" });
  for (const sub of ["root", "root/ac", "root/cas", "lock"]) Deno.mkdirSync(`${dir}/${sub}`);
  // As root, the serving process is www-data (the user Debian's package runs Apache as): it
  // must pass through the private directory and write the cache and the lock database.
  const user = Deno.uid() === 0 ? "www-data" : undefined;
  if (user) {
    const owner = ids(user);
    if (!owner) throw new Error(`no user ${user} to run Apache as (Debian's apache2 package creates it)`);
    Deno.chmodSync(dir, 0o711);
    for (const sub of ["root", "root/ac", "root/cas", "lock"]) {
      Deno.chownSync(`${dir}/${sub}`, owner.uid, owner.gid);
    }
  }
  const { url, stop } = await spawnOnFreePort("apache2", dir, `${dir}/error.log`, (port) => {
    Deno.writeTextFileSync(`${dir}/apache.conf`, config(dir, port, user));
    // In the foreground it stays our child, so stop() can end it (and its worker with it).
    return new Deno.Command(bin, {
      args: ["-f", `${dir}/apache.conf`, "-D", "FOREGROUND"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  });
  return { url, root: `${dir}/root`, accessLog: `${dir}/access.log`, stop };
}
