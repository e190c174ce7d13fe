/**
 * Errors that the CLI reports without a stack trace.
 * @module
 */

/** A bad pipelines file, `--set` value or CLI usage: exit code 2, nothing runs. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Formats `file:line:col: path: message`, leaving out what is unknown. */
export function located(
  file: string,
  pos: { line: number; col: number } | undefined,
  path: string,
  message: string,
): string {
  const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
  return path ? `${where}: ${path}: ${message}` : `${where}: ${message}`;
}
