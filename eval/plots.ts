/**
 * The report's plots as Vega-Lite specs, rendered to SVG by Vega (no browser needed).
 * @module
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import type { Analysis } from "./compare.ts";

/** One logged training step. */
export interface CurvePoint {
  method: string;
  seed: number;
  step: number;
  loss: number;
}

/**
 * Renders a Vega-Lite spec to an SVG string.
 *
 * @example
 * ```ts
 * import { svg } from "./plots.ts";
 * const out = await svg({ data: { values: [{ x: 1 }] }, mark: "point", encoding: { x: { field: "x", type: "quantitative" } } });
 * if (!out.startsWith("<svg")) throw new Error();
 * ```
 */
export async function svg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

/**
 * Zero-shot accuracy per method with its 95% t-interval over seeds; the majority floor as a dashed line.
 *
 * @example
 * ```ts ignore
 * const plot = await svg(methodSpec(analysis));
 * ```
 */
export function methodSpec(a: Analysis): vl.TopLevelSpec {
  const trained = a.summary.filter((s) => !s.floor && s.zero_shot);
  const floor = a.summary.find((s) => s.floor)?.zero_shot?.mean;
  const order = [...trained].sort((p, q) => q.zero_shot!.mean - p.zero_shot!.mean).map((s) => s.method);
  const y = { field: "method", type: "nominal", sort: order, title: null } as const;
  // Horizontal bars, one thin row per method: the plot stays short enough to share the first screen.
  return {
    width: 420,
    height: { step: 16 },
    layer: [
      {
        data: {
          values: trained.map((s) => ({
            method: s.method,
            kind: s.kind,
            mean: s.zero_shot!.mean,
            lo: s.zero_shot!.ci95?.[0] ?? s.zero_shot!.mean,
            hi: s.zero_shot!.ci95?.[1] ?? s.zero_shot!.mean,
          })),
        },
        layer: [
          {
            mark: "bar",
            encoding: {
              y,
              x: { field: "mean", type: "quantitative", title: "zero-shot accuracy (%)" },
              // Controls and baselines stand out from the fine-tuning methods being compared.
              color: {
                field: "kind",
                type: "nominal",
                title: null,
                scale: {
                  domain: ["fine-tuned", "control", "non-neural"],
                  range: ["#8fb3d9", "#b8b8b8", "#e0b36a"],
                },
              },
            },
          },
          { mark: "rule", encoding: { y, x: { field: "lo", type: "quantitative" }, x2: { field: "hi" } } },
        ],
      },
      ...(floor === undefined ? [] : [{
        data: { values: [{ floor }] },
        mark: { type: "rule" as const, strokeDash: [4, 3], color: "#c0392b" },
        encoding: { x: { field: "floor", type: "quantitative" as const } },
      }]),
    ],
  };
}

/**
 * Gain over the baseline per zero-shot language and method as a heat map: one labelled row
 * per language, sorted by mean gain, in one panel per resource tier (or script when no tier
 * is known), so 100+ languages stay readable. Panels go from most to least pretraining data
 * where it is known, else alphabetically.
 *
 * @example
 * ```ts ignore
 * const plot = await svg(languageSpec(analysis));
 * ```
 */
export function languageSpec(a: Analysis): vl.TopLevelSpec {
  const info = (l: string) => a.task?.languages[l];
  const groupOf = (l: string) => (a.tiers ? info(l)?.tier : info(l)?.script) ?? "n/a";
  const values = a.comparisons.filter((c) => c.b === a.baseline).flatMap((c) =>
    c.languages.map((g) => ({ method: c.a, language: g.language, gain: g.gain }))
  );
  const avg = (xs: number[]) => xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : 0;
  const gains = new Map<string, number[]>();
  for (const v of values) gains.set(v.language, [...gains.get(v.language) ?? [], v.gain]);
  const members = new Map<string, string[]>();
  for (const l of gains.keys()) members.set(groupOf(l), [...members.get(groupOf(l)) ?? [], l]);
  const field = covariateField(a);
  const data = (g: string) =>
    avg(members.get(g)!.map((l) => info(l)?.[field]).filter((x): x is number => typeof x === "number"));
  const groups = [...members.keys()].sort((x, y) => data(y) - data(x) || x.localeCompare(y));
  // A symmetric domain keeps zero white: red is a loss, blue a gain, at equal scale.
  const reach = Math.max(1e-9, ...values.map((v) => Math.abs(v.gain)));
  const color = {
    field: "gain",
    type: "quantitative",
    scale: { scheme: "redblue", domain: [-reach, reach] },
    title: `gain over ${a.baseline} (pts)`,
  } as const;
  // One chart per group rather than a facet: Vega cannot render facets with independent y scales.
  return {
    vconcat: (groups.length ? groups : ["n/a"]).map((g) => {
      const langs = members.get(g) ?? [];
      return {
        title: { text: `${a.tiers ? "tier" : "script"}: ${g} (${langs.length})`, anchor: "start" as const },
        data: { values: values.filter((v) => langs.includes(v.language)) },
        width: { step: 36 },
        height: { step: 12 },
        mark: "rect" as const,
        encoding: {
          y: {
            field: "language",
            type: "nominal" as const,
            sort: [...langs].sort((x, y) => avg(gains.get(y)!) - avg(gains.get(x)!) || x.localeCompare(y)),
            title: null,
            axis: { labelFontSize: 10 },
          },
          x: {
            field: "method",
            type: "nominal" as const,
            sort: a.methods,
            title: null,
            axis: { orient: "top" as const, labelAngle: -40 },
          },
          color,
        },
      };
    }),
    resolve: { scale: { color: "shared", x: "shared" } },
  };
}

/**
 * Which covariate the covariate plot uses: pretraining tokens when any language has them.
 *
 * @example
 * ```ts ignore
 * covariateField(analysis); // "pretrain_tokens" | "pretrain_share"
 * ```
 */
export function covariateField(a: Analysis): "pretrain_tokens" | "pretrain_share" {
  const langs = Object.values(a.task?.languages ?? {});
  return langs.some((l) => typeof l.pretrain_tokens === "number" && l.pretrain_tokens > 0)
    ? "pretrain_tokens"
    : "pretrain_share";
}

/**
 * Gain over the baseline against the language's pretraining data (log axis; languages with none left out).
 *
 * @example
 * ```ts ignore
 * const plot = await svg(covariateSpec(analysis));
 * ```
 */
export function covariateSpec(a: Analysis): vl.TopLevelSpec {
  const field = covariateField(a);
  const values = a.comparisons.filter((c) => c.b === a.baseline).flatMap((c) =>
    c.languages.flatMap((g) => {
      const x = a.task?.languages[g.language]?.[field];
      return typeof x === "number" && x > 0 ? [{ method: c.a, language: g.language, gain: g.gain, x }] : [];
    })
  );
  return {
    width: 480,
    height: 260,
    data: { values },
    mark: { type: "point", filled: true, opacity: 0.7 },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        scale: { type: "log" },
        title: field === "pretrain_tokens"
          ? "pretraining tokens in the language"
          : "share of the pretraining corpus",
      },
      y: { field: "gain", type: "quantitative", title: `gain over ${a.baseline} (pts)` },
      color: { field: "method", type: "nominal", scale: { domain: a.methods } },
    },
  };
}

/**
 * Mean fine-tuning loss over seeds per method (colours as in the other plots when `methods` is the analysis's).
 *
 * @example
 * ```ts ignore
 * const plot = await svg(curveSpec(curves, analysis.methods));
 * ```
 */
export function curveSpec(curves: CurvePoint[], methods: string[]): vl.TopLevelSpec {
  return {
    width: 480,
    height: 240,
    data: { values: curves },
    mark: "line",
    encoding: {
      x: { field: "step", type: "quantitative" },
      y: { field: "loss", type: "quantitative", aggregate: "mean", title: "training loss (mean over seeds)" },
      color: { field: "method", type: "nominal", scale: { domain: methods } },
    },
  };
}

/**
 * Dev accuracy per epoch and method, mean over seeds (the analysis's `dev_curves`).
 *
 * @example
 * ```ts ignore
 * const plot = await svg(devSpec(analysis));
 * ```
 */
export function devSpec(a: Analysis): vl.TopLevelSpec {
  return {
    width: 480,
    height: 240,
    data: { values: a.dev_curves },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1 } },
      y: { field: "accuracy", type: "quantitative", title: "dev accuracy (%, mean over seeds)" },
      color: { field: "method", type: "nominal", scale: { domain: a.methods } },
    },
  };
}
