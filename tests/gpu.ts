/**
 * Test helper: initialise the WebGPU backend the way stages do (Vulkan preferred, shader
 * cache under a temp store), or report why it is unavailable.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { gpuEnv } from "../platform/gpu_env.ts";
import { defaultHome } from "../pipeline/store.ts";
import { initBackend } from "../model/backend.ts";
import type { BackendChoice } from "../platform/adapter.ts";

/** Sets the GPU environment variables for this process before the first adapter request. */
export function prepareGpuEnv(): void {
  for (const [k, v] of Object.entries(gpuEnv(defaultHome()))) if (!Deno.env.get(k)) Deno.env.set(k, v);
}

/** Switches tfjs to a backend (tests run several in one process). */
export async function useBackend(b: Exclude<BackendChoice, "auto">): Promise<void> {
  prepareGpuEnv();
  await initBackend(b);
  if (tf.getBackend() !== b) throw new Error(`backend ${b} did not initialise (got ${tf.getBackend()})`);
}
