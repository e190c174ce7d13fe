/**
 * GradDrop mask as a tfjs WebGPU program: `out[i] = kept(i) ? g[i] * scale : 0`.
 * One program class per kernel, shader text next to its dispatch logic, as in
 * tfjs-backend-webgpu. On cpu/wasm the same mask comes from {@link referenceMask}.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import { KEEP_WGSL, PCG_WGSL } from "./rng.ts";
import { type MaskSpec, referenceMask } from "./mask_spec.ts";
import { uniformData, type UniformField, wgslFields } from "./uniforms.ts";

/** The mask program's uniforms, read from a mask spec. */
const MASK_UNIFORMS: UniformField<MaskSpec>[] = [
  { name: "key", type: "u32", value: (m) => m.key },
  { name: "divisor", type: "u32", value: (m) => m.divisor },
  { name: "threshold", type: "u32", value: (m) => m.threshold },
  { name: "scale", type: "f32", value: (m) => m.scale },
];

/** Masks (and optionally rescales) a gradient. */
class GradDropMaskProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames = ["G"];
  workgroupSize: [number, number, number] = [256, 1, 1];
  uniforms = wgslFields(MASK_UNIFORMS);
  size = true;

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.shaderKey = "graddropMask";
    this.dispatchLayout = webgpu_util.flatDispatchLayout(this.outputShape);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, this.outputShape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
${PCG_WGSL}
${KEEP_WGSL}
fn main(index : i32) {
  if (index < uniforms.size) {
    let k = kept(uniforms.key, u32(index) / uniforms.divisor, uniforms.threshold);
    setOutputAtIndex(index, select(0.0, getGByOutputIndex(index) * uniforms.scale, k));
  }
}`;
  }
}

/**
 * Applies a GradDrop mask to a gradient on the active backend: the WGSL program on WebGPU,
 * the TypeScript reference elsewhere.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { applyMask } from "./graddrop_mask.ts";
 * import { maskSpec } from "./mask_spec.ts";
 * await tf.setBackend("cpu");
 * const masked = applyMask(tf.ones([8]), maskSpec({ seed: 1, step: 0, stream: 0, keep: 0.5, divisor: 1, rescale: false }));
 * const kept = (await masked.data()).filter((x) => x === 1).length;
 * if (kept === 0 || kept === 8) throw new Error(`kept ${kept} of 8`);
 * ```
 */
export function applyMask(g: tf.Tensor, spec: MaskSpec): tf.Tensor {
  if (tf.getBackend() === "webgpu") {
    const backend = tf.backend() as WebGPUBackend;
    const info = backend.runWebGPUProgram(
      new GradDropMaskProgram(g.shape),
      [g],
      "float32",
      uniformData(MASK_UNIFORMS, spec),
    );
    return tf.engine().makeTensorFromTensorInfo(info);
  }
  return tf.tidy(() => g.mul(maskTensor(g.shape, spec)).mul(spec.scale));
}

/** The 0/1 keep mask as a float tensor (WGSL on WebGPU, reference elsewhere), scale ignored. */
export function maskTensor(shape: number[], spec: MaskSpec): tf.Tensor {
  if (tf.getBackend() === "webgpu") {
    return tf.tidy(() => applyMask(tf.ones(shape), { ...spec, scale: 1 }));
  }
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from(referenceMask(spec, n)), shape);
}
