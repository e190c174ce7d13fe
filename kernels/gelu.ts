/**
 * Exact GELU, `x * Φ(x)`, on WebGPU as one kernel forward and one backward. From tfjs ops it
 * takes five dispatches forward and about ten backward, and each step uploads its constants
 * (0.5, 1/√2, 1, 2/√π) as new scalars. `erf` is tfjs's own approximation (Abramowitz and
 * Stegun 7.1.26), so values match the tfjs-ops twin (`gelu` in `model/encoder.ts`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";

const erfWgsl = (type: string) => /* wgsl */ `
fn erfApprox(a : ${type}) -> ${type} {
  let t = 1.0 / (1.0 + 0.3275911 * abs(a));
  let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  return sign(a) * (1.0 - poly * exp(-a * a));
}`;

/**
 * `gelu(x)`, or with `Dy` the gradient `dy * (Φ(x) + x φ(x))`, four elements a thread where the
 * size allows (vec4: a quarter of the loads, which llvmpipe makes lane by lane; 2.5x faster
 * there).
 */
class GeluProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  constructor(shape: number[], readonly grad: boolean) {
    this.outputShape = shape;
    this.variableNames = grad ? ["X", "Dy"] : ["X"];
    const size = tf.util.sizeFromShape(shape);
    this.outputComponent = size % 4 === 0 ? 4 : 1;
    this.variableComponents = this.variableNames.map(() => this.outputComponent);
    this.shaderKey = `${grad ? "graddropGeluGrad" : "graddropGelu"}${this.outputComponent}`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(shape);
    const threads = [size / this.outputComponent];
    this.dispatch = webgpu_util.computeDispatch({ x: [0] }, threads, this.workgroupSize);
  }

  getUserCode(): string {
    const out = this.grad ? "Dy[index] * (cdf + x * 0.3989422804014327 * exp(-0.5 * x * x))" : "x * cdf";
    return `
${erfWgsl(this.outputComponent === 4 ? "vec4<f32>" : "f32")}
fn main(index : i32) {
  if (index < uniforms.size) {
    let x = X[index];
    let cdf = 0.5 * (1.0 + erfApprox(x * 0.7071067811865476));
    setOutputAtIndex(index, ${out});
  }
}`;
  }
}

function run(p: WebGPUProgram, inputs: tf.Tensor[]): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  return tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(p, inputs, "float32"));
}

/**
 * GELU on WebGPU with its gradient.
 *
 * @example
 * ```ts ignore
 * const h = geluGpu(linear(x, p, "...intermediate.dense"));
 * ```
 */
export function geluGpu(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args) => {
    const xi = args[0] as tf.Tensor;
    (args[1] as unknown as (ts: tf.Tensor[]) => void)([xi]);
    return {
      value: run(new GeluProgram(xi.shape, false), [xi]),
      gradFunc: (dy, [xs]) => run(new GeluProgram(xs.shape, true), [xs, dy as tf.Tensor]),
    };
  });
  return f(x) as tf.Tensor;
}
