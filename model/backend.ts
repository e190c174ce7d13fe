/**
 * Chooses and initialises the tfjs backend: `auto` takes WebGPU when an adapter exists
 * (the software adapter included) and says which adapter it got.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { installWasmMatmul } from "../kernels/wasm_matmul.ts";

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
  // PROD silences tfjs's "looks like you are running TensorFlow.js in Node.js" banner and
  // skips its debug-only checks.
  tf.env().set("PROD", true);
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
    registerWasmSegmentSum();
    const dir = new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url);
    setWasmPaths(dir.href);
    if (!(await tf.setBackend("wasm"))) throw new Error("tfjs wasm backend failed to initialise");
    await tf.ready();
    await installWasmMatmul();
    return { backend: "wasm" };
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return { backend: "cpu" };
}

let segmentSumRegistered = false;

/**
 * tfjs-backend-wasm 4.22 has no `UnsortedSegmentSum`, which the gradient of `gather` (the
 * embedding lookup) needs; this JS kernel on the wasm heap fills the gap.
 */
function registerWasmSegmentSum(): void {
  if (segmentSumRegistered) return;
  segmentSumRegistered = true;
  tf.registerKernel({
    kernelName: "UnsortedSegmentSum",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (attrs as { numSegments: number }).numSegments;
      // deno-lint-ignore no-explicit-any
      const b = backend as any;
      const xv = b.typedArrayFromHeap(x) as Float32Array;
      const ids = b.typedArrayFromHeap(segmentIds) as Int32Array;
      const inner = x.shape.slice(1).reduce((a, c) => a * c, 1);
      const out = b.makeOutput([numSegments, ...x.shape.slice(1)], "float32");
      const ov = b.typedArrayFromHeap(out) as Float32Array;
      ov.fill(0);
      for (let i = 0; i < ids.length; i++) {
        const s = ids[i];
        if (s < 0 || s >= numSegments) continue;
        for (let j = 0; j < inner; j++) ov[s * inner + j] += xv[i * inner + j];
      }
      return out;
    },
  });
}
