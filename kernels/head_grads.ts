/**
 * The classification head's ops with their gradients written out, for WebGPU, where tfjs's
 * own upload something every step: the gradient of `sum` in cross-entropy a `ones()` of the
 * logits' shape, that of `tanh` a new scalar 1. Constants come from {@link deviceScalar}.
 * The twins are `crossEntropy` and `tf.tanh` as `model/encoder.ts` uses them (tfjs ops).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deviceScalar } from "./device_constants.ts";

/**
 * Mean cross-entropy of `logits` `[N, C]` against `labels`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { crossEntropyWithGrad } from "./head_grads.ts";
 * await tf.setBackend("cpu");
 * const l = await crossEntropyWithGrad(tf.zeros([2, 4]), Int32Array.of(1, 3)).data();
 * if (Math.abs(l[0] - Math.log(4)) > 1e-6) throw new Error(`${l[0]}`);
 * ```
 */
export function crossEntropyWithGrad(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  const [N, C] = logits.shape;
  const onehot = tf.oneHot(tf.tensor1d(labels, "int32"), C);
  const f = tf.customGrad((...args) => {
    const [x, oh] = args as tf.Tensor[];
    (args[2] as unknown as (ts: tf.Tensor[]) => void)([x, oh]);
    return {
      value: tf.logSoftmax(x).mul(oh).sum().mul(deviceScalar(-1 / N)),
      gradFunc: (dy, [xs, ohs]) => [
        tf.softmax(xs).sub(ohs).mul((dy as tf.Tensor).mul(deviceScalar(1 / N))),
        tf.zerosLike(ohs),
      ],
    };
  });
  return f(logits, onehot) as tf.Scalar;
}

/**
 * `tanh(x)` with the gradient `dy * (1 - y^2)` from a device constant.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { tanhWithGrad } from "./head_grads.ts";
 * await tf.setBackend("cpu");
 * const g = await tf.grad((x: tf.Tensor) => tanhWithGrad(x))(tf.scalar(0)).data();
 * if (g[0] !== 1) throw new Error(`${g[0]}`);
 * ```
 */
export function tanhWithGrad(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args) => {
    const y = tf.tanh(args[0] as tf.Tensor);
    (args[1] as unknown as (ts: tf.Tensor[]) => void)([y]);
    return { value: y, gradFunc: (dy, [ys]) => (dy as tf.Tensor).mul(deviceScalar(1).sub(ys.square())) };
  });
  return f(x) as tf.Tensor;
}
