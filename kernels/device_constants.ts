/**
 * Constants kept on the device for the life of the backend. A number passed to a tfjs op
 * becomes a new scalar tensor, and on WebGPU each one is uploaded through a staging buffer
 * of its own, every step; a constant from here is filled on the device once.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

const byBackend = new WeakMap<object, Map<string, tf.Tensor>>();

/**
 * A tensor of `shape` filled with `v` on the active backend, made once and kept (never
 * dispose it).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { deviceFill } from "./device_constants.ts";
 * await tf.setBackend("cpu");
 * if (deviceFill([1, 4], 1) !== deviceFill([1, 4], 1)) throw new Error("not cached");
 * ```
 */
export function deviceFill(shape: number[], v: number): tf.Tensor {
  const backend = tf.backend();
  let cache = byBackend.get(backend);
  if (!cache) byBackend.set(backend, cache = new Map());
  const key = `${shape.join("x")}:${v}`;
  let t = cache.get(key);
  if (!t || t.isDisposed) {
    // A fill, not tf.tensor: on WebGPU it is computed on the device, so not even one upload.
    t = tf.keep(tf.fill(shape, v));
    cache.set(key, t);
  }
  return t;
}

/** The scalar `v` as a kept device constant ({@link deviceFill}). */
export function deviceScalar(v: number): tf.Scalar {
  return deviceFill([], v) as tf.Scalar;
}
