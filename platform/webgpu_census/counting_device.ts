/**
 * Counts what a program asks of a GPUDevice, on any device: a real adapter's or the recording
 * device that runs nothing. tfjs is handed a proxy of the device; every call it (and this
 * project's kernels) makes goes through the proxy, which counts and forwards it. The counts are
 * the census of one training step: dispatches, submits, host->GPU bytes, staging buffers,
 * readbacks, new pipelines, dispatches whose workgroups each walk >= 64K elements (one-workgroup
 * reductions), and the milliseconds spent inside WebGPU calls and waiting on the GPU.
 * @module
 */

/** A dispatch counts as a small reduction when one workgroup walks at least this many elements. */
export const SMALL_REDUCTION_ELEMENTS = 65536;

/** The counters, reset by {@link CountingDevice.take}. */
export interface Counts {
  dispatches: number;
  submits: number;
  /** Host->GPU bytes: `writeBuffer` data and buffers created mapped for writing. */
  upload_bytes: number;
  /** The part of `upload_bytes` written into uniform buffers (a kernel's parameters). */
  uniform_bytes: number;
  /** Buffers created with MAP_READ or MAP_WRITE usage. */
  staging_buffers: number;
  buffers_created: number;
  bind_groups: number;
  /** `mapAsync` for reading: a GPU->host round trip. */
  readbacks: number;
  pipelines_created: number;
  /** Dispatches where one workgroup walks >= {@link SMALL_REDUCTION_ELEMENTS} elements of a binding. */
  small_reductions: number;
  /** Milliseconds inside WebGPU calls (on lavapipe `submit` runs the shaders, so it lands here). */
  driver_ms: number;
  /** Milliseconds waiting for the GPU: `mapAsync` and `onSubmittedWorkDone` until they resolve. */
  wait_ms: number;
  /** Dispatches per pipeline label (tfjs labels pipelines with the program's class name). */
  by_kernel: Record<string, number>;
  /** Small reductions per pipeline label. */
  small_by_kernel: Record<string, number>;
}

function zero(): Counts {
  return {
    dispatches: 0,
    submits: 0,
    upload_bytes: 0,
    uniform_bytes: 0,
    staging_buffers: 0,
    buffers_created: 0,
    bind_groups: 0,
    readbacks: 0,
    pipelines_created: 0,
    small_reductions: 0,
    driver_ms: 0,
    wait_ms: 0,
    by_kernel: {},
    small_by_kernel: {},
  };
}

/** A device proxy and its counters. */
export interface CountingDevice {
  device: GPUDevice;
  /** The counts since the last call, then zeroed. */
  take(): Counts;
  /**
   * GPU milliseconds of the compute passes recorded since the last call, from timestamp
   * queries (null when the device lacks `timestamp-query` or timing is off); waits for the GPU.
   * Its own reads are not counted.
   */
  gpuMs(): Promise<number | null>;
}

/** Queries per page: one page per command encoder, two per compute pass. */
const PAGE_QUERIES = 64;

/** A query set with its resolve and read buffers, made on the real device (uncounted). */
interface Page {
  set: GPUQuerySet;
  resolve: GPUBuffer;
  read: GPUBuffer;
  used: number;
}

type Fn = (...args: never[]) => unknown;

/**
 * A proxy of `target` whose properties come from `target` (methods bound to it) except those
 * in `over`. Methods run inside `timed`, so time spent in the driver is counted.
 */
function proxy<T extends object>(
  target: T,
  over: Record<string, unknown>,
  timed: (f: () => unknown) => unknown,
): T {
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === "string" && prop in over) return over[prop];
      const v = Reflect.get(t, prop, t);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => timed(() => (v as Fn).apply(t, args as never[]));
    },
  });
}

/**
 * Wraps `device` so that everything done through the returned proxy is counted.
 *
 * @example
 * ```ts
 * import { countingDevice } from "./counting_device.ts";
 * import { recordingDevice } from "./recording_device.ts";
 * const c = countingDevice(recordingDevice());
 * c.device.queue.writeBuffer(c.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM }), 0, new ArrayBuffer(16));
 * if (c.take().upload_bytes !== 16) throw new Error("16 bytes uploaded");
 * ```
 */
export function countingDevice(device: GPUDevice, opts: { timestamps?: boolean } = {}): CountingDevice {
  let c = zero();
  const timing = !!opts.timestamps && device.features.has("timestamp-query");
  const free: Page[] = [];
  const pending: Page[] = [];
  const page = (): Page =>
    free.pop() ?? {
      set: device.createQuerySet({ type: "timestamp", count: PAGE_QUERIES }),
      resolve: device.createBuffer({
        size: PAGE_QUERIES * 8,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      read: device.createBuffer({
        size: PAGE_QUERIES * 8,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
      used: 0,
    };
  const labels = new WeakMap<object, string>();
  const widest = new WeakMap<object, number>();
  const timed = (f: () => unknown) => {
    const t = performance.now();
    try {
      return f();
    } finally {
      c.driver_ms += performance.now() - t;
    }
  };
  const waited = <T>(p: Promise<T>): Promise<T> => {
    const t = performance.now();
    return p.finally(() => void (c.wait_ms += performance.now() - t));
  };
  const mapFlags = GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE;

  const pass = (p: GPUComputePassEncoder) => {
    let label = "";
    let elements = 0;
    return proxy(p, {
      setPipeline: (pl: GPUComputePipeline) => {
        label = labels.get(pl) ?? "?";
        timed(() => p.setPipeline(pl));
      },
      setBindGroup: (i: number, g: GPUBindGroup) => {
        elements = widest.get(g) ?? 0;
        timed(() => p.setBindGroup(i, g));
      },
      dispatchWorkgroups: (x: number, y = 1, z = 1) => {
        c.dispatches++;
        c.by_kernel[label] = (c.by_kernel[label] ?? 0) + 1;
        if (elements / (x * y * z) >= SMALL_REDUCTION_ELEMENTS) {
          c.small_reductions++;
          c.small_by_kernel[label] = (c.small_by_kernel[label] ?? 0) + 1;
        }
        timed(() => p.dispatchWorkgroups(x, y, z));
      },
    }, timed);
  };
  const encoder = (e: GPUCommandEncoder) => {
    let p: Page | null = null;
    return proxy(e, {
      beginComputePass: (d?: GPUComputePassDescriptor) => {
        if (timing && !d?.timestampWrites) {
          p ??= page();
          if (p.used + 2 <= PAGE_QUERIES) {
            d = {
              ...d,
              timestampWrites: {
                querySet: p.set,
                beginningOfPassWriteIndex: p.used,
                endOfPassWriteIndex: p.used + 1,
              },
            };
            p.used += 2;
          }
        }
        return pass(timed(() => e.beginComputePass(d)) as GPUComputePassEncoder);
      },
      finish: (d?: GPUCommandBufferDescriptor) => {
        if (p && p.used > 0) {
          e.resolveQuerySet(p.set, 0, p.used, p.resolve, 0);
          e.copyBufferToBuffer(p.resolve, 0, p.read, 0, p.used * 8);
          pending.push(p);
        }
        return timed(() => e.finish(d));
      },
    }, timed);
  };
  const trackReads = (b: GPUBuffer) => {
    const map = b.mapAsync;
    Object.defineProperty(b, "mapAsync", {
      configurable: true,
      value: (mode: number, offset?: number, size?: number) => {
        if (mode & GPUMapMode.READ) c.readbacks++;
        return waited(timed(() => map.call(b, mode, offset, size)) as Promise<undefined>);
      },
    });
  };
  const pipeline = (d: GPUComputePipelineDescriptor, pl: GPUComputePipeline) => {
    c.pipelines_created++;
    labels.set(pl, d.label ?? "?");
    return pl;
  };
  const queue = device.queue;
  const countedQueue = proxy(queue, {
    submit: (bufs: GPUCommandBuffer[]) => {
      c.submits++;
      timed(() => queue.submit(bufs));
    },
    writeBuffer: (b: GPUBuffer, offset: number, data: BufferSource, dataOffset = 0, size?: number) => {
      const bytes = size ?? (data.byteLength - dataOffset);
      c.upload_bytes += bytes;
      if (b.usage & GPUBufferUsage.UNIFORM) c.uniform_bytes += bytes;
      timed(() => queue.writeBuffer(b, offset, data, dataOffset, size));
    },
    onSubmittedWorkDone: () => waited(timed(() => queue.onSubmittedWorkDone()) as Promise<undefined>),
  }, timed);
  const counted = proxy(device, {
    queue: countedQueue,
    createBuffer: (d: GPUBufferDescriptor) => {
      c.buffers_created++;
      if (d.usage & mapFlags) c.staging_buffers++;
      if (d.mappedAtCreation) c.upload_bytes += d.size;
      const b = timed(() => device.createBuffer(d)) as GPUBuffer;
      if (d.usage & GPUBufferUsage.MAP_READ) trackReads(b);
      return b;
    },
    createComputePipeline: (d: GPUComputePipelineDescriptor) =>
      pipeline(d, timed(() => device.createComputePipeline(d)) as GPUComputePipeline),
    createComputePipelineAsync: async (d: GPUComputePipelineDescriptor) =>
      pipeline(d, await device.createComputePipelineAsync(d)),
    createBindGroup: (d: GPUBindGroupDescriptor) => {
      c.bind_groups++;
      const g = timed(() => device.createBindGroup(d)) as GPUBindGroup;
      let most = 0;
      for (const e of d.entries) {
        const r = e.resource as GPUBufferBinding;
        if (!r?.buffer || !(r.buffer.usage & GPUBufferUsage.STORAGE)) continue;
        most = Math.max(most, (r.size ?? r.buffer.size - (r.offset ?? 0)) / 4);
      }
      widest.set(g, most);
      return g;
    },
    createCommandEncoder: (d?: GPUCommandEncoderDescriptor) =>
      encoder(timed(() => device.createCommandEncoder(d)) as GPUCommandEncoder),
  }, timed);
  return {
    device: counted,
    take() {
      const out = c;
      c = zero();
      return out;
    },
    async gpuMs() {
      if (!timing) return null;
      let ns = 0n;
      for (const p of pending.splice(0)) {
        await p.read.mapAsync(GPUMapMode.READ, 0, p.used * 8);
        const t = new BigUint64Array(p.read.getMappedRange(0, p.used * 8));
        for (let i = 0; i + 1 < p.used; i += 2) if (t[i + 1] > t[i]) ns += t[i + 1] - t[i];
        p.read.unmap();
        p.used = 0;
        free.push(p);
      }
      return Number(ns) / 1e6;
    },
  };
}
