/**
 * Dropout on WebGPU with its mask drawn in the shader from the project's counter-based hash
 * (`rng.ts`): element `i` of a site is kept iff `kept(key, i, threshold)`. tfjs's own dropout
 * fills a uniform tensor on the host and uploads it (616 MB per XLM-R base step); this one
 * uploads nothing, and its gradient recomputes the same mask instead of keeping it.
 * {@link referenceDropout} is the TypeScript twin, bit for bit.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import { KEEP_WGSL, keepThreshold, kept, pcg, PCG_WGSL } from "./rng.ts";
import { uniformData, type UniformField, wgslFields } from "./uniforms.ts";

/** One dropout site: its stream key, keep threshold and the rescale `1 / (1 - rate)`. */
export interface DropoutSite {
  key: number;
  threshold: number;
  scale: number;
}

/**
 * The site for drop probability `rate` and a site seed (`seeds.dropoutSite`).
 *
 * @example
 * ```ts
 * import { dropoutSite } from "./dropout.ts";
 * const s = dropoutSite(0.1, 12345);
 * if (Math.abs(s.scale - 1 / 0.9) > 1e-12) throw new Error(`${s.scale}`);
 * ```
 */
export function dropoutSite(rate: number, seed: number): DropoutSite {
  return { key: pcg(seed >>> 0), threshold: keepThreshold(1 - rate), scale: 1 / (1 - rate) };
}

const UNIFORMS: UniformField<DropoutSite>[] = [
  { name: "key", type: "u32", value: (s) => s.key },
  { name: "threshold", type: "u32", value: (s) => s.threshold },
  { name: "scale", type: "f32", value: (s) => s.scale },
];

/**
 * `out[i] = kept(i) ? x[i] * scale : 0`, four elements a thread where the size allows (vec4: a
 * quarter of the loads, which llvmpipe makes lane by lane).
 */
class DropoutProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames = ["X"];
  variableComponents: number[];
  outputComponent: number;
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = wgslFields(UNIFORMS);
  size = true;

  constructor(shape: number[]) {
    this.outputShape = shape;
    const size = tf.util.sizeFromShape(shape);
    this.outputComponent = size % 4 === 0 ? 4 : 1;
    this.variableComponents = [this.outputComponent];
    this.shaderKey = `graddropDropout${this.outputComponent}`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(shape);
    this.dispatch = webgpu_util.computeDispatch(
      { x: [0] },
      [size / this.outputComponent],
      this.workgroupSize,
    );
  }

  getUserCode(): string {
    const kept = (i: string) => `kept(uniforms.key, u32(${i}), uniforms.threshold)`;
    const [zero, mask] = this.outputComponent === 4
      ? ["vec4<f32>(0.0)", `vec4<bool>(${[0, 1, 2, 3].map((c) => kept(`index * 4 + ${c}`)).join(", ")})`]
      : ["0.0", kept("index")];
    return `
${PCG_WGSL}
${KEEP_WGSL}
fn main(index : i32) {
  if (index < uniforms.size) {
    setOutputAtIndex(index, select(${zero}, X[index] * uniforms.scale, ${mask}));
  }
}`;
  }
}

function run(x: tf.Tensor, site: DropoutSite): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  const info = backend.runWebGPUProgram(
    new DropoutProgram(x.shape),
    [x],
    "float32",
    uniformData(UNIFORMS, site),
  );
  return tf.engine().makeTensorFromTensorInfo(info);
}

/**
 * Dropout of `x` at `rate` with the mask of site seed `seed`, on WebGPU. The gradient is the
 * same mask and scale applied to `dy`.
 *
 * @example
 * ```ts ignore
 * const y = dropoutGpu(x, 0.1, seeds.dropoutSite(stepSeed, counter));
 * ```
 */
export function dropoutGpu(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  const site = dropoutSite(rate, seed);
  const f = tf.customGrad((input) => {
    const t = input as tf.Tensor;
    return { value: run(t, site), gradFunc: (dy) => run(dy as tf.Tensor, site) };
  });
  return f(x) as tf.Tensor;
}

/**
 * The twin on the host, in f32 as the shader computes it.
 *
 * @example
 * ```ts
 * import { referenceDropout } from "./dropout.ts";
 * const y = referenceDropout(new Float32Array(1000).fill(1), 0.5, 7);
 * const kept = y.filter((v) => v === 2).length;
 * if (kept < 400 || kept > 600 || y.some((v) => v !== 0 && v !== 2)) throw new Error(`kept ${kept}`);
 * ```
 */
export function referenceDropout(x: Float32Array, rate: number, seed: number): Float32Array {
  const s = dropoutSite(rate, seed);
  const scale = Math.fround(s.scale);
  return x.map((v, i) => (kept(s.key, i, s.threshold) ? Math.fround(v * scale) : 0));
}
