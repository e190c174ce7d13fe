/**
 * Packs what the GPU check needs on a machine with no network, no Deno and no npm into
 * `.gpu_check/bundle.tar.xz` (at most 50 MiB; the device tool carries 64 MiB in all):
 *
 * - the Deno binary running this script;
 * - `deno bundle` output for each program the check runs (the doctor, the WGSL parity tests,
 *   the step bench): the project modules they import and the npm code those reach, tree-shaken
 *   into one file each, so no `node_modules`, source maps or other backends' builds travel;
 * - a small classifier exported in HF layout (`hf_tiny/`) and the logits this project computes
 *   for it (`hf_tiny_logits.json`), for transformers to check on the other side.
 *
 * It also downloads the Vulkan loader and GL dispatch .debs into `.gl/` (skip with
 * `--skip-debs`). Both folders are git-ignored; name them in the device tool's `carry`.
 *
 *     deno run -A platform/gpu_check/pack.ts [--out .gpu_check] [--skip-debs]
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import { namedConfig } from "../../model/config.ts";
import { classifierLogits, encode, initParams } from "../../model/encoder.ts";
import { saveCheckpoint } from "../../model/checkpoint.ts";

/** Largest bundle the check may carry: the rest of the 64 MiB goes to the tree and the .debs. */
export const MAX_BUNDLE_BYTES = 50 * 2 ** 20;

/** Packages `run.sh` unpacks over `/` when the machine has no Vulkan loader. */
export const DEBS = [
  "libvulkan1",
  "libegl1",
  "libglvnd0",
  "libopengl0",
  "libgl1",
  "libglx0",
  "libgles2",
  "libxext6",
];

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Programs bundled for the device, by the name `run.sh` calls them (under `js/`). */
const PROGRAMS: Record<string, string> = {
  "doctor.js": "platform/doctor.ts",
  "kernels_test.js": "tests/kernels_test.ts",
  "step_bench.js": "platform/gpu_check/step_bench.ts",
};

/**
 * tfjs-backend-wasm's binaries, where `model/backend.ts` looks for them: one folder above the
 * module, so programs live in `js/` and the binaries in `node_modules/` beside it.
 */
const WASM_DIST = "node_modules/@tensorflow/tfjs-backend-wasm/dist";
const WASM_FILES = ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"];

/**
 * emscripten's Node loader inside tfjs-backend-wasm reads `__dirname`, which an ES module
 * bundle lacks; without it the wasm backend fails to initialise on the device.
 */
const DIRNAME_SHIM = 'var __dirname = new URL(".", import.meta.url).pathname;\n';

async function run(cmd: string, args: string[], opts: Deno.CommandOptions = {}): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "inherit", stderr: "inherit", ...opts }).output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code})`);
}

/** Exports the tiny classifier and the logits this project computes for a padded batch. */
async function hfParityFixture(dir: string): Promise<void> {
  await initBackend("cpu");
  const cfg = namedConfig("tiny", 1000);
  const params = initParams(cfg, { mlm: false, numLabels: 3 }, 11);
  // Larger than the init scale, so the comparison is not trivially near zero.
  for (const v of params.values()) v.assign(v.mul(10));
  await saveCheckpoint(`${dir}/hf_tiny`, cfg, params, ["a", "b", "c"]);
  const B = 3, T = 10, pad = cfg.pad_token_id;
  const ids = Int32Array.from({ length: B * T }, (_, i) => {
    const r = Math.floor(i / T), t = i % T, len = T - 3 * r;
    return t === 0 ? 0 : t === len - 1 ? 2 : t >= len ? pad : 3 + ((i * 7919) % 990);
  });
  const logits = await classifierLogits(params, encode(params, cfg, { ids, B, T }, null), null).data();
  await Deno.writeTextFile(
    `${dir}/hf_tiny_logits.json`,
    JSON.stringify({ B, T, pad, ids: Array.from(ids), logits: Array.from(logits) }),
  );
  tf.dispose([...params.values()]);
}

/** Downloads the .debs for amd64 with a private package list, as the device notes say. */
async function downloadDebs(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const have = [...Deno.readDirSync(dir)].map((e) => e.name);
  const missing = DEBS.filter((d) => !have.some((f) => f.startsWith(`${d}_`)));
  if (missing.length === 0) return;
  const lists = "/tmp/graddrop-apt-amd64";
  await Deno.mkdir(`${lists}/partial`, { recursive: true });
  const o = ["-oAPT::Architecture=amd64", "-oAPT::Architectures=amd64", `-oDir::State::Lists=${lists}`];
  await run("apt-get", [...o, "-qq", "update"]);
  await run("apt-get", [...o, "download", ...missing], { cwd: dir });
}

/**
 * Builds the bundle and returns its path and size; throws when it exceeds {@link MAX_BUNDLE_BYTES}.
 *
 * @example
 * ```ts ignore
 * const { path, bytes } = await pack(".gpu_check", { debs: ".gl" });
 * ```
 */
export async function pack(out: string, o: { debs?: string } = {}): Promise<{ path: string; bytes: number }> {
  const stage = await Deno.makeTempDir({ prefix: "graddrop-gpu-check-" });
  try {
    await Deno.mkdir(`${stage}/js`);
    for (const [name, entry] of Object.entries(PROGRAMS)) {
      await run(Deno.execPath(), [
        "bundle",
        "--quiet",
        "--platform",
        "deno",
        "--minify",
        `--config=${ROOT}/deno.json`,
        "-o",
        `${stage}/js/${name}`,
        `${ROOT}/${entry}`,
      ]);
      const file = `${stage}/js/${name}`;
      await Deno.writeTextFile(file, DIRNAME_SHIM + await Deno.readTextFile(file));
    }
    await Deno.mkdir(`${stage}/${WASM_DIST}`, { recursive: true });
    for (const f of WASM_FILES) {
      await Deno.copyFile(`${ROOT}/${WASM_DIST}/${f}`, `${stage}/${WASM_DIST}/${f}`);
    }
    await hfParityFixture(stage);
    await Deno.copyFile(Deno.execPath(), `${stage}/deno`);
    await Deno.chmod(`${stage}/deno`, 0o755);
    await Deno.mkdir(out, { recursive: true });
    const path = `${out}/bundle.tar.xz`;
    await run("tar", ["-C", stage, "-cJf", path, "."], { env: { XZ_OPT: "-6 -T0" } });
    const bytes = (await Deno.stat(path)).size;
    if (bytes > MAX_BUNDLE_BYTES) {
      throw new Error(`${path} is ${(bytes / 2 ** 20).toFixed(1)} MiB, over the 50 MiB the check may carry`);
    }
    if (o.debs) await downloadDebs(o.debs);
    return { path, bytes };
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      out: { type: "string", default: `${ROOT}.gpu_check` },
      "skip-debs": { type: "boolean", default: false },
    },
  });
  const { path, bytes } = await pack(values.out, { debs: values["skip-debs"] ? undefined : `${ROOT}.gl` });
  console.log(`${path}: ${(bytes / 2 ** 20).toFixed(1)} MiB (limit 50 MiB)`);
  console.log(
    'device: run with carry [".gpu_check", ".gl"] and command `bash platform/gpu_check/run.sh` (see README, GPU check)',
  );
}
