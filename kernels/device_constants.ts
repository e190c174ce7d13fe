/**
 * Scalars kept on the device for the life of the backend. A number passed to a tfjs op
 * becomes a new scalar tensor, and on WebGPU each one is uploaded through a staging buffer
 * of its own, every step; a constant from here is uploaded once.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

const byBackend = new WeakMap<object, Map<number, tf.Scalar>>();

/**
 * The scalar `v` on the active backend, made once and kept (never dispose it).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { deviceScalar } from "./device_constants.ts";
 * await tf.setBackend("cpu");
 * if (deviceScalar(0.5) !== deviceScalar(0.5)) throw new Error("not cached");
 * ```
 */
export function deviceScalar(v: number): tf.Scalar {
  const backend = tf.backend();
  let cache = byBackend.get(backend);
  if (!cache) byBackend.set(backend, cache = new Map());
  let s = cache.get(v);
  if (!s || s.isDisposed) {
    // A fill, not tf.scalar: on WebGPU it is computed on the device, so not even one upload.
    s = tf.keep(tf.fill([], v)) as tf.Scalar;
    cache.set(v, s);
  }
  return s;
}
