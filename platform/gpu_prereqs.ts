/**
 * What a container needs before WebGPU can reach an NVIDIA GPU, checked without WebGPU:
 * the Vulkan loader, NVIDIA's Vulkan ICD and the libraries it needs, and a container
 * started with the `graphics` driver capability. When any is missing, Deno's WebGPU falls
 * back to Mesa's software adapter without a word; `doctor --expect-gpu` lists these.
 * @module
 */

/** Where the checks look; injectable so tests need no particular machine. */
export interface SystemProbe {
  /** Output of `ldconfig -p` ("" when it cannot run). */
  ldconfig(): string;
  exists(path: string): boolean;
  env(name: string): string | undefined;
}

/** One check's outcome. */
export interface Check {
  check: string;
  ok: boolean;
  detail: string;
}

/** Directories the Vulkan loader (and NVIDIA's container toolkit) put ICD manifests in. */
export const ICD_DIRS = [
  "/usr/share/vulkan/icd.d",
  "/etc/vulkan/icd.d",
  "/usr/local/share/vulkan/icd.d",
  "/usr/local/nvidia/share/vulkan/icd.d",
  "/usr/local/nvidia/icd.d",
];

function library(probe: SystemProbe, soname: string, what: string, remedy: string): Check {
  const ok = probe.ldconfig().includes(soname);
  return {
    check: `${what} (${soname})`,
    ok,
    detail: ok ? "found by ldconfig" : `not in ldconfig -p: ${remedy}`,
  };
}

/**
 * Every check, passing or not, in the order to fix them.
 *
 * @example
 * ```ts
 * const probe = { ldconfig: () => "", exists: () => false, env: () => undefined };
 * gpuPrerequisites(probe).filter((c) => !c.ok).map((c) => c.check)[0]; // "libvulkan1 (libvulkan.so.1)"
 * ```
 */
export function gpuPrerequisites(probe: SystemProbe): Check[] {
  const named = [probe.env("VK_DRIVER_FILES"), probe.env("VK_ICD_FILENAMES")]
    .flatMap((v) => v?.split(":") ?? [])
    .filter((f) => f.includes("nvidia"));
  const icd = [...named, ...ICD_DIRS.map((d) => `${d}/nvidia_icd.json`)].find((f) => probe.exists(f));
  const caps = probe.env("NVIDIA_DRIVER_CAPABILITIES");
  const graphics = !!caps && /(^|,)\s*(graphics|all)\s*(,|$)/.test(caps);
  return [
    library(probe, "libvulkan.so.1", "libvulkan1", "install libvulkan1 (the Vulkan loader)"),
    {
      check: "NVIDIA Vulkan ICD (nvidia_icd.json)",
      ok: !!icd,
      detail: icd ??
        `none in ${ICD_DIRS.join(", ")} or VK_DRIVER_FILES: the driver's Vulkan part is not mounted`,
    },
    library(
      probe,
      "libGLX_nvidia.so.0",
      "NVIDIA's Vulkan driver",
      "the driver's graphics libraries are not mounted",
    ),
    library(probe, "libXext.so.6", "libxext6", "install libxext6 (NVIDIA's Vulkan driver links it)"),
    library(probe, "libEGL.so.1", "libegl1", "install libegl1"),
    {
      check: "NVIDIA_DRIVER_CAPABILITIES includes graphics",
      ok: graphics,
      detail: caps === undefined
        ? "unset (NVIDIA's default is compute,utility: no Vulkan driver in the container)"
        : `'${caps}'${graphics ? "" : ": restart the container with graphics (or all)"}`,
    },
  ];
}

/**
 * The probe of this machine: `ldconfig -p`, the file system and the environment.
 *
 * @example
 * ```ts ignore
 * gpuPrerequisites(systemProbe()).filter((c) => !c.ok);
 * ```
 */
export function systemProbe(): SystemProbe {
  let cache: string | undefined;
  return {
    ldconfig: () => {
      if (cache !== undefined) return cache;
      for (const bin of ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]) {
        try {
          const out = new Deno.Command(bin, { args: ["-p"], stdout: "piped", stderr: "null" }).outputSync();
          if (out.success) return (cache = new TextDecoder().decode(out.stdout));
        } catch {
          // Not on PATH under this name: try the next.
        }
      }
      return (cache = "");
    },
    exists: (path) => {
      try {
        Deno.statSync(path);
        return true;
      } catch {
        return false;
      }
    },
    env: (name) => Deno.env.get(name),
  };
}
