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

/**
 * The Chromium binary, installing Debian's `chromium` with apt-get first when it is missing
 * and this process is root with apt available. Undefined (after saying why on stderr) when
 * it cannot be had.
 *
 * @example
 * ```ts ignore
 * const bin = ensureChromium(); // may run apt-get
 * ```
 */
export function ensureChromium(): string | undefined {
  const found = chromiumPath();
  if (found) return found;
  if (Deno.uid?.() !== 0 || !isFile("/usr/bin/apt-get")) {
    console.error(`setup: Chromium is missing and cannot be installed from here; ${INSTALL_HINT}`);
    return undefined;
  }
  console.error("setup: installing chromium (headless browser for the report tests)...");
  const apt = (args: string[]) =>
    new Deno.Command("apt-get", {
      args,
      stdout: "null",
      stderr: "inherit",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).outputSync().success;
  if (!(apt(["update", "-qq"]) && apt(["install", "-y", "-qq", "chromium"]))) {
    console.error(`setup: apt-get could not install chromium; ${INSTALL_HINT}`);
    return undefined;
  }
  const installed = chromiumPath();
  if (!installed) console.error(`setup: chromium installed but not found; ${INSTALL_HINT}`);
  return installed;
}
