/**
 * The build log: what each run keyed and how long stages took. `runs/<pipeline>.json` holds
 * the latest key parts per instance (so `status` can explain a change), `history/` one
 * record per run (the keys `gc` must keep), `timings.json` the last duration per stage
 * (for ETAs and the stall watchdog).
 * @module
 */
import { readJson, writeJsonAtomic } from "./json_file.ts";
import type { KeyParts } from "./types.ts";
import { ownerTag } from "./lock.ts";

/** Latest key parts per instance id. */
export type LatestParts = Record<string, KeyParts & { key: string }>;

/** One run, as `gc` reads it. */
export interface RunRecord {
  pipeline: string;
  /** ISO time the run finished. */
  finished: string;
  /** Instance id -> key it used (ran, cached or fetched). */
  keys: Record<string, string>;
}

/** Reads and writes the records under one store home. */
export class BuildLog {
  constructor(readonly home: string) {
    Deno.mkdirSync(`${home}/runs`, { recursive: true });
    Deno.mkdirSync(`${home}/history`, { recursive: true });
  }

  /** The key parts each instance of `pipeline` had when it last ran. */
  latest(pipeline: string): LatestParts {
    return readJson<LatestParts>(`${this.home}/runs/${pipeline}.json`, {});
  }

  /** Records a finished run: merges its key parts into the latest, and adds a history entry. */
  record(pipeline: string, parts: LatestParts): void {
    writeJsonAtomic(`${this.home}/runs/${pipeline}.json`, { ...this.latest(pipeline), ...parts });
    const rec: RunRecord = {
      pipeline,
      finished: new Date().toISOString(),
      keys: Object.fromEntries(Object.entries(parts).map(([id, p]) => [id, p.key])),
    };
    const stamp = rec.finished.replace(/[:.]/g, "-");
    writeJsonAtomic(`${this.home}/history/${stamp}-${ownerTag()}.json`, rec);
  }

  /** Every run record, with its file name (for removal by age). */
  history(): { file: string; record: RunRecord }[] {
    const out: { file: string; record: RunRecord }[] = [];
    for (const e of Deno.readDirSync(`${this.home}/history`)) {
      if (!e.name.endsWith(".json")) continue;
      const file = `${this.home}/history/${e.name}`;
      const record = readJson<RunRecord | null>(file, null);
      if (record) out.push({ file, record });
    }
    return out;
  }

  /**
   * Seconds the stage took last time (`sameStage`), else the last stage of its type took
   * (another pipeline's, with other parameters: a rough guide only).
   */
  eta(pipeline: string, stage: string, type: string): { seconds: number; sameStage: boolean } | undefined {
    const t = readJson<Record<string, number>>(`${this.home}/timings.json`, {});
    const own = t[`${pipeline}/${stage}`];
    if (own !== undefined) return { seconds: own, sameStage: true };
    return t[type] === undefined ? undefined : { seconds: t[type], sameStage: false };
  }

  /** Remembers how long a stage took. */
  saveTiming(pipeline: string, stage: string, type: string, seconds: number): void {
    const path = `${this.home}/timings.json`;
    const t = readJson<Record<string, number>>(path, {});
    t[`${pipeline}/${stage}`] = seconds;
    t[type] = seconds;
    writeJsonAtomic(path, t);
  }
}
