/**
 * `doctor [--json] [--expect-gpu]`: Deno version, the WebGPU adapter and the limits tfjs gets
 * on it, what `auto` resolves to for training (tfjs backend) and evaluation (onnxruntime-web
 * execution provider), which tfjs backends initialise, the GPU prerequisites of the container,
 * and a GradDrop mask self-check (WGSL kernel against the TypeScript reference, ~1M elements).
 * Runs standalone too: `deno run -A platform/doctor.ts --expect-gpu`.
 * @module
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { initBackend } from "../model/backend.ts";
import { maskTensor } from "../kernels/graddrop_mask.ts";
import { maskSpec, referenceMask } from "../kernels/mask_spec.ts";
import { gpuEnv } from "./gpu_env.ts";
import { defaultHome } from "../pipeline/store.ts";
import { explainBackend, explainProvider, probeAdapter } from "./adapter.ts";
import { gpuPrerequisites, systemProbe } from "./gpu_prereqs.ts";

/** Exit code of `--expect-gpu` when only a software adapter (or none) is found. */
export const NO_GPU_EXIT = 3;

/** The device limits tfjs-backend-webgpu requested, as the device reports them. */
const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
] as const;

async function maskSelfCheck() {
  const elements = 1 << 20;
  const spec = maskSpec({ seed: 12345, step: 7, stream: 3, keep: 0.5, divisor: 1, rescale: false });
  const got = await maskTensor([elements], spec).data();
  const ref = referenceMask(spec, elements);
  let mismatches = 0, kept = 0;
  for (let i = 0; i < elements; i++) {
    if (got[i] !== ref[i]) mismatches++;
    kept += got[i];
  }
  return {
    backend: tf.getBackend(),
    parity: mismatches === 0,
    mismatches,
    elements,
    keepRate: kept / elements,
  };
}

/**
 * Runs the checks and prints them. Returns the exit code: 0 ok, 1 when the mask parity
 * fails, {@link NO_GPU_EXIT} under `--expect-gpu` when no hardware adapter was found.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await doctorCommand(["--json", "--expect-gpu"]));
 * ```
 */
export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { json: { type: "boolean", default: false }, "expect-gpu": { type: "boolean", default: false } },
  });
  for (const [k, v] of Object.entries(gpuEnv(defaultHome()))) if (!Deno.env.get(k)) Deno.env.set(k, v);
  const adapter = await probeAdapter();
  const [training, evaluation] = [await explainBackend("auto"), await explainProvider("auto")];
  const backends: Record<string, boolean> = {};
  for (const b of ["cpu", "wasm", "webgpu"] as const) {
    try {
      backends[b] = (await initBackend(b)).backend === b;
    } catch {
      backends[b] = false;
    }
  }
  let limits: Record<string, number> | null = null;
  if (backends.webgpu) {
    await initBackend("webgpu");
    const l = (tf.backend() as WebGPUBackend).device.limits;
    limits = Object.fromEntries(LIMITS.map((k) => [k, l[k]]));
  } else await initBackend("cpu");
  const graddrop = await maskSelfCheck();
  const prerequisites = gpuPrerequisites(systemProbe());
  const gpuFound = !!adapter && !adapter.software;
  const report = {
    deno: Deno.version.deno,
    adapter: adapter ?? null,
    device_limits: limits,
    mesa_path: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
    training: { backend: training.choice, reason: training.reason },
    evaluation: { provider: evaluation.choice, reason: evaluation.reason },
    tfjs_backends: backends,
    gpu_prerequisites: prerequisites,
    graddrop,
  };
  if (values.json) console.log(JSON.stringify(report));
  else {
    console.log(`deno ${report.deno}`);
    console.log(
      `webgpu adapter: ${
        adapter
          ? `${adapter.description} (vendor ${adapter.vendor}, fallback=${adapter.isFallbackAdapter}, software=${adapter.software}, mesa=${report.mesa_path})`
          : "none"
      }`,
    );
    if (limits) {
      console.log(`device limits: ${Object.entries(limits).map(([k, v]) => `${k}=${v}`).join(", ")}`);
    }
    console.log(`training (backend auto): ${training.choice} (${training.reason})`);
    console.log(`evaluation (provider auto): ${evaluation.choice} (${evaluation.reason})`);
    console.log(
      `tfjs backends: ${Object.entries(backends).map(([k, v]) => `${k} ${v ? "ok" : "FAILED"}`).join(", ")}`,
    );
    console.log(
      `graddrop mask on ${graddrop.backend}: ${
        graddrop.parity ? "bit-identical to the reference" : `${graddrop.mismatches} MISMATCHES`
      } over ${graddrop.elements} elements, keep rate ${graddrop.keepRate.toFixed(4)} (expected 0.5)`,
    );
  }
  if (values["expect-gpu"] && !gpuFound) {
    const missing = prerequisites.filter((c) => !c.ok);
    console.error(
      `--expect-gpu: no hardware WebGPU adapter (${
        adapter ? `only ${adapter.description}, a software adapter` : "no adapter at all"
      }). ${missing.length ? "Missing or suspicious:" : "Every prerequisite checked is present."}`,
    );
    for (const c of missing) console.error(`  - ${c.check}: ${c.detail}`);
    return NO_GPU_EXIT;
  }
  return graddrop.parity ? 0 : 1;
}

if (import.meta.main) Deno.exit(await doctorCommand(Deno.args));
