import assert from "node:assert/strict";
import { dirname } from "node:path";
import { sha256 } from "../pipeline/hash.ts";
import { hashTree, listTree, Store } from "../pipeline/store.ts";
import type { Manifest } from "../pipeline/types.ts";
import { RemoteCache, type RemoteOptions } from "../pipeline/remote.ts";
import { remoteFromEnv } from "../pipeline/remote_config.ts";
import { ConfigError } from "../pipeline/errors.ts";
import { freePort, type Nginx, startNginx } from "./nginx.ts";
import { truncatingServer } from "./truncating_server.ts";
import { tempDir } from "./helpers.ts";

const TOKEN = `tok-${crypto.randomUUID()}`;
const TOKENIZER = JSON.stringify({ model: { vocab: { a: 0, b: 1 } } });
const BIG = crypto.getRandomValues(new Uint8Array(48 * 1024));

/** Output files of the demo entry: a duplicated file, an empty one, a nested binary. */
function demoFiles(text = "A1"): Record<string, string | Uint8Array> {
  return {
    "value.txt": text,
    "tokenizer.json": TOKENIZER,
    "checkpoint/tokenizer.json": TOKENIZER,
    "checkpoint/weights.bin": BIG,
    "empty.txt": "",
  };
}

/** Commits an entry with `files` under `key` (fresh if not given) into `store`. */
async function makeEntry(
  store: Store,
  files = demoFiles(),
  key = sha256(crypto.randomUUID()),
): Promise<string> {
  const tmp = store.tmp(key);
  for (const [path, data] of Object.entries(files)) {
    Deno.mkdirSync(dirname(`${tmp}/out/${path}`), { recursive: true });
    if (typeof data === "string") Deno.writeTextFileSync(`${tmp}/out/${path}`, data);
    else Deno.writeFileSync(`${tmp}/out/${path}`, data);
  }
  const tree = await hashTree(`${tmp}/out`);
  const now = new Date().toISOString();
  const manifest: Manifest = {
    key,
    id: "demo[seed=1]",
    stage: "demo",
    type: "test/write",
    pipeline: "demo",
    params: { text: "A", seed: 1 },
    inputs: {},
    code: { hash: "c0de", parts: { "stage.ts": "c0de" } },
    outputHash: tree.hash,
    files: tree.files,
    bytes: tree.bytes,
    deno: Deno.version.deno,
    started: now,
    finished: now,
    seconds: 0.5,
  };
  store.commit(tmp, manifest, tree.list);
  return key;
}

/** A cache client that records its warnings. */
function client(url: string, opts: Partial<RemoteOptions> = {}): { remote: RemoteCache; warnings: string[] } {
  const warnings: string[] = [];
  return {
    remote: new RemoteCache({
      url,
      timeoutMs: 2000,
      deadlineMs: 8000,
      warn: (l) => warnings.push(l),
      ...opts,
    }),
    warnings,
  };
}

function emptyStore(): Store {
  return new Store(tempDir());
}

/** Nothing of the entry (nor a leftover temp dir) reached the store. */
function assertNothingEntered(store: Store, key: string): void {
  assert.equal(store.manifest(key), undefined);
  assert.deepEqual([...Deno.readDirSync(`${store.home}/store`)], []);
  assert.deepEqual([...Deno.readDirSync(`${store.home}/tmp`)], []);
}

async function assertSameEntry(a: Store, b: Store, key: string): Promise<void> {
  assert.deepEqual(b.manifest(key), a.manifest(key));
  assert.deepEqual(await listTree(`${b.entry(key)}/out`), await listTree(`${a.entry(key)}/out`));
  assert.deepEqual(await hashTree(`${b.entry(key)}/out`), await hashTree(`${a.entry(key)}/out`));
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.isFile && new TextDecoder().decode(Deno.readFileSync(p)).includes(needle)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

/** Runs `fn` against a fresh nginx, stopped afterwards whatever happens. */
function withNginx(name: string, fn: (nginx: Nginx) => Promise<void>, token?: string): void {
  Deno.test({
    name: `remote: ${name}`,
    // Fails (saying how to install nginx) rather than skipping: set-up installs it for the tests.
    fn: async () => {
      const nginx = await startNginx({ token });
      try {
        await fn(nginx);
      } finally {
        await nginx.stop();
      }
    },
  });
}

/** Runs `fn` and returns how long it took in seconds. */
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, (performance.now() - t0) / 1000];
}

withNginx(
  "push then fetch into an empty store is byte-identical; identical files are stored once",
  async (nginx) => {
    const a = emptyStore(), b = emptyStore();
    const key = await makeEntry(a);
    const { remote, warnings } = client(nginx.url);
    await remote.pushEntry(key, a);
    // 5 files, 4 distinct contents (the two tokenizer.json are one blob).
    assert.equal([...Deno.readDirSync(`${nginx.root}/cas`)].length, 4);
    assert.deepEqual(await remote.manifest(key), a.manifest(key));
    assert.equal(await remote.fetchEntry(key, b), "hit");
    await assertSameEntry(a, b, key);
    assert.deepEqual(
      Deno.readFileSync(`${b.entry(key)}/out/checkpoint/weights.bin`),
      Deno.readFileSync(`${a.entry(key)}/out/checkpoint/weights.bin`),
    );
    assert.deepEqual([...Deno.readDirSync(`${b.home}/tmp`)], []);
    assert.deepEqual(warnings, []);
  },
);

withNginx(
  "the record is uploaded after its blobs, and a second push finds it and uploads nothing",
  async (nginx) => {
    const a = emptyStore();
    const key = await makeEntry(a);
    const { remote, warnings } = client(nginx.url);
    const pushed = await remote.pushEntry(key, a);
    assert.equal(pushed.status, "pushed");
    // nginx logs a request just after answering it: wait (briefly) for the expected lines.
    const puts = async (expected: number) => {
      let lines: string[] = [];
      for (let i = 0; i < 20 && lines.length < expected; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 100));
        lines = Deno.readTextFileSync(nginx.accessLog).split("\n").filter((l) => l.includes('"PUT '));
      }
      return lines;
    };
    const first = await puts(5);
    assert.equal(first.length, 5);
    assert.match(first.at(-1)!, new RegExp(`"PUT /ac/${key} `));
    assert.deepEqual(await remote.pushEntry(key, a), { status: "present", blobs: 0, bytes: 0 });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await puts(5)).length, 5, "the record is there: nothing is written again");
    assert.deepEqual(warnings, []);
  },
);

withNginx("an unknown key is a quiet miss", async (nginx) => {
  const { remote, warnings } = client(nginx.url);
  const store = emptyStore();
  assert.equal(await remote.fetchEntry(sha256("nothing"), store), "miss");
  assert.equal(await remote.manifest(sha256("nothing")), undefined);
  assert.deepEqual(warnings, []);
  assert.equal(remote.available, true);
});

withNginx("a corrupted blob on the server is refused, named, and nothing enters the store", async (nginx) => {
  const a = emptyStore(), b = emptyStore();
  const key = await makeEntry(a);
  const { remote, warnings } = client(nginx.url);
  await remote.pushEntry(key, a);
  const sha = sha256("A1");
  // Same length, different bytes: only the hash can tell.
  Deno.writeTextFileSync(`${nginx.root}/cas/${sha}`, "B1");
  assert.equal(await remote.fetchEntry(key, b), "miss");
  assertNothingEntered(b, key);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    new RegExp(`entry ${key}: refused: file value\\.txt: blob ${sha} has the content of`),
  );
  // A bad entry is not a bad server: the client keeps using it.
  assert.equal(remote.available, true);
});

withNginx("a blob of the wrong size is refused, and the next push repairs it", async (nginx) => {
  const a = emptyStore(), b = emptyStore();
  const key = await makeEntry(a);
  const { remote, warnings } = client(nginx.url);
  await remote.pushEntry(key, a);
  const sha = sha256(BIG);
  Deno.writeFileSync(`${nginx.root}/cas/${sha}`, BIG.subarray(0, 1000));
  assert.equal(await remote.fetchEntry(key, b), "miss");
  assert.match(warnings[0], /file checkpoint\/weights\.bin: blob \w+ sent 1000 bytes, expected 49152/);
  assertNothingEntered(b, key);
  await remote.pushEntry(key, a);
  assert.equal(await remote.fetchEntry(key, b), "hit");
  await assertSameEntry(a, b, key);
});

withNginx("a record that lies or escapes the entry directory is refused", async (nginx) => {
  const a = emptyStore();
  const key = await makeEntry(a);
  const { remote, warnings } = client(nginx.url);
  await remote.pushEntry(key, a);
  const record = JSON.parse(Deno.readTextFileSync(`${nginx.root}/ac/${key}`));
  const tampered = (change: (r: typeof record) => void) => {
    const r = structuredClone(record);
    change(r);
    return JSON.stringify(r);
  };
  const cases: [string, string, RegExp][] = [
    [
      "escape",
      tampered((r) => r.files[0].path = "../../escaped.txt"),
      /files\.0\.path: expected a relative path/,
    ],
    [
      "absolute",
      tampered((r) => r.files[0].path = "/tmp/abs.txt"),
      /files\.0\.path: expected a relative path/,
    ],
    ["other key", tampered((r) => r.manifest.key = sha256("other")), /its manifest is for key/],
    [
      "tree hash",
      tampered((r) => r.treeHash = r.manifest.outputHash = sha256("x")),
      /its files do not add up to its output hash/,
    ],
    ["new layout", tampered((r) => r.version = 2), /version/],
    ["not JSON", `{"version": 1, "key": "${key}", "files": [`, /bad record: not JSON/],
  ];
  for (const [name, text, expected] of cases) {
    Deno.writeTextFileSync(`${nginx.root}/ac/${key}`, text);
    const b = emptyStore();
    assert.equal(await remote.fetchEntry(key, b), "miss", name);
    assertNothingEntered(b, key);
    assert.match(warnings.pop() ?? "", expected, name);
  }
  assert.deepEqual(warnings, []);
});

Deno.test("remote: a dead server is a quick miss with one warning, then is not asked again", async () => {
  const { remote, warnings } = client(`http://127.0.0.1:${freePort()}`);
  const store = emptyStore();
  const [first, seconds] = await timed(() => remote.fetchEntry(sha256("k"), store));
  assert.equal(first, "miss");
  assert.ok(seconds < 10, `took ${seconds} s`);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /^remote: entry \w+: cache unavailable \(GET ac\/\w+: .*Connection refused.*\); going on without it/,
  );
  assert.equal(remote.available, false);
  assert.equal(await remote.fetchEntry(sha256("k2"), store), "miss");
  const a = emptyStore();
  await remote.pushEntry(await makeEntry(a), a);
  assert.equal(warnings.length, 1, "no more warnings once the server is known to be down");
});

withNginx("a slow server is a miss within the per-request timeout", async (nginx) => {
  const a = emptyStore(), b = emptyStore();
  const key = await makeEntry(a);
  await client(nginx.url).remote.pushEntry(key, a);
  const { remote, warnings } = client(`${nginx.url}/slow`, { timeoutMs: 1000 });
  const [result, seconds] = await timed(() => remote.fetchEntry(key, b));
  assert.equal(result, "miss");
  assert.ok(seconds < 5, `took ${seconds} s`);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /no complete answer within 1 s/);
  assertNothingEntered(b, key);
});

withNginx("a slow server is a miss within the total deadline", async (nginx) => {
  const a = emptyStore(), b = emptyStore();
  const key = await makeEntry(a);
  await client(nginx.url).remote.pushEntry(key, a);
  const { remote, warnings } = client(`${nginx.url}/slow`, { timeoutMs: 60_000, deadlineMs: 1500 });
  const [result, seconds] = await timed(() => remote.fetchEntry(key, b));
  assert.equal(result, "miss");
  assert.ok(seconds < 5, `took ${seconds} s`);
  assert.match(warnings[0], /no complete transfer within the total deadline of 1.5 s/);
  assertNothingEntered(b, key);
});

withNginx("HTTP 500 is a quick miss with one warning; a push to it warns and returns", async (nginx) => {
  const a = emptyStore(), b = emptyStore();
  const key = await makeEntry(a);
  const fetching = client(`${nginx.url}/fail500`);
  const [result, seconds] = await timed(() => fetching.remote.fetchEntry(key, b));
  assert.equal(result, "miss");
  assert.ok(seconds < 10, `took ${seconds} s`);
  assert.deepEqual(fetching.warnings.length, 1);
  assert.match(fetching.warnings[0], /HTTP 500/);
  const pushing = client(`${nginx.url}/fail500`);
  await pushing.remote.pushEntry(key, a);
  assert.match(pushing.warnings[0], /HEAD ac\/\w+: HTTP 500/);
  assertNothingEntered(b, key);
});

withNginx("a truncated body is a miss", async (nginx) => {
  const a = emptyStore(), b = emptyStore();
  const key = await makeEntry(a);
  await client(nginx.url).remote.pushEntry(key, a);
  const server = truncatingServer(nginx.root);
  try {
    const { remote, warnings } = client(server.url);
    const [result, seconds] = await timed(() => remote.fetchEntry(key, b));
    assert.equal(result, "miss");
    assert.ok(seconds < 10, `took ${seconds} s`);
    assert.equal(warnings.length, 1);
    assertNothingEntered(b, key);
  } finally {
    await server.stop();
  }
});

withNginx("the token is sent, and never printed nor written to any file", async (nginx) => {
  const a = emptyStore(), b = emptyStore();
  const key = await makeEntry(a);
  const { remote, warnings } = client(nginx.url, { token: TOKEN });
  await remote.pushEntry(key, a);
  assert.equal(await remote.fetchEntry(key, b), "hit");
  await assertSameEntry(a, b, key);
  // Without it the server refuses: the token really went over the wire.
  const anonymous = client(nginx.url);
  assert.equal(await anonymous.remote.fetchEntry(key, emptyStore()), "miss");
  assert.match(anonymous.warnings[0], /HTTP 401/);
  // An error whose text carries the token (here, in the URL) is redacted.
  const dead = client(`http://127.0.0.1:${freePort()}/${TOKEN}`, { token: TOKEN });
  assert.equal(await dead.remote.fetchEntry(key, emptyStore()), "miss");
  const proxied = client(`http://user:${TOKEN}@127.0.0.1:${freePort()}`, { token: TOKEN });
  assert.equal(await proxied.remote.fetchEntry(key, emptyStore()), "miss");
  const printed = [...warnings, ...dead.warnings, ...proxied.warnings];
  assert.equal(printed.length, 2);
  for (const w of printed) assert.ok(!w.includes(TOKEN), w);
  for (const dir of [a.home, b.home, nginx.root]) assert.deepEqual(filesContaining(dir, TOKEN), []);
}, TOKEN);

withNginx("two concurrent pushes of the same key leave a valid entry", async (nginx) => {
  for (let round = 0; round < 3; round++) {
    const key = sha256(`shared-${round}`);
    // A stage need not be deterministic: the two runs computed different bytes for one key.
    const a = emptyStore(), b = emptyStore(), c = emptyStore();
    await makeEntry(a, demoFiles(`from a ${round}`), key);
    await makeEntry(b, { ...demoFiles(`from b ${round}`), "b-only.txt": "b" }, key);
    const { remote, warnings } = client(nginx.url);
    await Promise.all([remote.pushEntry(key, a), client(nginx.url).remote.pushEntry(key, b)]);
    // Two runs fetching it into one store at once: the first commit wins, both hit.
    assert.deepEqual(
      await Promise.all([remote.fetchEntry(key, c), client(nginx.url).remote.fetchEntry(key, c)]),
      ["hit", "hit"],
    );
    assert.deepEqual([...Deno.readDirSync(`${c.home}/tmp`)], []);
    const winner = c.manifest(key)!.outputHash === a.manifest(key)!.outputHash ? a : b;
    await assertSameEntry(winner, c, key);
    assert.deepEqual(warnings, []);
  }
});

Deno.test("remote config: flags win over the environment; push is off by default", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(remoteFromEnv({}, env({})), undefined);
  assert.equal(remoteFromEnv({}, env({ GRADDROP_REMOTE: "", GRADDROP_REMOTE_PUSH: "1" })), undefined);
  assert.deepEqual(
    remoteFromEnv({}, env({ GRADDROP_REMOTE: "http://h:1/c/", GRADDROP_REMOTE_TOKEN: "t" })),
    { url: "http://h:1/c", token: "t", push: false, requirePush: false },
  );
  assert.deepEqual(
    remoteFromEnv({ remote: "https://x", "remote-push": true }, env({ GRADDROP_REMOTE: "http://h:1" })),
    { url: "https://x", token: undefined, push: true, requirePush: false },
  );
  assert.equal(remoteFromEnv({ remote: "https://x", "remote-push": "require" }, env({}))?.requirePush, true);
  assert.equal(remoteFromEnv({ remote: "https://x", "remote-push": "" }, env({}))?.requirePush, false);
  assert.equal(
    remoteFromEnv({}, env({ GRADDROP_REMOTE: "http://h", GRADDROP_REMOTE_PUSH: "require" }))?.requirePush,
    true,
  );
  assert.throws(() => remoteFromEnv({ remote: "https://x", "remote-push": "always" }, env({})), ConfigError);
  assert.equal(
    remoteFromEnv({}, env({ GRADDROP_REMOTE: "http://h", GRADDROP_REMOTE_PUSH: "1" }))?.push,
    true,
  );
  assert.throws(() => remoteFromEnv({ "remote-push": true }, env({})), ConfigError);
  assert.throws(
    () => remoteFromEnv({ remote: "ftp://u:secret@h" }, env({})),
    (e: Error) => e instanceof ConfigError && !e.message.includes("secret"),
  );
  assert.throws(() => remoteFromEnv({}, env({ GRADDROP_REMOTE: "http://h", GRADDROP_REMOTE_PUSH: "maybe" })));
});
