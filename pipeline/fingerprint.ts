/**
 * Code fingerprints: a stage type's module, every local module it imports (static or
 * dynamic, transitively) and the locked versions of the npm packages they use. Editing a
 * stage's code changes its key; editing an unrelated module does not.
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { sha256 } from "./hash.ts";

/** A fingerprint: one hash, plus the per-file hashes that explain a change. */
export interface Fingerprint {
  hash: string;
  /** Project-relative module path (or npm specifier) -> content hash. */
  parts: Record<string, string>;
}

const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s[^"'`;]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;

/** Import specifiers a source text names (static, re-exports, dynamic with a literal). */
export function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

interface ProjectInfo {
  root: string;
  imports: Record<string, string>;
  lock: Record<string, unknown>;
}

let project: ProjectInfo | undefined;
const cache = new Map<string, Fingerprint>();

function projectInfo(): ProjectInfo {
  if (project) return project;
  const root = fromFileUrl(new URL("..", import.meta.url));
  const config = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`));
  let lock: Record<string, unknown> = {};
  try {
    const l = JSON.parse(Deno.readTextFileSync(`${root}/deno.lock`));
    lock = { specifiers: l.specifiers ?? {}, npm: l.npm ?? {} };
  } catch {
    // No lock yet (first run before any install): the import map's pinned versions still count.
  }
  project = { root, imports: config.imports ?? {}, lock };
  return project;
}

function npmPart(spec: string, info: ProjectInfo): string {
  const specifiers = info.lock.specifiers as Record<string, string> | undefined;
  const npm = info.lock.npm as Record<string, { integrity?: string }> | undefined;
  const resolved = specifiers?.[spec];
  const name = spec.replace(/^npm:/, "").replace(/@[^@/]*$/, "");
  const integrity = resolved ? npm?.[`${name}@${resolved}`]?.integrity : undefined;
  return sha256(`${spec}|${resolved ?? ""}|${integrity ?? ""}`);
}

/**
 * Fingerprints a module and its local dependency tree.
 *
 * @example
 * ```ts ignore
 * const fp = fingerprint("/repo/stages/tokenizer_train.ts");
 * console.log(fp.hash, Object.keys(fp.parts));
 * ```
 */
export function fingerprint(path: string): Fingerprint {
  const modulePath = resolvePath(path);
  const hit = cache.get(modulePath);
  if (hit) return hit;
  const info = projectInfo();
  const parts: Record<string, string> = {};
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    const source = Deno.readTextFileSync(path);
    const rel = path.startsWith(info.root) ? path.slice(info.root.length) : path;
    parts[rel] = sha256(source);
    for (const spec of importSpecifiers(source)) {
      if (spec.startsWith(".") || spec.startsWith("/")) {
        visit(resolvePath(path, "..", spec));
      } else {
        const base = Object.keys(info.imports).find((k) => spec === k || spec.startsWith(`${k}/`));
        const target = base ? info.imports[base] : spec;
        if (target.startsWith("npm:")) parts[target] = npmPart(target, info);
        else if (!target.startsWith("node:")) parts[target] = sha256(target);
      }
    }
  };
  visit(modulePath);
  const keys = Object.keys(parts).sort();
  const fp = { hash: sha256(keys.map((k) => `${k}=${parts[k]}`).join("\n")), parts };
  cache.set(modulePath, fp);
  return fp;
}
