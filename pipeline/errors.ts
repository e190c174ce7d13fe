/**
 * The errors the CLI reports as one line, without a stack trace (unless `--debug`).
 * @module
 */

/**
 * Bad input a user can fix (a data file, a checkpoint, a parameter): one line naming the
 * file, line or field and what to do. A stage that throws it fails with exit code 1.
 */
export class UserInputError extends Error {
  /** Exit code of the CLI when this error ends it. */
  readonly exitCode: number = 1;
  constructor(message: string) {
    super(message);
    this.name = "UserInputError";
  }
}

/** A bad pipelines file, `--set` value or CLI usage: exit code 2, nothing runs. */
export class ConfigError extends UserInputError {
  override readonly exitCode: number = 2;
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

/**
 * Runs a command, turning a {@link ConfigError} or a `node:util` parseArgs error into one line
 * `error: ...` on stderr and exit code 2; anything else propagates.
 *
 * @example
 * ```ts
 * import { ConfigError, usageErrorsAsExit2 } from "./errors.ts";
 * const code = await usageErrorsAsExit2(() => Promise.reject(new ConfigError("--x: bad")));
 * if (code !== 2) throw new Error(`got ${code}`);
 * ```
 */
export async function usageErrorsAsExit2(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`error: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}
