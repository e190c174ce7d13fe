/**
 * The GPUDevice tfjs's WebGPU backend runs on, requested the way tfjs-backend-webgpu 4.22
 * requests it (its limits, timestamp queries where the adapter has them) plus more storage
 * buffers per shader stage: tfjs asks for the default 8, which lets the fused AdamW pass
 * bind one tensor per dispatch; with 32 it updates seven.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** Storage buffers per stage asked for when the adapter has them (seven AdamW tensors and a clip). */
const STORAGE_BUFFERS = 32;

/**
 * A device from `adapter` with tfjs's limits and up to 32 storage buffers per stage.
 *
 * @example
 * ```ts ignore
 * const device = await requestTrainingDevice(await navigator.gpu.requestAdapter());
 * ```
 */
export function requestTrainingDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const l = adapter.limits;
  return adapter.requestDevice({
    requiredFeatures: adapter.features.has("timestamp-query") ? ["timestamp-query"] : [],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, STORAGE_BUFFERS),
    },
  });
}

let registered = false;

/**
 * Registers tfjs's "webgpu" backend on {@link requestTrainingDevice} (once, before the
 * backend is first made; a backend already made is left as it is).
 *
 * @example
 * ```ts ignore
 * registerTrainingBackend();
 * await tf.setBackend("webgpu");
 * ```
 */
export function registerTrainingBackend(): void {
  if (registered) return;
  registered = true;
  if (tf.engine().registry["webgpu"]) return;
  tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", async () => {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) throw new Error("no WebGPU adapter");
    return new WebGPUBackend(await requestTrainingDevice(adapter), adapter.info);
  }, 3);
}
