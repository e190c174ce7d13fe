/**
 * `report.md` and a self-contained `report.html` whose plots are Vega-Lite specs rendered
 * to SVG by Vega (no browser needed).
 * @module
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import type { Comparison } from "./compare.ts";

async function svg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

const pct = (x: number) => (100 * x).toFixed(1);

/** Renders the Markdown report. */
export function markdown(c: Comparison, title: string, notes: string[]): string {
  const lines = [`# ${title}`, "", ...notes, "", "## Methods (accuracy %, mean ± std over seeds)", ""];
  lines.push("| method | seeds | source | zero-shot | zero-shot macro-F1 |", "|---|---|---|---|---|");
  for (const s of c.summary) {
    lines.push(
      `| ${s.method} | ${s.seeds} | ${pct(s.source_mean)} ± ${pct(s.source_std)} | ${
        pct(s.zero_shot_mean)
      } ± ${pct(s.zero_shot_std)} | ${pct(s.zero_shot_f1)} |`,
    );
  }
  lines.push("", `## Against the baseline (${c.vs_baseline[0]?.baseline ?? "-"}), zero-shot languages`, "");
  lines.push(
    "| method | mean gain (pts) | p (paired permutation) | resamples | pairs | wins/ties/losses | rho(gain, pretrain share) | p |",
    "|---|---|---|---|---|---|---|---|",
  );
  for (const v of c.vs_baseline) {
    const r = v.correlations.pretrain_share;
    lines.push(
      `| ${v.method} | ${pct(v.mean_gain)} | ${
        v.p_value.toFixed(4)
      } | ${v.resamples} | ${v.pairs} | ${v.wins}/${v.ties}/${v.losses} | ${r.rho.toFixed(3)} (n=${r.n}) | ${
        r.p.toFixed(4)
      } |`,
    );
  }
  lines.push("", "## Largest gains per method (zero-shot languages)", "");
  for (const v of c.vs_baseline) {
    lines.push(
      `- **${v.method}**: best ${
        v.gains.slice(0, 5).map((g) => `${g.language} ${pct(g.gain)}`).join(", ")
      }; worst ${v.gains.slice(-3).map((g) => `${g.language} ${pct(g.gain)}`).join(", ")}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Renders the HTML report with four plots. */
export async function html(
  c: Comparison,
  title: string,
  md: string,
  curves: { method: string; seed: number; step: number; loss: number }[],
  covariate: { method: string; language: string; gain: number; pretrain_share: number }[],
): Promise<string> {
  const methodPlot = await svg({
    width: 420,
    height: 220,
    data: {
      values: c.summary.map((s) => ({
        method: s.method,
        mean: s.zero_shot_mean,
        lo: s.zero_shot_mean - s.zero_shot_std,
        hi: s.zero_shot_mean + s.zero_shot_std,
      })),
    },
    layer: [
      {
        mark: "bar",
        encoding: {
          x: { field: "method", type: "nominal", sort: "-y" },
          y: { field: "mean", type: "quantitative", title: "zero-shot accuracy" },
        },
      },
      {
        mark: "rule",
        encoding: {
          x: { field: "method", type: "nominal", sort: "-y" },
          y: { field: "lo", type: "quantitative" },
          y2: { field: "hi" },
        },
      },
    ],
  });
  const gains = c.vs_baseline.flatMap((v) =>
    v.gains.map((g) => ({ method: v.method, language: g.language, gain: g.gain }))
  );
  const gainPlot = await svg({
    width: 700,
    height: 220,
    data: { values: gains },
    mark: "point",
    encoding: {
      x: {
        field: "language",
        type: "nominal",
        sort: { field: "gain", op: "mean", order: "descending" },
        axis: { labels: gains.length < 400 },
      },
      y: { field: "gain", type: "quantitative", title: "accuracy gain vs baseline" },
      color: { field: "method", type: "nominal" },
    },
  });
  const covPlot = await svg({
    width: 420,
    height: 220,
    data: { values: covariate },
    mark: "point",
    encoding: {
      x: {
        field: "pretrain_share",
        type: "quantitative",
        scale: { type: "log" },
        title: "share of pretraining corpus",
      },
      y: { field: "gain", type: "quantitative" },
      color: { field: "method", type: "nominal" },
    },
  });
  const curvePlot = await svg({
    width: 420,
    height: 220,
    data: { values: curves },
    mark: "line",
    encoding: {
      x: { field: "step", type: "quantitative" },
      y: { field: "loss", type: "quantitative", aggregate: "mean", title: "training loss (mean over seeds)" },
      color: { field: "method", type: "nominal" },
    },
  });
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}pre{white-space:pre-wrap;background:#f6f6f6;padding:1em}figure{margin:1em 0}</style></head><body>
<h1>${esc(title)}</h1>
<figure>${methodPlot}<figcaption>Zero-shot accuracy by method (bars: mean over seeds; rules: ± one std).</figcaption></figure>
<figure>${gainPlot}<figcaption>Per-language gain over the baseline, languages sorted by mean gain.</figcaption></figure>
<figure>${covPlot}<figcaption>Gain against the language's share of the pretraining corpus.</figcaption></figure>
<figure>${curvePlot}<figcaption>Fine-tuning loss per method.</figcaption></figure>
<h2>Tables</h2><pre>${esc(md)}</pre></body></html>\n`;
}
