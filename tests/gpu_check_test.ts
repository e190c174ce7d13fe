import assert from "node:assert/strict";
import { MAX_BUNDLE_BYTES } from "../platform/gpu_check/pack.ts";
import { ROOT, tempDir } from "./helpers.ts";

const DIR = `${ROOT}platform/gpu_check`;

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  return {
    code: r.code,
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
  };
}

const hasPython = await sh("python3", ["--version"]).then((r) => r.code === 0, () => false);

Deno.test("gpu check: run.sh parses (bash -n)", async () => {
  const r = await sh("bash", ["-n", `${DIR}/run.sh`]);
  assert.equal(r.code, 0, r.stderr);
});

Deno.test({
  name: "gpu check: torch_step.py and summary.py compile; summary folds step results into one line",
  ignore: !hasPython,
  fn: async () => {
    const cache = tempDir();
    const compiled = await sh("python3", ["-m", "py_compile", `${DIR}/torch_step.py`, `${DIR}/summary.py`], {
      PYTHONPYCACHEPREFIX: cache,
    });
    assert.equal(compiled.code, 0, compiled.stderr);
    const results = tempDir();
    const put = (name: string, rc: number, stdout: string) => {
      Deno.writeTextFileSync(`${results}/${name}.rc`, `${rc}\n`);
      Deno.writeTextFileSync(`${results}/${name}.json`, stdout);
    };
    put(
      "doctor",
      0,
      JSON.stringify({ adapter: { description: "NVIDIA H100" }, training: { backend: "webgpu" } }),
    );
    put("parity", 0, "running 5 tests\nok | 5 passed | 0 failed (3s)\n");
    put("webgpu_step", 0, `noise\n${JSON.stringify({ step_ms: { full: 600, graddrop: 630 }, loss: 1.9 })}\n`);
    put("torch_step", 0, JSON.stringify({ step_ms: 150, device: "NVIDIA H100" }));
    put("hf_parity", 1, "Traceback ...");
    const r = await sh("python3", [`${DIR}/summary.py`, results]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 1);
    const s = JSON.parse(r.stdout);
    assert.equal(s.hardware_gpu, true);
    assert.deepEqual(s.wgsl_parity, { ok: true, passed: 5, failed: 0 });
    assert.equal(s.webgpu_over_torch, 4);
    assert.equal(s.graddrop_over_full, 1.05);
    assert.equal(s.exit_codes.hf_parity, 1);
    assert.equal(s.hf_logits_max_abs_diff, undefined);
  },
});

Deno.test("gpu check: the step bench runs a tiny config on this machine's WebGPU (finite loss, embedding gradient)", async () => {
  const r = await sh(Deno.execPath(), [
    "run",
    "-A",
    `--config=${ROOT}/deno.json`,
    `${DIR}/step_bench.ts`,
    "--config",
    "tiny",
    "--vocab",
    "1000",
    "--batch",
    "2",
    "--seq",
    "16",
    "--steps",
    "1",
    "--trace",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  // One line per phase (two methods x first and timed), then the complete one.
  assert.deepEqual(lines.map((l) => l.complete), [false, false, false, false, true]);
  assert.ok(Number.isFinite(lines[0].first_step_s.full) && lines[0].step_ms.full === undefined);
  const j = lines.at(-1);
  assert.equal(j.backend, "webgpu");
  assert.ok(Number.isFinite(j.loss));
  assert.ok(j.embedding_grad_norm > 0);
  assert.ok(j.step_ms.full > 0 && j.step_ms.graddrop > 0);
  assert.deepEqual(Object.keys(j.webgpu_calls), [
    "full:first",
    "full:timed",
    "graddrop:first",
    "graddrop:timed",
  ]);
  assert.ok(j.webgpu_calls["full:timed"].submits > 0, JSON.stringify(j.webgpu_calls));
  assert.equal(
    j.webgpu_calls["full:timed"].readbacks,
    1,
    "one read per step; timestamp reads are not counted",
  );
  // The split of a step: lavapipe has timestamp queries, so GPU time is measured, not null.
  const s = j.split_ms.full;
  assert.ok(s.gpu_ms > 0 && s.driver_ms > 0 && s.js_ms > 0, JSON.stringify(s));
  assert.ok(Math.abs(s.driver_ms + s.wait_ms + s.js_ms - s.wall_ms) < 1e-6);
  // The device tfjs runs on: the training device with its raised storage-buffer limit.
  assert.equal(j.tfjs_device.limits.maxStorageBuffersPerShaderStage, 32);
  assert.equal(j.adapter, j.tfjs_device.description);
});

Deno.test("gpu check: the pack is under 50 MiB and its bundled programs run on the carried Deno with no config", async () => {
  const out = tempDir();
  const packed = await sh(Deno.execPath(), [
    "run",
    "-A",
    `--config=${ROOT}/deno.json`,
    `${DIR}/pack.ts`,
    "--skip-debs",
    "--out",
    out,
  ]);
  assert.equal(packed.code, 0, packed.stderr);
  const bytes = Deno.statSync(`${out}/bundle.tar.xz`).size;
  console.log(`bundle.tar.xz: ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(bytes <= MAX_BUNDLE_BYTES);
  const work = tempDir();
  assert.equal((await sh("tar", ["-C", work, "-xJf", `${out}/bundle.tar.xz`])).code, 0);
  for (
    const f of [
      "deno",
      "js/doctor.js",
      "js/kernels_test.js",
      "js/step_bench.js",
      "node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
      "hf_tiny/model.safetensors",
    ]
  ) {
    assert.ok(Deno.statSync(`${work}/${f}`).isFile, f);
  }
  const fixture = JSON.parse(Deno.readTextFileSync(`${work}/hf_tiny_logits.json`));
  assert.equal(fixture.logits.length, fixture.B * 3);
  // The carried Deno runs the bundles as run.sh does: no config, no lock, its own caches.
  const bundled = (sub: string, file: string, args: string[] = []) =>
    sh(`${work}/deno`, [sub, "-A", "--no-config", "--no-lock", `${work}/js/${file}`, ...args], {
      DENO_DIR: `${work}/deno_dir`,
      GRADDROP_HOME: `${work}/home`,
    });
  const r = await bundled("run", "step_bench.js", [
    "--config",
    "tiny",
    "--vocab",
    "500",
    "--batch",
    "1",
    "--seq",
    "8",
    "--steps",
    "0",
    "--methods",
    "full",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Number.isFinite(JSON.parse(r.stdout.trim().split("\n").at(-1)!).loss));
  // The parity tests as bundled: every backend they touch (WebGPU, cpu, wasm) must start there.
  const parity = await bundled("test", "kernels_test.js");
  assert.equal(parity.code, 0, parity.stdout + parity.stderr);
});
