/**
 * A GPUDevice that runs nothing: it accepts every call tfjs-backend-webgpu and this project's
 * kernels make, hands out buffers that hold no memory, and resolves every map at once. With
 * it a training step of any size runs on a CPU-only machine in host time alone, so the
 * step's WebGPU traffic can be counted (see `counting_device.ts`) at shapes no local adapter
 * could hold. Values are meaningless: reads return zeros.
 * @module
 */

/** Limits of a large discrete GPU as wgpu reports them on NVIDIA (H100/H200). */
export const RECORDING_LIMITS = {
  maxStorageBufferBindingSize: 2147483647,
  maxBufferSize: 2147483647,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 1024,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupStorageSize: 49152,
  maxStorageBuffersPerShaderStage: 32,
  maxUniformBufferBindingSize: 65536,
  minStorageBufferOffsetAlignment: 256,
  minUniformBufferOffsetAlignment: 256,
};

/**
 * A buffer with a size and usage but no storage. It passes `instanceof GPUBuffer`, which tfjs
 * checks before binding or releasing it; a mapped range is a fresh ArrayBuffer (zeros), made
 * only when asked for, so a 1 GB tensor costs nothing unless the host writes into it.
 */
function fakeBuffer(desc: GPUBufferDescriptor): GPUBuffer {
  const b = Object.create(GPUBuffer.prototype);
  let mapState: GPUBufferMapState = desc.mappedAtCreation ? "mapped" : "unmapped";
  const props: Record<string, unknown> = {
    size: desc.size,
    usage: desc.usage,
    label: desc.label ?? "",
    getMappedRange: (offset = 0, size?: number) => new ArrayBuffer(size ?? desc.size - offset),
    unmap: () => void (mapState = "unmapped"),
    mapAsync: () => {
      mapState = "mapped";
      return Promise.resolve();
    },
    destroy: () => {},
  };
  for (const [k, value] of Object.entries(props)) Object.defineProperty(b, k, { value, configurable: true });
  Object.defineProperty(b, "mapState", { get: () => mapState });
  return b as GPUBuffer;
}

const noop = () => {};

function fakePass(): GPUComputePassEncoder {
  return {
    label: "",
    setPipeline: noop,
    setBindGroup: noop,
    dispatchWorkgroups: noop,
    dispatchWorkgroupsIndirect: noop,
    end: noop,
    pushDebugGroup: noop,
    popDebugGroup: noop,
    insertDebugMarker: noop,
  } as unknown as GPUComputePassEncoder;
}

function fakeEncoder(): GPUCommandEncoder {
  return {
    label: "",
    beginComputePass: fakePass,
    copyBufferToBuffer: noop,
    clearBuffer: noop,
    resolveQuerySet: noop,
    writeTimestamp: noop,
    finish: () => ({ label: "" }) as GPUCommandBuffer,
  } as unknown as GPUCommandEncoder;
}

/**
 * A new recording device (with {@link RECORDING_LIMITS} unless given others).
 *
 * @example
 * ```ts
 * import { recordingDevice } from "./recording_device.ts";
 * const d = recordingDevice();
 * const b = d.createBuffer({ size: 2 ** 30, usage: GPUBufferUsage.STORAGE });
 * if (!(b instanceof GPUBuffer) || b.size !== 2 ** 30) throw new Error("not a 1 GiB buffer");
 * ```
 */
export function recordingDevice(limits: Record<string, number> = RECORDING_LIMITS): GPUDevice {
  const events = new EventTarget();
  const pipeline = (d: GPUComputePipelineDescriptor) =>
    ({ label: d.label ?? "", getBindGroupLayout: () => ({ label: "" }) }) as unknown as GPUComputePipeline;
  const device = {
    label: "recording",
    features: new Set<string>(),
    limits: { ...limits },
    lost: new Promise<GPUDeviceLostInfo>(noop),
    queue: {
      label: "",
      submit: noop,
      writeBuffer: noop,
      onSubmittedWorkDone: () => Promise.resolve(),
    },
    createBuffer: fakeBuffer,
    createShaderModule: (d: GPUShaderModuleDescriptor) => ({ label: d.label ?? "" }),
    createComputePipeline: pipeline,
    createComputePipelineAsync: (d: GPUComputePipelineDescriptor) => Promise.resolve(pipeline(d)),
    createBindGroup: () => ({ label: "" }),
    createBindGroupLayout: () => ({ label: "" }),
    createPipelineLayout: () => ({ label: "" }),
    createCommandEncoder: fakeEncoder,
    createQuerySet: (d: GPUQuerySetDescriptor) => ({ ...d, destroy: noop }),
    pushErrorScope: noop,
    popErrorScope: () => Promise.resolve(null),
    addEventListener: events.addEventListener.bind(events),
    removeEventListener: events.removeEventListener.bind(events),
    dispatchEvent: events.dispatchEvent.bind(events),
    destroy: noop,
  };
  return device as unknown as GPUDevice;
}
