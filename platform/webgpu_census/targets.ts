/**
 * The census targets (issue 21, XLM-R base at B32 x T128) and the census as lines to print,
 * each figure beside its target.
 * @module
 */
import type { PerStep } from "./census.ts";

/** Upper bounds per steady step; `small_reductions` and `cpu_kernels` must be 0. */
export const CENSUS_TARGETS = {
  upload_bytes: 1_000_000,
  staging_buffers: 5,
  dispatches: 1000,
  small_reductions: 0,
  readbacks: 1,
  cpu_kernels: 0,
  host_ms: 300,
} as const;

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/**
 * One line per counter: its value, and for a targeted one the target and whether it is met.
 *
 * @example
 * ```ts
 * import { censusLines } from "./targets.ts";
 * const lines = censusLines({ dispatches: 1200, host_ms: 250 } as never);
 * if (!lines.some((l) => l.includes("dispatches 1,200 (target <= 1,000: MISSED by 200)"))) throw new Error(lines.join("\n"));
 * ```
 */
export function censusLines(p: PerStep): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== "number") continue;
    const t = (CENSUS_TARGETS as Record<string, number>)[k];
    const value = k.endsWith("_ms") ? `${v.toFixed(0)} ms` : fmt(v);
    if (t === undefined) out.push(`${k} ${value}`);
    else out.push(`${k} ${value} (target <= ${fmt(t)}: ${v <= t ? "met" : `MISSED by ${fmt(v - t)}`})`);
  }
  const kernels = Object.entries(p.by_kernel ?? {}).sort((a, b) => b[1] - a[1]);
  if (kernels.length) out.push(`dispatches by kernel: ${kernels.map(([k, n]) => `${k} ${n}`).join(", ")}`);
  const small = Object.entries(p.small_by_kernel ?? {});
  if (small.length) out.push(`small reductions by kernel: ${small.map(([k, n]) => `${k} ${n}`).join(", ")}`);
  return out;
}
