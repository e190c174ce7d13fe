/**
 * A plain copy kernel: the memory-bound limit the fused GradDrop update is measured against.
 * @module
 */
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";

/** `out[i] = x[i]` with the same workgroup size as the GradDrop kernels. */
export class CopyProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = "graddropBenchCopy";
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames = ["X"];
  workgroupSize: [number, number, number] = [256, 1, 1];
  size = true;

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(shape);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, shape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index < uniforms.size) { setOutputAtIndex(index, getXByOutputIndex(index)); }
}`;
  }
}
