/**
 * First-run set-up shared by `deno task pipeline` and `deno task test`: installs Mesa's
 * Vulkan driver (lavapipe) when it is missing and we may install packages, because WebGPU
 * through Vulkan compiles shaders about ten times faster than through GL on llvmpipe.
 * With `--tests` it also installs nginx, the real HTTP server the remote cache tests run.
 * @module
 */
import { hasVulkanIcd } from "./gpu_env.ts";

/** A Debian package we install when missing, and what going without it means. */
interface Want {
  pkg: string;
  why: string;
  without: string;
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const wants: Want[] = [];
  if (!hasVulkanIcd()) {
    wants.push({
      pkg: "mesa-vulkan-drivers",
      why: "Vulkan WebGPU path",
      without: "WebGPU will use Mesa's GL path (slower first step)",
    });
  }
  if (Deno.args.includes("--tests") && !exists("/usr/sbin/nginx")) {
    wants.push({ pkg: "nginx", why: "remote cache tests", without: "the remote cache tests are skipped" });
  }
  const isRoot = Deno.uid?.() === 0;
  if (wants.length > 0 && isRoot && exists("/usr/bin/apt-get")) {
    console.error(`setup: installing ${wants.map((w) => `${w.pkg} (${w.why})`).join(", ")}...`);
    const run = (args: string[]) =>
      new Deno.Command("apt-get", {
        args,
        stdout: "null",
        stderr: "inherit",
        env: { DEBIAN_FRONTEND: "noninteractive" },
      })
        .outputSync().success;
    const updated = run(["update", "-qq"]);
    for (const w of wants) {
      if (!(updated && run(["install", "-y", "-qq", w.pkg]))) {
        console.error(`setup: could not install ${w.pkg}; ${w.without}`);
      }
    }
  } else {
    for (const w of wants) {
      console.error(`setup: ${w.pkg} is not installed; ${w.without} (install it as root)`);
    }
  }
}
