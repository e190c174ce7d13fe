/**
 * Turns WebGPU device errors into exceptions. tfjs-backend-webgpu never checks them: a
 * tensor over the binding limit reads back as zeros and the only trace is an uncaptured
 * error event on the device. The guard records those events and makes the next read of any
 * tensor reject with them, so a step, an evaluation or a checkpoint save fails instead of
 * carrying zeros on. onnxruntime-web's WebGPU provider makes its own device: {@link watchDevice}
 * puts it under the same guard, and an evaluation checks it after each batch.
 * @module
 */
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** A WebGPU error the device reported while tfjs was computing. */
export class DeviceError extends Error {
  override name = "DeviceError";
}

const guarded = new WeakSet<GPUDevice>();
const pending: string[] = [];

/**
 * Throws the errors any watched device reported since the last check, if any, and forgets
 * them.
 *
 * @example
 * ```ts ignore
 * const out = await session.run(feeds);
 * throwIfDeviceError(); // onnxruntime-web's WebGPU errors surface here
 * ```
 */
export function throwIfDeviceError(): void {
  if (pending.length === 0) return;
  const errors = pending.splice(0);
  throw new DeviceError(
    `WebGPU device error (tfjs would have returned wrong values, often zeros): ${errors.join("; ")}` +
      (errors.some((e) => /binding_size|max_.*buffer/i.test(e))
        ? ". A tensor is larger than the device can bind: use a smaller batch or sequence, or a GPU"
        : ""),
  );
}

/**
 * Records a device's uncaptured errors and its loss for {@link throwIfDeviceError} (once per
 * device): tfjs's device through {@link guardDevice}, onnxruntime-web's directly.
 *
 * @example
 * ```ts ignore
 * watchDevice(await ort.env.webgpu.device);
 * ```
 */
export function watchDevice(device: GPUDevice): void {
  if (guarded.has(device)) return;
  guarded.add(device);
  device.addEventListener("uncapturederror", (e) => {
    pending.push((e as GPUUncapturedErrorEvent).error.message);
  });
  device.lost.then((info) => pending.push(`device lost (${info.reason}): ${info.message}`));
}

/**
 * Installs the guard on tfjs's WebGPU backend (once per device): records uncaptured errors
 * and wraps `read`/`readSync` so that they throw after the data arrives. The event is
 * dispatched before the read that follows the failing dispatch resolves. A synchronous read
 * of GPU data, which tfjs cannot do in Deno, fails with a message saying so.
 *
 * @example
 * ```ts ignore
 * guardDevice(tf.backend() as WebGPUBackend);
 * await tf.zeros([40_000_000]).sum().data(); // rejects with DeviceError on a 128 MiB-binding adapter
 * ```
 */
export function guardDevice(backend: WebGPUBackend): void {
  if (guarded.has(backend.device)) return;
  watchDevice(backend.device);
  const read = backend.read.bind(backend);
  const readSync = backend.readSync.bind(backend);
  backend.read = async (dataId) => {
    const values = await read(dataId);
    throwIfDeviceError();
    return values;
  };
  backend.readSync = (dataId) => {
    let values;
    try {
      values = readSync(dataId);
    } catch (e) {
      // tfjs reads a GPU buffer synchronously through a 2D OffscreenCanvas, which Deno lacks.
      if (!/clearRect|getContext|OffscreenCanvas/.test(String(e))) throw e;
      throw new Error("dataSync()/arraySync() cannot read a WebGPU tensor in Deno: use await data()");
    }
    throwIfDeviceError();
    return values;
  };
}
