/**
 * The remote cache through the CLI, against a real nginx: a warm remote saves all the work,
 * a corrupt or dead one costs only the work, the token stays secret, and a fanned-out run
 * computes each instance exactly once.
 */
import assert from "node:assert/strict";
import { cli, statuses, tempDir, writeTestProject } from "./helpers.ts";
import { startNginx } from "./nginx.ts";

function project(counter: string): string {
  return writeTestProject(`
      a:
        uses: test/write
        with: {text: A, counter_dir: ${counter}}
      ft:
        uses: test/write
        needs: [a]
        matrix: {n: [1, 2, 3]}
        with: {text: F, counter_dir: ${counter}}
      fan:
        uses: test/write
        needs: [ft]
        with: {text: Z, counter_dir: ${counter}}
`);
}

const runs = (counter: string) => [...Deno.readDirSync(counter)].map((e) => e.name.split(".")[0]).sort();

function outputs(home: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of Deno.readDirSync(`${home}/store`)) {
    out.set(e.name, Deno.readTextFileSync(`${home}/store/${e.name}/out/value.txt`));
  }
  return out;
}

Deno.test("remote (CLI): an empty store with a warm remote recomputes nothing and gets the same bytes", async () => {
  const nginx = await startNginx();
  try {
    const counter = tempDir();
    const file = project(counter);
    const first = await cli(
      ["run", "--config", file, "--json", "--remote", nginx.url, "--remote-push"],
      `${tempDir()}/a`,
    );
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(
      [(first.json!.remote as { pushed: number }).pushed, (first.json!.remote as { failed: number }).failed],
      [5, 0],
      first.stderr,
    );
    const computed = runs(counter).length;
    const homeB = `${tempDir()}/b`;
    const second = await cli(["run", "--config", file, "--json", "--remote", nginx.url], homeB);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(Object.values(statuses(second)).every((s) => s === "remote"), second.stderr);
    assert.match(second.stderr, /\[a\] cached \(remote\)/);
    assert.equal(runs(counter).length, computed, "nothing recomputed");
    const homeA = `${tempDir()}/a2`;
    await cli(["run", "--config", file, "--remote", nginx.url], homeA);
    assert.deepEqual(outputs(homeB), outputs(homeA));
    const status = await cli(["status", "--config", file, "--remote", nginx.url], `${tempDir()}/c`);
    assert.match(status.stdout, /cached \(remote\) {2}fan/);
  } finally {
    await nginx.stop();
  }
});

Deno.test("remote (CLI): a corrupted blob is refused and recomputed; a dead server only costs the work", async () => {
  const nginx = await startNginx();
  try {
    const counter = tempDir();
    const file = project(counter);
    await cli(["run", "--config", file, "--remote", nginx.url, "--remote-push"], `${tempDir()}/a`);
    for (const e of Deno.readDirSync(`${nginx.root}/cas`)) {
      const p = `${nginx.root}/cas/${e.name}`;
      const bytes = Deno.readFileSync(p);
      bytes[0] ^= 1;
      Deno.writeFileSync(p, bytes);
    }
    const r = await cli(["run", "--config", file, "--json", "--remote", nginx.url], `${tempDir()}/b`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statuses(r).a, "ran");
    assert.match(r.stderr, /remote: entry [0-9a-f]{64}: refused: file value\.txt/);
  } finally {
    await nginx.stop();
  }
  const dead = `http://127.0.0.1:${
    (() => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const p = (l.addr as Deno.NetAddr).port;
      l.close();
      return p;
    })()
  }`;
  const t0 = performance.now();
  const r = await cli(
    ["run", "--config", project(tempDir()), "--json", "--remote", dead, "--remote-push"],
    `${tempDir()}/d`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Object.values(statuses(r)).every((s) => s === "ran"));
  assert.ok(performance.now() - t0 < 60000);
});

Deno.test("remote (CLI): the token never appears in output or in any file", async () => {
  const token = `secret-${crypto.randomUUID()}`;
  const nginx = await startNginx({ token });
  try {
    const home = `${tempDir()}/a`;
    const env = { GRADDROP_REMOTE_TOKEN: token };
    const file = project(tempDir());
    const r = await cli(
      ["run", "--config", file, "--json", "--remote", nginx.url, "--remote-push"],
      home,
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const again = await cli(
      ["run", "--config", file, "--json", "--remote", nginx.url],
      `${tempDir()}/b`,
      env,
    );
    assert.ok(Object.values(statuses(again)).every((s) => s === "remote"), "the token let it in");
    for (const text of [r.stdout, r.stderr, again.stdout, again.stderr]) assert.ok(!text.includes(token));
    const grep = new Deno.Command("grep", { args: ["-rl", token, home, nginx.root] }).outputSync();
    assert.equal(new TextDecoder().decode(grep.stdout), "", "no file holds the token");
  } finally {
    await nginx.stop();
  }
});

Deno.test("remote (CLI): three fanned-out processes and a fan-in compute each instance exactly once", async () => {
  const nginx = await startNginx();
  try {
    const counter = tempDir();
    const file = project(counter);
    const base = await cli(
      ["run", "--config", file, "--only", "a", "--remote", nginx.url, "--remote-push"],
      `${tempDir()}/h0`,
    );
    assert.equal(base.code, 0, base.stderr);
    const fanned = await Promise.all(
      [1, 2, 3].map((n) =>
        cli(
          ["run", "--config", file, "--only", `ft[n=${n}]`, "--remote", nginx.url, "--remote-push"],
          `${tempDir()}/h${n}`,
        )
      ),
    );
    for (const r of fanned) assert.equal(r.code, 0, r.stderr);
    const fanIn = await cli(
      ["run", "--config", file, "--json", "--remote", nginx.url, "--remote-push"],
      `${tempDir()}/h4`,
    );
    assert.equal(fanIn.code, 0, fanIn.stderr);
    assert.deepEqual(statuses(fanIn), {
      a: "remote",
      "ft[n=1]": "remote",
      "ft[n=2]": "remote",
      "ft[n=3]": "remote",
      fan: "ran",
    });
    assert.deepEqual(runs(counter), ["a", "fan", "ft[n=1]", "ft[n=2]", "ft[n=3]"]);
  } finally {
    await nginx.stop();
  }
});
