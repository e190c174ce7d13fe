/**
 * Locks and temp dirs on a store several hosts share: an owner is judged exactly on its own
 * host (pid + start time), by its heartbeat from another host.
 */
import assert from "node:assert/strict";
import { ownerTag, self, tryLock } from "../pipeline/lock.ts";
import { collectGarbage, Store } from "../pipeline/store.ts";
import { tempDir } from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pid that existed a moment ago and is gone now. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("lock: this host's owner is judged by pid and start time", async () => {
  const path = `${tempDir()}/k.lock`;
  Deno.writeTextFileSync(path, JSON.stringify({ ...self(), pid: await deadPid() }));
  const release = tryLock(path);
  assert.ok(release, "a lock of a process that is gone is taken over");
  release();
  // A live pid that started at another time is a reused pid, not the owner.
  Deno.writeTextFileSync(path, JSON.stringify({ ...self(), start: self().start + 1 }));
  const again = tryLock(path);
  assert.ok(again, "a reused pid does not keep the lock");
  assert.equal(tryLock(path), undefined, "a live owner keeps it");
  again();
});

Deno.test("lock: another host's lock is stale only once its heartbeat stops for the lease", async () => {
  const path = `${tempDir()}/k.lock`;
  const theirs = JSON.stringify({ host: "node17", boot: "b", pid: Deno.pid, start: 1, token: "t" });
  Deno.writeTextFileSync(path, theirs);
  const opts = { leaseMs: 400 };
  assert.equal(tryLock(path, opts), undefined, "first sight: not stale");
  for (let i = 0; i < 4; i++) {
    await sleep(150);
    Deno.utimeSync(path, new Date(), new Date(Date.now() + i * 1000)); // their heartbeat
    assert.equal(tryLock(path, opts), undefined, `heartbeat ${i} keeps it`);
  }
  await sleep(150);
  assert.equal(tryLock(path, opts), undefined, "silent for less than the lease");
  await sleep(300);
  const release = tryLock(path, opts);
  assert.ok(release, "silent for longer than the lease: taken over");
  assert.notEqual(Deno.readTextFileSync(path), theirs);
  release();
});

Deno.test("lock: the holder's heartbeat moves the mtime; release leaves a lock it lost alone", async () => {
  const path = `${tempDir()}/k.lock`;
  const release = tryLock(path, { heartbeatMs: 40 })!;
  const old = new Date(Date.now() - 3600e3);
  Deno.utimeSync(path, old, old);
  await sleep(150);
  assert.ok(Deno.statSync(path).mtime!.getTime() > old.getTime() + 1000, "heartbeat refreshed the lock");
  Deno.writeTextFileSync(path, "someone else's");
  release();
  assert.equal(Deno.readTextFileSync(path), "someone else's");
});

Deno.test("gc: keeps temp dirs of live and other hosts' processes, removes those of dead ones", async () => {
  const store = new Store(tempDir());
  const mine = store.tmp("k1");
  const dead = `${store.home}/tmp/k2.${(await deadPid())}-${self().start}-${ownerTag().split("-")[2]}.abcd`;
  const elsewhere = `${store.home}/tmp/k3.${Deno.pid}-1-0badc0de.abcd`;
  const stale = `${store.home}/tmp/k4.${Deno.pid}-1-0badc0de.ef01`;
  for (const d of [dead, elsewhere, stale]) Deno.mkdirSync(d);
  const longAgo = new Date(Date.now() - 3 * 86400e3);
  Deno.utimeSync(stale, longAgo, longAgo);
  collectGarbage(store, new Set(), false);
  const left = [...Deno.readDirSync(`${store.home}/tmp`)].map((e) => `${store.home}/tmp/${e.name}`).sort();
  assert.deepEqual(left, [mine, elsewhere].sort());
});
