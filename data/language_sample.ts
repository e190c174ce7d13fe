/**
 * The deterministic zero-shot language sample: round-robin over scripts (alphabetical),
 * within a script by a seeded hash of the code, so small scripts are all represented and
 * Latin does not take every slot.
 * @module
 */
import { pcg } from "../kernels/rng.ts";

function codeHash(code: string, seed: number): number {
  let h = seed >>> 0;
  for (const ch of code) h = pcg(h ^ ch.codePointAt(0)!);
  return h;
}

/**
 * Picks `n` languages from `scripts` (code -> script).
 *
 * @example
 * ```ts
 * sampleLanguages(new Map([["eng", "Latin"], ["rus", "Cyrillic"]]), 1, 0); // ["rus"] or ["eng"]
 * ```
 */
export function sampleLanguages(scripts: Map<string, string>, n: number, seed: number): string[] {
  const by = new Map<string, string[]>();
  for (const [code, script] of scripts) {
    let a = by.get(script);
    if (!a) by.set(script, a = []);
    a.push(code);
  }
  const queues = [...by.keys()].sort().map((s) =>
    by.get(s)!.sort((a, b) => codeHash(a, seed) - codeHash(b, seed) || (a < b ? -1 : 1))
  );
  const out: string[] = [];
  while (out.length < n && queues.some((q) => q.length)) {
    for (const q of queues) if (q.length && out.length < n) out.push(q.shift()!);
  }
  return out.sort();
}
