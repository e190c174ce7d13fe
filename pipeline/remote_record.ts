/**
 * The remote cache's entry record, stored at `ac/<key>`: the entry's manifest, each output
 * file's path, sha256 and size (its bytes live at `cas/<sha256>`), and the output hash.
 * Records come from a server, so parsing checks everything a writer could get wrong or
 * a path could abuse before any file is written.
 * @module
 */
import { z } from "zod";
import type { TreeFile } from "./store.ts";
import type { Manifest } from "./types.ts";

/** What `ac/<key>` holds. */
export interface EntryRecord {
  /** Layout version, so a later layout is refused rather than misread. */
  version: 1;
  key: string;
  /** The output hash (`hashTree`) over `files`; equals `manifest.outputHash`. */
  treeHash: string;
  files: TreeFile[];
  manifest: Manifest;
}

/**
 * The record for a local entry.
 *
 * @example
 * ```ts ignore
 * const files = await listTree(`${store.entry(key)}/out`);
 * const record = makeRecord(store.manifest(key)!, files);
 * ```
 */
export function makeRecord(manifest: Manifest, files: TreeFile[]): EntryRecord {
  return { version: 1, key: manifest.key, treeHash: manifest.outputHash, files, manifest };
}

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected a hex sha256");

// A relative path whose every segment is a plain name: nothing may land outside the entry.
const RelPath = z.string().refine(
  (p) => p.split("/").every((s) => s !== "" && s !== "." && s !== ".." && !s.includes("\0")),
  "expected a relative path of plain names",
);

const RecordSchema = z.strictObject({
  version: z.literal(1),
  key: z.string(),
  treeHash: Sha256,
  files: z.array(z.strictObject({ path: RelPath, sha256: Sha256, size: z.number().int().min(0) })),
  // Loose, so a manifest from a newer engine with more fields still passes.
  manifest: z.looseObject({
    key: z.string(),
    id: z.string(),
    stage: z.string(),
    type: z.string(),
    pipeline: z.string(),
    params: z.record(z.string(), z.unknown()),
    inputs: z.record(z.string(), z.string()),
    code: z.looseObject({ hash: z.string(), parts: z.record(z.string(), z.string()) }),
    outputHash: z.string(),
    files: z.number(),
    bytes: z.number(),
    deno: z.string(),
    git: z.string().optional(),
    provenance: z.record(z.string(), z.unknown()).optional(),
    started: z.string(),
    finished: z.string(),
    seconds: z.number(),
  }),
});

/**
 * Parses and checks a record fetched for `key`; throws an Error saying what is wrong.
 *
 * @example
 * ```ts ignore
 * const record = parseRecord(await res.text(), key);
 * ```
 */
export function parseRecord(text: string, key: string): EntryRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON (${(e as Error).message})`);
  }
  const parsed = RecordSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue.path.join(".") || "record"}: ${issue.message}`);
  }
  const r = parsed.data;
  const bytes = r.files.reduce((n, f) => n + f.size, 0);
  const paths = new Set(r.files.map((f) => f.path));
  const dirs = new Set(
    r.files.flatMap((f) =>
      f.path.split("/").slice(0, -1).map((_, i, segs) => segs.slice(0, i + 1).join("/"))
    ),
  );
  const clash = r.files.find((f) => dirs.has(f.path));
  const problem = r.key !== key
    ? `is for key ${r.key}`
    : r.manifest.key !== key
    ? `its manifest is for key ${r.manifest.key}`
    : r.manifest.outputHash !== r.treeHash
    ? "its manifest's outputHash differs from its treeHash"
    : paths.size !== r.files.length
    ? "lists a path twice"
    : clash
    ? `lists ${clash.path} inside a path that is a file`
    : r.manifest.files !== r.files.length || r.manifest.bytes !== bytes
    ? "its manifest's file count or bytes differ from its file list"
    : undefined;
  if (problem) throw new Error(problem);
  return r;
}
