/**
 * Finding, and on Debian as root installing, the headless Chromium the report tests open
 * `report.html` in.
 * @module
 */

/** Where Chromium may live; `CHROMIUM_PATH` first, so a user can point at their own. */
function candidates(): string[] {
  const own = Deno.env.get("CHROMIUM_PATH");
  return [
    ...(own ? [own] : []),
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
  ];
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * The Chromium binary, or undefined when none is installed.
 *
 * @example
 * ```ts
 * import { chromiumPath } from "./chromium.ts";
 * const bin = chromiumPath();
 * if (bin !== undefined && !bin.startsWith("/")) throw new Error("an absolute path");
 * ```
 */
export function chromiumPath(): string | undefined {
  return candidates().find(isFile);
}

/** How to get Chromium by hand, for messages. */
export const INSTALL_HINT =
  "install Debian's chromium (as root: apt-get install -y chromium) or set CHROMIUM_PATH";
