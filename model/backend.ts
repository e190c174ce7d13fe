/**
 * Chooses and initialises the tfjs backend: `auto` takes WebGPU when an adapter exists
 * (the software adapter included) and says which adapter it got.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";

/** A backend choice as stages accept it. */
export type BackendChoice = "auto" | "webgpu" | "wasm" | "cpu";

/** What was initialised, for logs and provenance. */
export interface BackendInfo {
  backend: "webgpu" | "wasm" | "cpu";
  adapter?: string;
  fallback?: boolean;
  /** `vulkan` or `gl` on Mesa, from DENO_WEBGPU_BACKEND. */
  mesaPath?: string;
}

/** Describes the WebGPU adapter, or undefined when there is none. */
export async function webgpuAdapter(): Promise<{ adapter: string; fallback: boolean } | undefined> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return undefined;
  const a = await gpu.requestAdapter();
  if (!a) return undefined;
  const info = a.info;
  return {
    adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(" / ") || "unknown",
    fallback: (a as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      info.isFallbackAdapter ??
      false,
  };
}

/**
 * Initialises tfjs on the chosen backend.
 *
 * @example
 * ```ts
 * const info = await initBackend("auto"); // { backend: "webgpu", adapter: "... llvmpipe ...", fallback: true }
 * ```
 */
export async function initBackend(choice: BackendChoice): Promise<BackendInfo> {
  tf.env().set("DEBUG", false);
  if (choice === "auto" || choice === "webgpu") {
    const a = await webgpuAdapter();
    if (a && (await tf.setBackend("webgpu"))) {
      await tf.ready();
      return { backend: "webgpu", ...a, mesaPath: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default" };
    }
    if (choice === "webgpu") throw new Error("backend webgpu requested but no WebGPU adapter is available");
  }
  if (choice === "wasm") {
    await import("@tensorflow/tfjs-backend-wasm");
    const dir = new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url);
    setWasmPaths(dir.href);
    if (!(await tf.setBackend("wasm"))) throw new Error("tfjs wasm backend failed to initialise");
    await tf.ready();
    return { backend: "wasm" };
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return { backend: "cpu" };
}
