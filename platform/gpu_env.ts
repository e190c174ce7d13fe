/**
 * Environment for stage subprocesses: Mesa's shader cache kept under the store, Vulkan
 * preferred where its ICD is installed, and the runtime dir Vulkan expects.
 * @module
 */

/** True when Mesa's Vulkan (lavapipe) or another Vulkan ICD is installed. */
export function hasVulkanIcd(): boolean {
  for (const dir of ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]) {
    try {
      if ([...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".json"))) return true;
    } catch {
      // Directory absent: try the next.
    }
  }
  return false;
}

/** Variables to add for a stage subprocess; existing user settings win. */
export function gpuEnv(home: string): Record<string, string> {
  const env: Record<string, string> = {};
  const cur = Deno.env.toObject();
  if (!cur.MESA_SHADER_CACHE_DIR) env.MESA_SHADER_CACHE_DIR = `${home}/mesa_shader_cache`;
  if (!cur.DENO_WEBGPU_BACKEND && hasVulkanIcd()) env.DENO_WEBGPU_BACKEND = "vulkan";
  if (!cur.XDG_RUNTIME_DIR) {
    env.XDG_RUNTIME_DIR = `${home}/run`;
    Deno.mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  }
  return env;
}
