import assert from "node:assert/strict";
import { diffCommand } from "../eval/diff_command.ts";
import type { ResultsDiff } from "../eval/results_diff.ts";
import { ConfigError } from "../pipeline/errors.ts";
import type { MetricRow } from "../eval/contracts.ts";
import { tempDir } from "./helpers.ts";
import { analyze } from "../eval/compare.ts";

type Accuracies = Record<string, Record<string, number>>;

/** Rows for two seeds, the given accuracy per (method, language) on seed 1, +0.02 on seed 2. */
function rows(acc: Accuracies): MetricRow[] {
  return Object.entries(acc).flatMap(([method, langs]) =>
    [1, 2].flatMap((seed) =>
      Object.entries(langs).map(([language, a]) => ({
        method,
        seed,
        language,
        split: language === "eng" ? "source" as const : "test" as const,
        accuracy: a + (seed - 1) * 0.02,
        f1: a,
      }))
    )
  );
}

/** A results folder with metrics.json and, when given, analysis.json. */
function results(acc: Accuracies, gains?: Record<string, [number, number]>): string {
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/metrics.json`, JSON.stringify({ rows: rows(acc) }));
  if (gains) {
    // The shape analysis/compare writes: gains in points, p Holm-adjusted.
    const comparisons = Object.entries(gains).map(([a, [g, p]]) => ({
      a,
      b: "full",
      gain: 100 * g,
      p,
      p_holm: p,
    }));
    Deno.writeTextFileSync(`${dir}/analysis.json`, JSON.stringify({ baseline: "full", comparisons }));
  }
  return dir;
}

/** Runs the command, returning its exit code and what it printed. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...xs: unknown[]) => printed.push(xs.join(" "));
  try {
    return { code: await diffCommand(args), out: printed.join("\n") };
  } finally {
    console.log = log;
  }
}

async function configError(args: string[]): Promise<string> {
  try {
    await run(args);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.exitCode, 2);
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  throw new Error("expected a ConfigError");
}

const MAIN: Accuracies = {
  full: { eng: 0.8, fra: 0.5, deu: 0.4 },
  graddrop: { eng: 0.8, fra: 0.5, deu: 0.4 },
  frozen: { eng: 0.6, fra: 0.3, deu: 0.3 },
};

Deno.test("diff: changed means, per-language changes, new and removed methods and languages", async () => {
  const a = results(MAIN, { graddrop: [0, 0.9], frozen: [-0.15, 0.01] });
  const b = results(
    {
      full: { eng: 0.8, fra: 0.5, deu: 0.4, swh: 0.2 },
      // fra +6 points, deu +0.1 (below epsilon); the zero-shot mean falls as hard swh joins.
      graddrop: { eng: 0.8, fra: 0.56, deu: 0.401, swh: 0.2 },
      childtuning: { eng: 0.7, fra: 0.5, deu: 0.4, swh: 0.2 },
    },
    { graddrop: [0.02, 0.04] },
  );
  const { code, out } = await run([a, b]);
  assert.equal(code, 0);
  assert.match(out, new RegExp(`^## Results: ${a} → ${b}`));
  assert.match(
    out,
    /\| graddrop \| 81\.0 \| 81\.0 \| \+0\.0 \| 46\.0 \| 39\.7 \| -6\.3 \| \+0\.0 → \+2\.0 \| 0\.900 → 0\.040 \|/,
  );
  assert.match(out, /\| childtuning \(added\) \| – \| 71\.0 \| – \|/);
  assert.match(out, /\| frozen \(removed\) \| 61\.0 \| – \| – \|/);
  assert.match(out, /Languages added: swh\./);
  assert.match(out, /\| graddrop \| fra \| zero-shot \| 51\.0 \| 57\.0 \| \+6\.0 \|/);
  assert.doesNotMatch(out, /\| graddrop \| deu \|/, "0.1 points is below epsilon");
  // full's per-language numbers did not move; its zero-shot mean did (swh joined it).
  assert.doesNotMatch(out, /\| full \| (eng|fra|deu) \|/);
});

Deno.test("diff: identical folders say nothing changed; --json gives the same as data", async () => {
  const a = results(MAIN), b = results(MAIN);
  assert.match((await run([a, b])).out, /No metric changed by more than 0\.5 points\./);
  const c = results({ ...MAIN, full: { eng: 0.9, fra: 0.5, deu: 0.4 } });
  const d: ResultsDiff = JSON.parse((await run([a, c, "--json"])).out);
  assert.deepEqual(d.methods.map((m) => [m.method, m.status]), [["full", "changed"]]);
  assert.ok(Math.abs(d.methods[0].source.delta! - 0.1) < 1e-9);
  assert.deepEqual(d.unchanged_methods, ["graddrop", "frozen"]);
  assert.deepEqual(d.per_language.map((l) => [l.method, l.language, l.split]), [["full", "eng", "source"]]);
  assert.deepEqual(d.languages, { added: [], removed: [] });
  const loose: ResultsDiff = JSON.parse((await run([a, c, "--json", "--epsilon", "0.2"])).out);
  assert.deepEqual(loose.methods, []);
});

Deno.test("diff: a missing or malformed file is one line naming it, exit code 2", async () => {
  const good = results(MAIN);
  const empty = tempDir();
  assert.equal(await configError([good, empty]), `${empty}/metrics.json: not found`);
  const bad = tempDir();
  Deno.writeTextFileSync(`${bad}/metrics.json`, "{rows: [");
  assert.match(await configError([bad, good]), new RegExp(`^${bad}/metrics\\.json: not valid JSON`));
  Deno.writeTextFileSync(
    `${bad}/metrics.json`,
    JSON.stringify({ rows: [{ ...rows(MAIN)[0], accuracy: "high" }] }),
  );
  assert.match(
    await configError([good, bad]),
    new RegExp(`^${bad}/metrics\\.json: rows\\.0\\.accuracy: .*number`),
  );
  Deno.writeTextFileSync(`${bad}/metrics.json`, JSON.stringify({ rows: rows(MAIN) }));
  Deno.writeTextFileSync(`${bad}/analysis.json`, JSON.stringify({ baseline: "full", comparisons: {} }));
  assert.match(await configError([good, bad]), new RegExp(`^${bad}/analysis\\.json: comparisons: `));
  assert.match(await configError([good]), /^usage: main\.ts diff DIR_A DIR_B/);
  assert.match(await configError([good, good, "--epsilon", "x"]), /--epsilon x: expected a number/);
});

Deno.test("diff: reads the analysis.json that analysis/compare writes", async () => {
  const side = (acc: Accuracies) => {
    const dir = results(acc);
    const analysis = analyze(rows(acc), { pairs: "all", resamples: 200, seed: 0 });
    Deno.writeTextFileSync(`${dir}/analysis.json`, JSON.stringify(analysis));
    return dir;
  };
  const a = side(MAIN), b = side({ ...MAIN, graddrop: { eng: 0.8, fra: 0.6, deu: 0.5 } });
  const { code, out } = await run([a, b]);
  assert.equal(code, 0);
  // graddrop's zero-shot mean rose 10 points, and so did its gain over full.
  assert.match(out, /\| gain over full \| p \(Holm\) \|/);
  assert.match(
    out,
    /\| graddrop \| 81\.0 \| 81\.0 \| \+0\.0 \| 46\.0 \| 56\.0 \| \+10\.0 \| \+0\.0 → \+10\.0 \| /,
  );
});
