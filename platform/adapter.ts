/**
 * The WebGPU adapter this machine offers, whether it is real hardware, and what `auto` picks
 * from it: the tfjs backend for training and the onnxruntime-web execution provider for
 * evaluation. Imports no tfjs, so stages can compute their cache key cheaply.
 * @module
 */

/** A tfjs backend. */
export type Backend = "webgpu" | "wasm" | "cpu";

/** A backend choice as stages accept it. */
export type BackendChoice = "auto" | Backend;

/** An onnxruntime-web execution provider. */
export type Provider = "webgpu" | "wasm";

/** An execution-provider choice as `eval/classify` accepts it. */
export type ProviderChoice = "auto" | Provider;

/** What the adapter says about itself, and the limits it can grant. */
export interface AdapterReport {
  description: string;
  vendor: string;
  architecture: string;
  device: string;
  isFallbackAdapter: boolean;
  /** A fallback adapter, or one whose names say llvmpipe, lavapipe or SwiftShader. */
  software: boolean;
  /** The maxima tfjs-backend-webgpu requests for its device (it asks for the adapter's). */
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
}

/** The adapter fields {@link isSoftwareAdapter} looks at. */
export type AdapterNames = Partial<
  Pick<AdapterReport, "description" | "vendor" | "architecture" | "device" | "isFallbackAdapter">
>;

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software rasterizer/i;

/**
 * True when the adapter renders in software. Mesa does not always set `isFallbackAdapter`
 * (wgpu reports the CPU device type; other builds may not), so the names count too.
 *
 * @example
 * ```ts
 * isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }); // true
 * isSoftwareAdapter({ description: "NVIDIA H100 80GB HBM3", vendor: "4318" }); // false
 * ```
 */
export function isSoftwareAdapter(a: AdapterNames): boolean {
  if (a.isFallbackAdapter) return true;
  return [a.description, a.vendor, a.architecture, a.device].some((s) => s && SOFTWARE.test(s));
}

/** One line naming an adapter, for logs and provenance. */
export function adapterLabel(a: AdapterReport): string {
  return [a.description, a.architecture, `vendor ${a.vendor}`].filter(Boolean).join(" / ");
}

let probe: Promise<AdapterReport | undefined> | undefined;

/**
 * Asks WebGPU for an adapter once per process and describes it; undefined when there is none.
 *
 * @example
 * ```ts ignore
 * const a = await probeAdapter(); // { description: "llvmpipe (...)", software: true, ... }
 * ```
 */
export function probeAdapter(): Promise<AdapterReport | undefined> {
  probe ??= (async () => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    const a = await gpu?.requestAdapter();
    if (!a) return undefined;
    const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const names = {
      description: info.description ?? "",
      vendor: info.vendor ?? "",
      architecture: info.architecture ?? "",
      device: info.device ?? "",
      isFallbackAdapter: info.isFallbackAdapter ?? (a as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        false,
    };
    return {
      ...names,
      software: isSoftwareAdapter(names),
      limits: {
        maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
        maxBufferSize: a.limits.maxBufferSize,
      },
    };
  })();
  return probe;
}

/** A resolved choice and why it was made. */
export interface Resolution<T> {
  choice: T;
  reason: string;
}

/**
 * The `auto` rule, shared by training and evaluation: the GPU path only on a hardware adapter.
 * On a software adapter WebGPU is an emulation on the CPU, slower than wasm per core (see
 * PLATFORM.md) and limited to 128 MiB bindings.
 *
 * @example
 * ```ts
 * autoRule(undefined).gpu; // false: no adapter
 * ```
 */
export function autoRule(a: AdapterReport | undefined): { gpu: boolean; reason: string } {
  if (!a) return { gpu: false, reason: "auto: no WebGPU adapter" };
  if (a.software) {
    return {
      gpu: false,
      reason: `auto: only a software adapter (${adapterLabel(a)}, fallback=${a.isFallbackAdapter})`,
    };
  }
  return { gpu: true, reason: `auto: hardware adapter ${adapterLabel(a)}` };
}

/**
 * The tfjs backend a choice means on this machine, and why. Does not initialise tfjs.
 *
 * @example
 * ```ts ignore
 * await explainBackend("auto"); // { choice: "wasm", reason: "auto: only a software adapter (llvmpipe ...)" }
 * ```
 */
export async function explainBackend(choice: BackendChoice): Promise<Resolution<Backend>> {
  if (choice !== "auto") return { choice, reason: `requested ${choice}` };
  const rule = autoRule(await probeAdapter());
  return { choice: rule.gpu ? "webgpu" : "wasm", reason: rule.reason };
}

/**
 * The tfjs backend a choice means on this machine (memoised adapter probe, no tfjs).
 *
 * @example
 * ```ts ignore
 * const backend = await resolveBackend("auto"); // "wasm" on a machine with only llvmpipe
 * ```
 */
export async function resolveBackend(choice: BackendChoice): Promise<Backend> {
  return (await explainBackend(choice)).choice;
}

/**
 * The onnxruntime-web execution provider a choice means on this machine, and why.
 *
 * @example
 * ```ts ignore
 * await explainProvider("auto"); // { choice: "wasm", reason: "auto: only a software adapter ..." }
 * ```
 */
export async function explainProvider(choice: ProviderChoice): Promise<Resolution<Provider>> {
  if (choice !== "auto") return { choice, reason: `requested ${choice}` };
  const rule = autoRule(await probeAdapter());
  return { choice: rule.gpu ? "webgpu" : "wasm", reason: rule.reason };
}

/**
 * The execution provider a choice means on this machine.
 *
 * @example
 * ```ts ignore
 * const ep = await resolveProvider("auto"); // "webgpu" on an NVIDIA adapter
 * ```
 */
export async function resolveProvider(choice: ProviderChoice): Promise<Provider> {
  return (await explainProvider(choice)).choice;
}
