import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  type AdapterReport,
  autoRule,
  isSoftwareAdapter,
  probeAdapter,
  resolveBackend,
} from "../platform/adapter.ts";
import { initBackend } from "../model/backend.ts";
import { BindingLimitError, checkActivations } from "../model/limits.ts";
import { DeviceError } from "../model/device_guard.ts";
import { namedConfig } from "../model/config.ts";
import { encode, initParams, mlmLogits, ownedVariable } from "../model/encoder.ts";
import { gpuPrerequisites, type SystemProbe } from "../platform/gpu_prereqs.ts";
import { prepareGpuEnv, useBackend } from "./gpu.ts";
import { ROOT } from "./helpers.ts";

const adapter = (over: Partial<AdapterReport>): AdapterReport => ({
  description: "",
  vendor: "",
  architecture: "",
  device: "",
  isFallbackAdapter: false,
  software: false,
  limits: { maxStorageBufferBindingSize: 2147483647, maxBufferSize: 2147483647 },
  ...over,
});

Deno.test("adapter: software adapters are recognised by flag or by name; auto takes the GPU only on hardware", () => {
  assert.ok(isSoftwareAdapter({ isFallbackAdapter: true, description: "anything" }));
  assert.ok(isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }));
  assert.ok(isSoftwareAdapter({ description: "Lavapipe", vendor: "mesa" }));
  assert.ok(isSoftwareAdapter({ vendor: "Google", description: "SwiftShader Device (Subzero)" }));
  assert.ok(!isSoftwareAdapter({ vendor: "4318", description: "NVIDIA H100 80GB HBM3", architecture: "" }));
  assert.equal(autoRule(undefined).gpu, false);
  assert.equal(autoRule(adapter({ description: "llvmpipe", software: true })).gpu, false);
  const hw = autoRule(adapter({ description: "NVIDIA H200", vendor: "4318" }));
  assert.equal(hw.gpu, true);
  assert.match(hw.reason, /hardware adapter NVIDIA H200/);
});

Deno.test("backend auto on this machine: wasm when the only adapter is a software one", async () => {
  prepareGpuEnv();
  const a = await probeAdapter();
  const resolved = await resolveBackend("auto");
  assert.equal(resolved, a && !a.software ? "webgpu" : "wasm");
  assert.equal(await resolveBackend("cpu"), "cpu");
  if (a?.software) {
    const info = await initBackend("auto");
    assert.equal(info.backend, "wasm");
    assert.match(info.reason, /software adapter/);
    assert.equal(tf.getBackend(), "wasm");
  }
});

Deno.test("binding limit: an over-limit parameter fails before allocation, naming it, its bytes, the limit and the remedy", async () => {
  await useBackend("webgpu");
  const limit = (await initBackend("webgpu")).bindingLimit!;
  const n = Math.floor(limit / 4) + 1024;
  const tensors = tf.memory().numTensors;
  assert.throws(
    () => ownedVariable(new Float32Array(n), [n], "encoder.too_big.weight"),
    (e: Error) =>
      e instanceof BindingLimitError && e.message.includes("'encoder.too_big.weight'") &&
      e.message.includes((n * 4).toLocaleString("en-US")) &&
      e.message.includes(limit.toLocaleString("en-US")) &&
      /word embedding is split/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, tensors);
});

Deno.test("binding limit: over-limit activations (attention scores, MLM logits) fail before the forward pass", async () => {
  await useBackend("webgpu");
  const cfg = { ...namedConfig("tiny", 120_000), num_attention_heads: 16 };
  assert.throws(
    () => checkActivations(cfg, 64, 256, 134217728),
    /attention scores \[64, 16, 256, 256\] needs 268,435,456/,
  );
  const params = initParams(cfg, { mlm: true, numLabels: 0 }, 1);
  const ids = Int32Array.from({ length: 64 * 256 }, (_, i) => 4 + (i % 100));
  const tensors = tf.memory().numTensors;
  assert.throws(() => encode(params, cfg, { ids, B: 64, T: 256 }, null), BindingLimitError);
  assert.equal(tf.memory().numTensors, tensors, "nothing allocated");
  const small = { ids: ids.subarray(0, 2 * 8), B: 2, T: 8 };
  const hidden = encode(params, cfg, small, null);
  const at = Int32Array.from({ length: 300 }, (_, i) => i % 16);
  assert.throws(
    () => mlmLogits(params, cfg, hidden, at),
    /MLM logits \[300, 120000\].*predict fewer masked positions/,
  );
  tf.dispose([hidden, ...params.values()]);
});

Deno.test("device guard: a tensor past the binding limit makes the read throw the device's error, never return zeros; dataSync says why it cannot", async () => {
  await useBackend("webgpu");
  const limit = (await initBackend("webgpu")).bindingLimit!;
  // Created with raw tfjs ops, past this project's own size checks, as a bug would.
  const big = tf.ones([Math.floor(limit / 4) + 1_000_000]);
  const sum = big.sum();
  await assert.rejects(sum.data(), (e: Error) => e instanceof DeviceError && /exceeds/.test(e.message));
  tf.dispose([big, sum]);
  assert.deepEqual(Array.from(await tf.ones([4]).sum().data()), [4], "later reads work");
  assert.throws(
    () => tf.ones([4096]).add(1).dataSync(),
    /cannot read a WebGPU tensor in Deno: use await data\(\)/,
  );
});

const probe = (libs: string[], files: string[], env: Record<string, string>): SystemProbe => ({
  ldconfig: () => libs.map((l) => `\t${l} (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/${l}`).join("\n"),
  exists: (p) => files.includes(p),
  env: (k) => env[k],
});

Deno.test("doctor: GPU prerequisites name what is missing", () => {
  const all = ["libvulkan.so.1", "libGLX_nvidia.so.0", "libXext.so.6", "libEGL.so.1"];
  const ok = gpuPrerequisites(
    probe(all, ["/usr/share/vulkan/icd.d/nvidia_icd.json"], {
      NVIDIA_DRIVER_CAPABILITIES: "compute,utility,graphics",
    }),
  );
  assert.deepEqual(ok.filter((c) => !c.ok), []);
  const viaEnv = gpuPrerequisites(
    probe(all, ["/x/nvidia_icd.json"], {
      VK_DRIVER_FILES: "/x/nvidia_icd.json",
      NVIDIA_DRIVER_CAPABILITIES: "all",
    }),
  );
  assert.deepEqual(viaEnv.filter((c) => !c.ok), []);
  const bare = gpuPrerequisites(
    probe(["libEGL.so.1"], [], { NVIDIA_DRIVER_CAPABILITIES: "compute,utility" }),
  );
  assert.deepEqual(bare.filter((c) => !c.ok).map((c) => c.check), [
    "libvulkan1 (libvulkan.so.1)",
    "NVIDIA Vulkan ICD (nvidia_icd.json)",
    "NVIDIA's Vulkan driver (libGLX_nvidia.so.0)",
    "libxext6 (libXext.so.6)",
    "NVIDIA_DRIVER_CAPABILITIES includes graphics",
  ]);
  assert.match(bare.at(-1)!.detail, /'compute,utility': restart the container with graphics/);
  assert.match(gpuPrerequisites(probe(all, [], {})).at(-1)!.detail, /unset/);
});

Deno.test("doctor --json --expect-gpu on this machine: reports the adapter, limits and choices; exits 3 on a software adapter", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/platform/doctor.ts`, "--json", "--expect-gpu"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(r.graddrop.parity, true);
  if (r.adapter?.software) {
    assert.equal(out.code, 3);
    assert.equal(r.training.backend, "wasm");
    assert.equal(r.evaluation.provider, "wasm");
    assert.equal(typeof r.device_limits.maxStorageBufferBindingSize, "number");
    assert.match(new TextDecoder().decode(out.stderr), /--expect-gpu: no hardware WebGPU adapter.*\n.*- /);
  }
});
