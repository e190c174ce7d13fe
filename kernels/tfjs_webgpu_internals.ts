/**
 * The one place this project reaches into tfjs-backend-webgpu's private state, written
 * against @tensorflow/tfjs-backend-webgpu 4.22.0: an upgrade that renames these fields
 * breaks here and nowhere else. The fused AdamW pass needs it because tfjs programs have a
 * single output, and the pass writes weights and both moments in place.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** The private members used below (tfjs-backend-webgpu 4.22.0). */
interface Internals {
  uploadToGPU(dataId: object): void;
  tensorToBinding(t: tf.TensorInfo): GPUBindingResource;
  makeUniforms(u: { type: string; data: number[] }[]): GPUBindingResource;
  ensureCommandEncoderReady(): void;
  commandEncoder: GPUCommandEncoder;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  tensorMap: { get(id: object): { values: unknown } };
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/**
 * Records one dispatch of `pipeline` into tfjs's own command stream, in order with tfjs's
 * work: `tensors` are bound at bindings 0.. in order and the uniforms after them; `written`
 * are the tensors the shader changes in place (tfjs's CPU copies of them are dropped).
 */
export function recordDispatch(
  backend: WebGPUBackend,
  pipeline: GPUComputePipeline,
  tensors: tf.Tensor[],
  written: tf.Tensor[],
  uniforms: { type: string; data: number[] }[],
  groups: [number, number],
): void {
  const be = backend as unknown as Internals;
  for (const t of tensors) be.uploadToGPU(t.dataId);
  const bindGroup = backend.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...tensors.map((t, i) => ({ binding: i, resource: be.tensorToBinding(t) })),
      { binding: tensors.length, resource: be.makeUniforms(uniforms) },
    ],
  });
  be.ensureCommandEncoderReady();
  if (!be.computePassEncoder) be.computePassEncoder = be.commandEncoder.beginComputePass({});
  be.computePassEncoder.setPipeline(pipeline);
  be.computePassEncoder.setBindGroup(0, bindGroup);
  be.computePassEncoder.dispatchWorkgroups(groups[0], groups[1], 1);
  be.dispatchCountInPass++;
  for (const t of tensors) be.commandQueueOwnedIds.add(t.dataId);
  for (const t of written) be.tensorMap.get(t.dataId).values = null;
  if ((tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") as number) <= be.dispatchCountInPass) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
}
