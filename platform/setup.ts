/**
 * First-run set-up shared by `deno task pipeline` and `deno task test`: installs Mesa's
 * Vulkan driver (lavapipe) when it is missing and we may install packages, because WebGPU
 * through Vulkan compiles shaders about ten times faster than through GL on llvmpipe.
 * With `--for-tests` (what `deno task test` passes) it also installs Chromium, in which the
 * report tests open `report.html`; the pipeline itself needs no browser.
 * @module
 */
import { hasVulkanIcd } from "./gpu_env.ts";
import { ensureChromium } from "./chromium.ts";

if (import.meta.main && !hasVulkanIcd()) {
  const isRoot = Deno.uid?.() === 0;
  let hasApt = false;
  try {
    hasApt = Deno.statSync("/usr/bin/apt-get").isFile;
  } catch {
    hasApt = false;
  }
  if (isRoot && hasApt) {
    console.error("setup: installing mesa-vulkan-drivers (Vulkan WebGPU path)...");
    const run = (args: string[]) =>
      new Deno.Command("apt-get", {
        args,
        stdout: "null",
        stderr: "inherit",
        env: { DEBIAN_FRONTEND: "noninteractive" },
      })
        .outputSync().success;
    if (!(run(["update", "-qq"]) && run(["install", "-y", "-qq", "mesa-vulkan-drivers"]))) {
      console.error(
        "setup: could not install mesa-vulkan-drivers; WebGPU will use Mesa's GL path (slower first step)",
      );
    }
  } else {
    console.error(
      "setup: mesa-vulkan-drivers is not installed; WebGPU will use Mesa's GL path (install it for faster shader compilation)",
    );
  }
}

// The report test fails on its own, saying how to install Chromium, when this could not.
if (import.meta.main && Deno.args.includes("--for-tests")) ensureChromium();
