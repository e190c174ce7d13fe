/**
 * `main.ts analyze`: the `analysis/compare` statistics on any metrics.json, so results from
 * elsewhere are judged by the same rules.
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, usageErrorsAsExit2 } from "../pipeline/errors.ts";
import { analyze } from "./compare.ts";
import { normalisePrimary, parseMetrics, type Primary, primarySpecSchema } from "./contracts.ts";
import { ci, fmtP, signed } from "./report_text.ts";

/** Usage line of the command. */
export const ANALYZE_USAGE =
  "analyze --metrics FILE [--primary A:B[:metric][,A:B...]] [--baseline METHOD] [--json] [--resamples N] [--seed N]";

/** `--primary graddrop:full,graddrop:gradual-unfreezing`: each one a declared comparison. */
function primaries(value: string | undefined, methods: string[]): Primary[] {
  if (value === undefined) return [];
  return value.split(",").map((spec) => {
    const parsed = primarySpecSchema.safeParse(spec.trim());
    if (!parsed.success) throw new ConfigError(`--primary ${spec}: ${parsed.error.issues[0].message}`);
    const p = normalisePrimary(parsed.data);
    for (const m of [p.a, p.b]) {
      if (!methods.includes(m)) {
        throw new ConfigError(
          `--primary ${spec}: '${m}' is not a method in the metrics (have: ${methods.join(", ")})`,
        );
      }
    }
    return p;
  });
}

function intOption(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new ConfigError(`--${name} ${value}: expected an integer >= ${min}`);
  }
  return n;
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      metrics: { type: "string" },
      baseline: { type: "string" },
      primary: { type: "string" },
      json: { type: "boolean", default: false },
      resamples: { type: "string", default: "10000" },
      seed: { type: "string", default: "0" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(`usage: main.ts ${ANALYZE_USAGE}`);
    return 0;
  }
  const file = values.metrics;
  if (!file) throw new ConfigError(`--metrics FILE is required (usage: main.ts ${ANALYZE_USAGE})`);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not JSON (${(e as Error).message})`);
  }
  const rows = parseMetrics(doc, file);
  const a = analyze(rows, {
    baseline: values.baseline,
    primary: primaries(values.primary, [...new Set(rows.map((r) => r.method))]),
    pairs: values.baseline === undefined ? "all" : "baseline",
    resamples: intOption("resamples", values.resamples, 100),
    seed: intOption("seed", values.seed, 0),
  });
  if (values.json) {
    console.log(JSON.stringify({
      comparisons: a.comparisons.map((c) => ({
        a: c.a,
        b: c.b,
        family: c.family,
        metric: c.metric,
        split: c.split,
        gain: c.gain,
        ci95: c.ci95,
        p: c.p,
        p_holm: c.p_holm,
        n_seeds: c.n_seeds,
        n_languages: c.n_languages,
      })),
    }));
    return 0;
  }
  const head = [
    "comparison",
    "family",
    "metric",
    "gain",
    "95% CI",
    "p",
    "p (Holm)",
    "seeds",
    "langs",
    "W/T/L",
  ];
  const body = a.comparisons.map((c) => [
    `${c.a} - ${c.b}`,
    c.family,
    c.split === "source" ? `${c.metric} (source)` : c.metric,
    signed(c.gain),
    ci(c.ci95),
    fmtP(c.p),
    fmtP(c.p_holm),
    String(c.n_seeds),
    String(c.n_languages),
    c.metric === "accuracy" ? `${c.wins}/${c.ties}/${c.losses}${c.unknown ? ` (${c.unknown} n?)` : ""}` : "-",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((x, i) => i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i])).join("  ");
  console.log(
    `${file}: ${a.methods.length} methods, ${a.languages.test.length} zero-shot languages; baseline ${a.baseline}`,
  );
  console.log("gain: mean difference in points (per seed, then over seeds) on the zero-shot languages");
  console.log(line(head));
  for (const r of body) console.log(line(r));
  for (const s of a.skipped) console.log(`${s.a} - ${s.b} (${s.metric}): not compared (${s.reason})`);
  for (const f of a.design.families.filter((f) => f.tests > 0)) {
    const seeds = f.seed_counts.map((c) => `${c.n_seeds} seeds (smallest p ${fmtP(c.min_p)})`).join(", ");
    console.log(`p (Holm): within the ${f.family} family of ${f.tests} tests; ${seeds}`);
  }
  console.log(
    "p: exact sign-flip over the per-seed mean gains; CI: 95% t-interval over the per-seed mean gains",
  );
  console.log(
    "W/T/L: languages whose gain exceeds one binomial standard error of the difference on their n items",
  );
  return 0;
}

/**
 * Runs `analyze` with the arguments after the command name and returns the exit code. Bad
 * usage or a malformed file prints one line `error: ...` to stderr and returns 2.
 *
 * @example
 * ```ts ignore
 * if (argv[0] === "analyze") return await analyzeCommand(argv.slice(1));
 * ```
 */
export function analyzeCommand(argv: string[]): Promise<number> {
  return usageErrorsAsExit2(() => run(argv));
}
