/**
 * `report.html`: the Markdown report rendered by `marked` (real tables), with each figure
 * marker replaced by its SVG plot. Self-contained: no script, no external resource.
 * @module
 */
import { marked } from "marked";
import type * as vl from "vega-lite";
import type { Analysis } from "./compare.ts";
import {
  covariateField,
  covariateSpec,
  type CurvePoint,
  curveSpec,
  devSpec,
  languageSpec,
  methodSpec,
  svg,
} from "./plots.ts";
import { figureMarker, FIGURES } from "./report.ts";

const STYLE =
  `body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}
th{background:#f0f0f0;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
blockquote{margin:.5em 0;padding:.1em 1em;border-left:6px solid #c77700;background:#fff6e5}
figure{margin:1em 0;overflow-x:auto}figcaption{color:#555;font-size:.9em}
details{margin:.5em 0 1em}summary{cursor:pointer;color:#1a4f8b}`;

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Renders the HTML report from the analysis, its Markdown and the training curves.
 *
 * @example
 * ```ts ignore
 * const page = await html(analysis, "GradDrop", markdown(analysis, "GradDrop", []), curves);
 * ```
 */
export async function html(a: Analysis, title: string, md: string, curves: CurvePoint[]): Promise<string> {
  const field = covariateField(a) === "pretrain_tokens"
    ? "pretraining tokens"
    : "share of the pretraining corpus";
  const figures: Record<typeof FIGURES[number], () => [vl.TopLevelSpec, string]> = {
    methods: () => [
      methodSpec(a),
      "Zero-shot accuracy by method: bars are the mean over seeds, rules the 95% t-interval over seeds; the dashed line is the majority-class floor.",
    ],
    languages: () => [
      languageSpec(a),
      `Gain over ${a.baseline} per zero-shot language (blue: better, red: worse; seed means), sorted by mean gain within each ${
        a.tiers ? "resource tier" : "script"
      }.`,
    ],
    covariate: () => [
      covariateSpec(a),
      `Gain over ${a.baseline} against the ${field} (log scale; languages with none or unknown are left out).`,
    ],
    dev: () => [devSpec(a), "Dev accuracy per epoch and method (mean over seeds)."],
    curves: () => [curveSpec(curves, a.methods), "Fine-tuning loss per method (mean over seeds)."],
  };
  // A plot with nothing to draw (no training logs, no covariate known) is left out, not drawn empty.
  const empty: Partial<Record<typeof FIGURES[number], boolean>> = {
    covariate: (covariateSpec(a).data as { values: unknown[] }).values.length === 0,
    curves: curves.length === 0,
  };
  let body = marked.parse(md, { async: false, gfm: true });
  for (const name of FIGURES) {
    if (!body.includes(figureMarker(name))) continue;
    const [spec, caption] = figures[name]();
    const figure = empty[name]
      ? ""
      : `<figure>${await svg(spec)}<figcaption>${escape(caption)}</figcaption></figure>`;
    body = body.replace(figureMarker(name), () => figure);
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>${STYLE}</style></head><body>
${body}</body></html>
`;
}
