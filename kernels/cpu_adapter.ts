/**
 * Kernels for a software WebGPU adapter (Mesa's llvmpipe), which runs WGSL on the CPU: each
 * stands in front of a tfjs-backend-webgpu kernel and takes the calls it was written for,
 * passing every other call, and every call on a hardware adapter, to tfjs's own. The row
 * kernels (LayerNorm, attention softmax) and tfjs's submit batch are sized for it too, and
 * `model/encoder.ts` runs attention as `fused_attention.ts` while the switch is on.
 * `model/backend.ts` turns them on when the adapter is software.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { matMulStandIn } from "./cpu_adapter_matmul.ts";
import { columnSumStandIn, lastAxisTransposeStandIn } from "./cpu_adapter_layout.ts";
import { useSoftwareRowWorkgroups } from "./layer_norm.ts";
import type { KernelArgs } from "./stand_in.ts";

const STAND_INS = [matMulStandIn, columnSumStandIn, lastAxisTransposeStandIn];
/**
 * Dispatches recorded before tfjs submits its command buffer: tfjs's 15 keeps a GPU fed early;
 * on llvmpipe each submit costs a synchronisation, and 100 made the shipped model's step about
 * 7% faster (medians of 9 steps, 15 and 100 alternated twice).
 */
const SOFTWARE_SUBMIT_BATCH = 100;
const TFJS_SUBMIT_BATCH = 15;
let enabled = false;
let installed = false;

/**
 * Puts the stand-ins in front of tfjs's webgpu kernels (once) and turns them, and the row
 * kernels' sizing, on (a software adapter) or off (a GPU).
 *
 * @example
 * ```ts ignore
 * useCpuAdapterKernels(adapter.software);
 * ```
 */
export function useCpuAdapterKernels(on: boolean): void {
  enabled = on;
  useSoftwareRowWorkgroups(on);
  tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", on ? SOFTWARE_SUBMIT_BATCH : TFJS_SUBMIT_BATCH);
  if (installed) return;
  installed = true;
  for (const standIn of STAND_INS) {
    for (const kernelName of standIn.kernels) {
      const tfjs = tf.getKernel(kernelName, "webgpu");
      if (!tfjs) throw new Error(`tfjs-backend-webgpu has no ${kernelName} kernel to stand in front of`);
      tf.unregisterKernel(kernelName, "webgpu");
      tf.registerKernel({
        ...tfjs,
        kernelFunc: (args) => {
          const a = args as unknown as KernelArgs;
          return enabled && standIn.takes(a) ? standIn.run(a) : tfjs.kernelFunc(args);
        },
      });
    }
  }
}

/** Whether the software-adapter kernels are on. */
export function cpuAdapterKernelsEnabled(): boolean {
  return enabled;
}
