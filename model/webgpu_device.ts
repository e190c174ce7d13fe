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

/** The adapter and device tfjs's WebGPU backend was made on, as reports show it. */
export interface TrainingDeviceInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  fallback: boolean;
  features: string[];
  limits: Record<string, number>;
}

let registered = false;
let made: TrainingDeviceInfo | null = null;

/** What tfjs's WebGPU backend runs on (null until the backend is made by this module). */
export function trainingDeviceInfo(): TrainingDeviceInfo | null {
  return made;
}

/**
 * Registers tfjs's "webgpu" backend on {@link requestTrainingDevice} (once, before the
 * backend is first made; a backend already made is left as it is). `wrap` may put a proxy
 * between tfjs and the device (the census's counting device).
 *
 * @example
 * ```ts ignore
 * registerTrainingBackend();
 * await tf.setBackend("webgpu");
 * ```
 */
export function registerTrainingBackend(wrap: (d: GPUDevice) => GPUDevice = (d) => d): void {
  if (registered) return;
  registered = true;
  if (tf.engine().registry["webgpu"]) return;
  tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", async () => {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) throw new Error("no WebGPU adapter");
    const device = await requestTrainingDevice(adapter);
    const i = adapter.info;
    const l = device.limits;
    made = {
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      fallback: i.isFallbackAdapter,
      features: [...device.features],
      limits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      },
    };
    return new WebGPUBackend(wrap(device), i);
  }, 3);
}
