/**
 * Initialises the tfjs backend a choice resolves to ({@link resolveBackend}: `auto` takes
 * WebGPU on a hardware adapter and wasm when the only adapter is a software one), installs
 * the device-error guard on WebGPU and the wasm kernels this project adds, and says what it
 * chose and why.
 * @module
 */
import { useCpuAdapterKernels } from "../kernels/cpu_adapter.ts";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { installWasmMatmul } from "../kernels/wasm_matmul.ts";
import { installWasmAdamW } from "../kernels/wasm_adamw.ts";
import {
  adapterLabel,
  type Backend,
  type BackendChoice,
  explainBackend,
  probeAdapter,
} from "../platform/adapter.ts";
import { guardDevice } from "./device_guard.ts";
import { registerTrainingBackend } from "./webgpu_device.ts";

/** What was initialised and why, for logs and provenance. */
export interface BackendInfo {
  backend: Backend;
  /** Why this backend: the request, or for `auto` the adapter that decided it. */
  reason: string;
  adapter?: string;
  fallback?: boolean;
  /** `vulkan` or `gl` on Mesa, from DENO_WEBGPU_BACKEND. */
  mesaPath?: string;
  /** Largest tensor the device binds, bytes (WebGPU only). */
  bindingLimit?: number;
}

/**
 * Initialises tfjs on the backend `choice` resolves to on this machine.
 *
 * @example
 * ```ts ignore
 * const info = await initBackend("auto"); // { backend: "wasm", reason: "auto: only a software adapter (llvmpipe ...)" }
 * ```
 */
export async function initBackend(choice: BackendChoice): Promise<BackendInfo> {
  const { choice: backend, reason } = await explainBackend(choice);
  if (backend === "webgpu") {
    const a = await probeAdapter();
    if (!a) throw new Error("backend webgpu requested but no WebGPU adapter is available");
    registerTrainingBackend();
    if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs webgpu backend failed to initialise");
    await tf.ready();
    const b = tf.backend() as WebGPUBackend;
    guardDevice(b);
    useCpuAdapterKernels(a.software);
    return {
      backend,
      reason,
      adapter: adapterLabel(a),
      fallback: a.software,
      mesaPath: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
      bindingLimit: Math.min(b.device.limits.maxStorageBufferBindingSize, b.device.limits.maxBufferSize),
    };
  }
  if (backend === "wasm") {
    await import("@tensorflow/tfjs-backend-wasm");
    registerWasmSegmentSum();
    const dir = new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url);
    setWasmPaths(dir.href);
    if (!(await tf.setBackend("wasm"))) throw new Error("tfjs wasm backend failed to initialise");
    await tf.ready();
    await installWasmMatmul();
    await installWasmAdamW();
    return { backend, reason };
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return { backend, reason };
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
