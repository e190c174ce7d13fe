/**
 * What a project kernel standing in front of a tfjs-backend-webgpu kernel is (`cpu_adapter.ts`
 * installs them), and the one helper they share. Its own module, so that the stand-ins and
 * the switch that installs them do not import each other.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** What tfjs passes a kernel function. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs: tf.NamedAttrMap;
}

/** A project kernel for some of the calls to tfjs kernels `kernels`. */
export interface StandIn {
  kernels: string[];
  takes(args: KernelArgs): boolean;
  run(args: KernelArgs): tf.TensorInfo;
}

/**
 * `x` seen as `shape` (tfjs's own Reshape: no copy, one more reference to the same data).
 *
 * @example
 * ```ts ignore
 * const a3 = reshapeInfo(backend, a, [1, rows, cols]);
 * ```
 */
export function reshapeInfo(backend: WebGPUBackend, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return tf.getKernel("Reshape", "webgpu")!.kernelFunc({
    inputs: { x },
    backend,
    attrs: { shape },
  }) as tf.TensorInfo;
}
