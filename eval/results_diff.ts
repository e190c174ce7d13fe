/**
 * What changed between two results folders: per method the source and zero-shot accuracy
 * (mean over seeds, as in the report), and per (method, language) every change beyond a
 * small epsilon; methods and languages that appeared or went away. Rendered as the Markdown
 * a pull-request comment shows, or kept as data for `--json`.
 * @module
 */
import type { MetricRow } from "./contracts.ts";
import { mean } from "./stats.ts";

/** A number before and after; absent where that side has none. */
export interface Change {
  a: number | null;
  b: number | null;
  delta: number | null;
}

/** The headline numbers of one method that changed, appeared or went away. */
export interface MethodChange {
  method: string;
  status: "changed" | "added" | "removed";
  source: Change;
  zero_shot: Change;
  /** Gain over the baseline and its Holm-adjusted p, from `analysis.json` where both sides have it. */
  vs_baseline?: { baseline: string; gain: Change; p: Change };
}

/** One (method, language) whose mean accuracy over seeds moved beyond epsilon. */
export interface LanguageChange extends Change {
  method: string;
  language: string;
  split: "source" | "test";
}

/** Everything {@link diffResults} finds. */
export interface ResultsDiff {
  epsilon: number;
  methods: MethodChange[];
  unchanged_methods: string[];
  languages: { added: string[]; removed: string[] };
  per_language: LanguageChange[];
}

/** The part of `analysis.json` the diff reads: gains as accuracy fractions, p Holm-adjusted. */
export interface AnalysisSummary {
  vs_baseline: { method: string; baseline: string; mean_gain: number; p_value: number }[];
}

/** One side of the comparison. */
export interface ResultsSide {
  rows: MetricRow[];
  analysis?: AnalysisSummary;
}

/**
 * Compares results `a` (e.g. main's) with `b` (e.g. a pull request's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const row = (accuracy: number) => ({ method: "full", seed: 1, language: "fra", split: "test" as const, accuracy, f1: accuracy });
 * const d = diffResults({ rows: [row(0.5)] }, { rows: [row(0.6)] });
 * assert.equal(d.per_language[0].language, "fra");
 * ```
 */
export function diffResults(a: ResultsSide, b: ResultsSide, epsilon = 0.005): ResultsDiff {
  const methodsA = unique(a.rows.map((r) => r.method)), methodsB = unique(b.rows.map((r) => r.method));
  const langsA = unique(a.rows.map((r) => r.language)), langsB = unique(b.rows.map((r) => r.language));
  const moved = (c: Change) => c.delta === null || Math.abs(c.delta) > epsilon;
  const methods: MethodChange[] = [];
  const unchanged: string[] = [];
  for (const method of unique([...methodsA, ...methodsB])) {
    const status = !methodsA.includes(method) ? "added" : !methodsB.includes(method) ? "removed" : "changed";
    const source = change(splitMean(a.rows, method, "source"), splitMean(b.rows, method, "source"));
    const zeroShot = change(splitMean(a.rows, method, "test"), splitMean(b.rows, method, "test"));
    const vs = vsBaseline(a.analysis, b.analysis, method);
    if (status === "changed" && !moved(source) && !moved(zeroShot) && !(vs && moved(vs.gain))) {
      unchanged.push(method);
    } else {
      methods.push({ method, status, source, zero_shot: zeroShot, ...(vs ? { vs_baseline: vs } : {}) });
    }
  }
  const perLanguage: LanguageChange[] = [];
  for (const method of methodsA.filter((m) => methodsB.includes(m))) {
    for (const language of langsA.filter((l) => langsB.includes(l))) {
      const c = change(languageMean(a.rows, method, language), languageMean(b.rows, method, language));
      const split = b.rows.find((r) => r.language === language)!.split;
      if (c.a !== null && c.b !== null && moved(c)) perLanguage.push({ method, language, split, ...c });
    }
  }
  perLanguage.sort((x, y) => Math.abs(y.delta!) - Math.abs(x.delta!));
  return {
    epsilon,
    methods,
    unchanged_methods: unchanged,
    languages: {
      added: langsB.filter((l) => !langsA.includes(l)),
      removed: langsA.filter((l) => !langsB.includes(l)),
    },
    per_language: perLanguage,
  };
}

/**
 * The diff as Markdown, in accuracy points; the per-language table shows the `limit`
 * largest changes.
 *
 * @example
 * ```ts
 * const d = diffResults({ rows: [] }, { rows: [] });
 * diffMarkdown(d, "main", "this branch"); // "... No metric changed by more than 0.5 points. ..."
 * ```
 */
export function diffMarkdown(d: ResultsDiff, nameA: string, nameB: string, limit = 30): string {
  const eps = pts(d.epsilon);
  const lines = [`## Results: ${nameA} → ${nameB}`, ""];
  const { added, removed } = d.languages;
  if (d.methods.length === 0 && d.per_language.length === 0 && added.length === 0 && removed.length === 0) {
    return [...lines, `No metric changed by more than ${eps} points.`, ""].join("\n");
  }
  if (d.methods.length > 0) {
    const baseline = d.methods.find((m) => m.vs_baseline)?.vs_baseline?.baseline;
    lines.push(
      `Accuracy in points, mean over seeds; methods whose source or zero-shot mean moved by more than ${eps} points:`,
      "",
      `| method | source ${nameA} | source ${nameB} | Δ | zero-shot ${nameA} | zero-shot ${nameB} | Δ |${
        baseline ? ` gain over ${baseline} | p (Holm) |` : ""
      }`,
      `|---|---|---|---|---|---|---|${baseline ? "---|---|" : ""}`,
    );
    for (const m of d.methods) {
      const name = m.status === "changed" ? m.method : `${m.method} (${m.status})`;
      const vs = m.vs_baseline;
      const extra = !baseline
        ? ""
        : vs
        ? ` ${signed(vs.gain.a)} → ${signed(vs.gain.b)} | ${fixed(vs.p.a)} → ${fixed(vs.p.b)} |`
        : " | |";
      lines.push(
        `| ${name} | ${pct(m.source.a)} | ${pct(m.source.b)} | ${signed(m.source.delta)} | ${
          pct(m.zero_shot.a)
        } | ${pct(m.zero_shot.b)} | ${signed(m.zero_shot.delta)} |${extra}`,
      );
    }
    lines.push("");
  }
  if (d.unchanged_methods.length > 0) lines.push(`Unchanged: ${d.unchanged_methods.join(", ")}.`, "");
  if (added.length > 0) lines.push(`Languages added: ${added.join(", ")}.`, "");
  if (removed.length > 0) lines.push(`Languages removed: ${removed.join(", ")}.`, "");
  if (d.per_language.length > 0) {
    const shown = d.per_language.slice(0, limit);
    lines.push(
      `### Per-language changes beyond ${eps} points (${d.per_language.length}${
        shown.length < d.per_language.length ? `, largest ${shown.length} shown` : ""
      })`,
      "",
      `| method | language | split | ${nameA} | ${nameB} | Δ |`,
      "|---|---|---|---|---|---|",
      ...shown.map((c) =>
        `| ${c.method} | ${c.language} | ${c.split === "test" ? "zero-shot" : "source"} | ${pct(c.a)} | ${
          pct(c.b)
        } | ${signed(c.delta)} |`
      ),
      "",
    );
  }
  return lines.join("\n");
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function change(a: number | null, b: number | null): Change {
  return { a, b, delta: a === null || b === null ? null : b - a };
}

/** Mean over seeds of each seed's mean accuracy on a split, as the report computes it. */
function splitMean(rows: MetricRow[], method: string, split: string): number | null {
  const mine = rows.filter((r) => r.method === method && r.split === split);
  if (mine.length === 0) return null;
  const seeds = unique(mine.map((r) => String(r.seed)));
  return mean(seeds.map((s) => mean(mine.filter((r) => String(r.seed) === s).map((r) => r.accuracy))));
}

function languageMean(rows: MetricRow[], method: string, language: string): number | null {
  const mine = rows.filter((r) => r.method === method && r.language === language);
  return mine.length ? mean(mine.map((r) => r.accuracy)) : null;
}

function vsBaseline(
  a: AnalysisSummary | undefined,
  b: AnalysisSummary | undefined,
  method: string,
): MethodChange["vs_baseline"] {
  const va = a?.vs_baseline.find((v) => v.method === method);
  const vb = b?.vs_baseline.find((v) => v.method === method);
  if (!va || !vb || va.baseline !== vb.baseline) return undefined;
  return {
    baseline: vb.baseline,
    gain: change(va.mean_gain, vb.mean_gain),
    p: change(va.p_value, vb.p_value),
  };
}

const pct = (x: number | null) => (x === null ? "–" : (100 * x).toFixed(1));
const pts = (x: number) => String(Number((100 * x).toFixed(2)));
const signed = (x: number | null) => (x === null ? "–" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`);
const fixed = (x: number | null) => (x === null ? "–" : x.toFixed(3));
