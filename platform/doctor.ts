/**
 * `main.ts doctor`: Deno version, the WebGPU adapter, which tfjs backends initialise, and a
 * GradDrop mask self-check (WGSL kernel against the TypeScript reference, ~1M elements).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../model/backend.ts";
import { adapterLabel, probeAdapter } from "./adapter.ts";
import { maskTensor } from "../kernels/graddrop_mask.ts";
import { maskSpec, referenceMask } from "../kernels/mask_spec.ts";
import { gpuEnv } from "./gpu_env.ts";

/** Runs the checks and prints them; returns the exit code (1 when the mask parity fails). */
export async function doctor(json: boolean): Promise<number> {
  const home = Deno.env.get("GRADDROP_HOME") ?? `${new URL("..", import.meta.url).pathname}.graddrop`;
  for (const [k, v] of Object.entries(gpuEnv(home))) if (!Deno.env.get(k)) Deno.env.set(k, v);
  const a = await probeAdapter();
  const adapter = a && { adapter: adapterLabel(a), fallback: a.software };
  const backends: Record<string, boolean> = {};
  for (const b of ["cpu", "wasm", "webgpu"] as const) {
    try {
      backends[b] = (await initBackend(b)).backend === b;
    } catch {
      backends[b] = false;
    }
  }
  const active = backends.webgpu ? "webgpu" : "cpu";
  await initBackend(active);
  const elements = 1 << 20;
  const spec = maskSpec({ seed: 12345, step: 7, stream: 3, keep: 0.5, divisor: 1, rescale: false });
  const got = await maskTensor([elements], spec).data();
  const ref = referenceMask(spec, elements);
  let mismatches = 0, kept = 0;
  for (let i = 0; i < elements; i++) {
    if (got[i] !== ref[i]) mismatches++;
    kept += got[i];
  }
  const report = {
    deno: Deno.version.deno,
    webgpu: {
      available: !!adapter,
      adapter: adapter?.adapter ?? null,
      fallback: adapter?.fallback ?? null,
      mesa_path: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
    },
    tfjs_backends: backends,
    graddrop: {
      backend: tf.getBackend(),
      parity: mismatches === 0,
      mismatches,
      elements,
      keepRate: kept / elements,
    },
  };
  if (json) console.log(JSON.stringify(report));
  else {
    console.log(`deno ${report.deno}`);
    console.log(
      `webgpu: ${
        adapter
          ? `${adapter.adapter} (fallback=${adapter.fallback}, mesa=${report.webgpu.mesa_path})`
          : "no adapter"
      }`,
    );
    console.log(
      `tfjs backends: ${Object.entries(backends).map(([k, v]) => `${k} ${v ? "ok" : "FAILED"}`).join(", ")}`,
    );
    console.log(
      `graddrop mask on ${report.graddrop.backend}: ${
        mismatches === 0 ? "bit-identical to the reference" : `${mismatches} MISMATCHES`
      } over ${elements} elements, keep rate ${(kept / elements).toFixed(4)} (expected 0.5)`,
    );
  }
  return mismatches === 0 ? 0 : 1;
}
