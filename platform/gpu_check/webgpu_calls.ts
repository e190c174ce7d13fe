/**
 * Counts and times the WebGPU calls a program makes, phase by phase, to say where a slow step's
 * time goes when no profiler reaches the GPU machine. On the H200 a steady XLM-R base step took
 * 47 s against PyTorch's 64 ms; on llvmpipe a CPU profile put all of it in `GPUQueue.submit`
 * (which runs the shaders there). These counters tell submission, buffer creation, upload and
 * read-back apart on any adapter.
 *
 * It wraps methods of the WebGPU prototypes for the life of the process: diagnostics only.
 * @module
 */

/** Calls, milliseconds inside them, and bytes where a call has a size. */
export interface CallStats {
  n: number;
  ms: number;
  mb: number;
}

type Table = Record<string, CallStats>;

let table: Table | null = null;

function count(name: string, ms: number, bytes = 0): void {
  if (!table) return;
  const s = table[name] ??= { n: 0, ms: 0, mb: 0 };
  s.n++;
  s.ms += ms;
  s.mb += bytes / 1e6;
}

// deno-lint-ignore no-explicit-any
function wrap(proto: any, name: string, bytesOf?: (args: any[]) => number): void {
  const f = proto[name];
  // deno-lint-ignore no-explicit-any
  proto[name] = function (this: unknown, ...args: any[]) {
    const t = performance.now();
    const r = f.apply(this, args);
    if (r instanceof Promise) {
      return r.finally(() => count(name, performance.now() - t, bytesOf?.(args)));
    }
    count(name, performance.now() - t, bytesOf?.(args));
    return r;
  };
}

/**
 * Starts counting (once per process); {@link takeCalls} returns and resets the counts.
 *
 * @example
 * ```ts ignore
 * traceWebGpuCalls();
 * await step();
 * console.log(takeCalls()); // { submit: { n: 193, ms: 31540, mb: 0 }, ... }
 * ```
 */
export function traceWebGpuCalls(): void {
  if (table || typeof GPUQueue === "undefined") return;
  table = {};
  wrap(GPUQueue.prototype, "submit");
  wrap(GPUQueue.prototype, "writeBuffer", (a) => a[2]?.byteLength ?? 0);
  wrap(GPUQueue.prototype, "onSubmittedWorkDone");
  wrap(GPUDevice.prototype, "createBuffer", (a) => a[0]?.size ?? 0);
  wrap(GPUDevice.prototype, "createComputePipeline");
  wrap(GPUDevice.prototype, "createBindGroup");
  wrap(GPUBuffer.prototype, "mapAsync");
  wrap(GPUBuffer.prototype, "getMappedRange");
}

/** The counts since the last call, rounded for a JSON line; empty when tracing is off. */
export function takeCalls(): Table {
  if (!table) return {};
  const out: Table = {};
  for (const [k, s] of Object.entries(table)) out[k] = { n: s.n, ms: Math.round(s.ms), mb: Math.round(s.mb) };
  table = {};
  return out;
}
