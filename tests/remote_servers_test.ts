/**
 * The remote cache against servers other than nginx: a strict GET/HEAD/PUT server that
 * refuses uploads without Content-Length (written here, `put_server.ts`); Apache httpd's WebDAV,
 * a server this project did not write, configured to refuse them as S3 does (`apache.ts`); and
 * s3rver, an S3 emulator from npm. Each, filled by one run, gives a run from an empty store
 * that recomputes nothing. A push that fails is counted and, with `--remote-push=require`,
 * fails the run.
 */
import assert from "node:assert/strict";
import S3rver from "s3rver";
import { cli, ROOT, statuses, tempDir, writeTestProject } from "./helpers.ts";
import { putServer } from "./put_server.ts";
import { startApache } from "./apache.ts";
import { RemoteCache } from "../pipeline/remote.ts";
import { Store } from "../pipeline/store.ts";

const STAGE = `${ROOT}/tests/fixtures/test_stages.ts`;

function project(counter: string): string {
  return writeTestProject(`
      a: {uses: test/write, with: {text: A, counter_dir: ${counter}, pad_bytes: 300000}}
      b: {uses: test/write, needs: [a], matrix: {n: [1, 2]}, with: {text: B, counter_dir: ${counter}}}
`);
}

interface RemoteSummary {
  fetched: number;
  pushed: number;
  present: number;
  failed: number;
  failures: { id: string; reason: string }[];
}

/** Fills the remote from one run, then runs from an empty store: all from the remote, nothing recomputed. */
async function warmRemoteRecomputesNothing(url: string): Promise<void> {
  const counter = tempDir();
  const file = project(counter);
  const first = await cli(
    ["run", "--config", file, "--json", "--remote", url, "--remote-push=require"],
    `${tempDir()}/a`,
  );
  assert.equal(first.code, 0, first.stderr);
  const pushed = first.json!.remote as RemoteSummary;
  assert.deepEqual([pushed.pushed, pushed.failed], [3, 0], first.stderr);
  assert.match(
    first.stderr,
    /^remote: 0 fetched, 3 pushed \(\d+ blobs, \d+ bytes\), 0 already there, 0 pushes failed$/m,
  );
  const computed = [...Deno.readDirSync(counter)].length;
  const second = await cli(["run", "--config", file, "--json", "--remote", url], `${tempDir()}/b`);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(Object.values(statuses(second)), ["remote", "remote", "remote"], second.stderr);
  assert.equal([...Deno.readDirSync(counter)].length, computed, "nothing recomputed");
  assert.equal((second.json!.remote as RemoteSummary).fetched, 3);
}

Deno.test("remote servers: a strict PUT server (411 without Content-Length) gives a warm remote", async () => {
  const server = putServer();
  try {
    // The server really is strict: a streamed (chunked) upload, what the client once sent, is refused.
    const file = `${tempDir()}/blob`;
    Deno.writeTextFileSync(file, "x".repeat(1000));
    const chunked = await fetch(`${server.url}/cas/probe`, {
      method: "PUT",
      body: (await Deno.open(file)).readable,
    });
    await chunked.body?.cancel();
    assert.equal(chunked.status, 411);
    await warmRemoteRecomputesNothing(server.url);
    assert.ok(
      !server.requests.some((r) => r.endsWith(" 411") && !r.includes("/cas/probe")),
      "no upload refused",
    );
  } finally {
    await server.stop();
  }
});

Deno.test("remote servers: Apache httpd mod_dav answering 411 to chunked bodies (as S3 does) gives a warm remote", async () => {
  const apache = await startApache();
  try {
    // The server really needs Content-Length: a streamed (chunked) upload is refused.
    const chunked = await fetch(`${apache.url}/cas/probe`, {
      method: "PUT",
      body: new Blob(["x".repeat(1000)]).stream(),
    });
    await chunked.body?.cancel();
    assert.equal(chunked.status, 411);
    await warmRemoteRecomputesNothing(apache.url);
    const puts = Deno.readTextFileSync(apache.accessLog).split("\n").filter((l) => l.startsWith('"PUT '));
    const uploads = puts.filter((l) => !l.includes("/cas/probe"));
    // 3 records after their blobs, every one stored (201, or 204 over a blob another entry
    // sent at the same moment) and every one sent with its length.
    assert.equal(uploads.filter((l) => l.startsWith('"PUT /ac/')).length, 3, puts.join("\n"));
    for (const line of uploads) assert.match(line, /^"PUT \/(ac|cas)\/\w+ HTTP\/1\.1" 20[14] \d+$/);
  } finally {
    await apache.stop();
  }
});

Deno.test("remote servers: s3rver (an S3 emulator from npm) gives a warm remote", async () => {
  const dir = tempDir();
  const s3 = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory: dir,
    configureBuckets: [{ name: "cache" }],
  });
  const { port } = await s3.run();
  try {
    await warmRemoteRecomputesNothing(`http://127.0.0.1:${port}/cache`);
  } finally {
    await s3.close();
  }
});

Deno.test("remote servers: a failed push is counted with its reason; --remote-push=require fails the run", async () => {
  const server = putServer({ readOnly: true });
  try {
    const file = project(tempDir());
    const soft = await cli(
      ["run", "--config", file, "--json", "--remote", server.url, "--remote-push"],
      `${tempDir()}/a`,
    );
    assert.equal(soft.code, 0, soft.stderr);
    const summary = soft.json!.remote as RemoteSummary;
    assert.equal(summary.failed, 3);
    assert.match(summary.failures[0].reason, /PUT cas\/\w+: HTTP 403/);
    assert.match(
      soft.stderr,
      /^remote: push of a failed: cache unavailable \(PUT cas\/\w+: HTTP 403 Forbidden\)$/m,
    );
    const strict = await cli(
      ["run", "--config", file, "--json", "--remote", server.url, "--remote-push=require"],
      `${tempDir()}/b`,
    );
    assert.equal(strict.code, 1, strict.stderr);
    assert.equal(strict.json!.ok, false);
    assert.match(strict.stderr, /--remote-push=require: a push failed, so the run fails/);
    assert.match(strict.stderr, /^FAILED: 3 ran/m);
  } finally {
    await server.stop();
  }
});

Deno.test("remote servers: a damaged remote entry is refused, recomputed, and repaired by the next push", async () => {
  const server = putServer();
  try {
    const file = project(tempDir());
    const filled = await cli(
      ["run", "--config", file, "--json", "--remote", server.url, "--remote-push"],
      `${tempDir()}/a`,
    );
    assert.equal(filled.code, 0, filled.stderr);
    // Same size, other bytes: a HEAD cannot tell, only the hash can.
    for (const e of Deno.readDirSync(`${server.root}/cas`)) {
      const p = `${server.root}/cas/${e.name}`;
      const bytes = Deno.readFileSync(p);
      bytes[0] ^= 1;
      Deno.writeFileSync(p, bytes);
    }
    const push = ["--remote", server.url, "--remote-push=require"];
    const repair = await cli(["run", "--config", file, "--json", ...push], `${tempDir()}/b`);
    assert.equal(repair.code, 0, repair.stderr);
    assert.equal(statuses(repair).a, "ran");
    assert.match(repair.stderr, /remote: entry \w+: refused: file value\.txt/);
    assert.equal((repair.json!.remote as RemoteSummary).pushed, 3, repair.stderr);
    const warm = await cli(["run", "--config", file, "--json", "--remote", server.url], `${tempDir()}/c`);
    assert.deepEqual(Object.values(statuses(warm)), ["remote", "remote", "remote"], warm.stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("remote servers: a request's time grows with its bytes: a slow, steady blob arrives", async () => {
  const server = putServer();
  const slow = putServer({ root: server.root, slow: true });
  try {
    const dir = tempDir();
    Deno.writeTextFileSync(
      `${dir}/pipelines.yaml`,
      `stage_types:\n  test/write: ${STAGE}\npipelines:\n  one:\n    stages:\n      a: {uses: test/write, with: {text: ${
        "x".repeat(40)
      }}}\n`,
    );
    const filled = await cli(
      ["run", "--config", `${dir}/pipelines.yaml`, "--json", "--remote", server.url, "--remote-push"],
      `${tempDir()}/a`,
    );
    assert.equal(filled.code, 0, filled.stderr);
    const key = filled.json!.stages[0].key!;
    // a's value.txt is 41 bytes: 2 s at 20 bytes/s, past a fixed 0.5 s, within 0.5 s + 41 B at 5 B/s.
    const warnings: string[] = [];
    const fixed = new RemoteCache({ url: slow.url, timeoutMs: 500, warn: (l) => warnings.push(l) });
    assert.equal(await fixed.fetchEntry(key, new Store(tempDir())), "miss");
    assert.match(warnings[0], /no complete answer within 0\.5 s/);
    const scaled = new RemoteCache({
      url: slow.url,
      timeoutMs: 500,
      minBytesPerSecond: 5,
      warn: (l) => warnings.push(l),
    });
    const store = new Store(tempDir());
    assert.equal(await scaled.fetchEntry(key, store), "hit", warnings.join("\n"));
    assert.equal(await store.check(key, "full"), undefined);
  } finally {
    await slow.stop();
    await server.stop();
  }
});
