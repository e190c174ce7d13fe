/**
 * First-run set-up shared by `deno task pipeline` and `deno task test`: installs, with one
 * apt-get run when we are root on Debian, what is missing:
 * - Mesa's Vulkan driver (lavapipe), because WebGPU through Vulkan compiles shaders about ten
 *   times faster than through GL on llvmpipe;
 * - with `--tests` (what `deno task test` passes): nginx and Apache httpd (`apache2`), the
 *   real HTTP servers the remote cache tests run, Chromium, in which the report test opens
 *   `report.html`, Slurm with munge, the one-node cluster the `main.ts slurm` tests start, and
 *   SentencePiece (`spm_train`, `spm_encode`), the reference the tokenizer parity test checks
 *   against.
 * The pipeline itself needs neither. A test whose tool could not be installed fails saying so.
 * @module
 */
import { hasVulkanIcd } from "./gpu_env.ts";
import { chromiumPath, INSTALL_HINT } from "./chromium.ts";

/** A Debian package we install when missing, and what going without it means. */
interface Want {
  pkg: string;
  why: string;
  without: string;
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const wants: Want[] = [];
  if (!hasVulkanIcd()) {
    wants.push({
      pkg: "mesa-vulkan-drivers",
      why: "Vulkan WebGPU path",
      without: "WebGPU will use Mesa's GL path (slower first step)",
    });
  }
  if (Deno.args.includes("--tests")) {
    if (!exists("/usr/sbin/nginx")) {
      wants.push({ pkg: "nginx", why: "remote cache tests", without: "the remote cache tests will fail" });
    }
    if (!exists("/usr/sbin/apache2")) {
      wants.push({
        pkg: "apache2",
        why: "remote cache tests",
        without: "the Apache remote cache test will fail",
      });
    }
    if (!exists("/usr/sbin/slurmctld") || !exists("/usr/sbin/slurmd") || !exists("/usr/bin/sbatch")) {
      wants.push({ pkg: "slurm-wlm", why: "Slurm tests", without: "the Slurm tests will be skipped" });
    }
    if (!exists("/usr/sbin/munged")) {
      wants.push({ pkg: "munge", why: "Slurm tests", without: "the Slurm tests will be skipped" });
    }
    if (!exists("/usr/bin/spm_train")) {
      wants.push(
        {
          pkg: "sentencepiece",
          why: "tokenizer parity test",
          without: "the SentencePiece parity test will fail",
        },
        {
          pkg: "python3-sentencepiece",
          why: "reference SentencePiece in Python",
          without: "no Python reference",
        },
      );
    }
    if (!chromiumPath()) {
      wants.push({
        pkg: "chromium",
        why: "report test",
        without: `the report test will fail; ${INSTALL_HINT}`,
      });
    }
  }
  const isRoot = Deno.uid?.() === 0;
  if (wants.length > 0 && isRoot && exists("/usr/bin/apt-get")) {
    console.error(`setup: installing ${wants.map((w) => `${w.pkg} (${w.why})`).join(", ")}...`);
    const run = (args: string[]) =>
      new Deno.Command("apt-get", {
        args,
        stdout: "null",
        stderr: "inherit",
        // policy-rc.d is not ours to write: RUNLEVEL=1 keeps the nginx, apache2, munge and Slurm
        // packages from starting system servers (the tests start their own).
        env: { DEBIAN_FRONTEND: "noninteractive", RUNLEVEL: "1" },
      })
        .outputSync().success;
    const updated = run(["update", "-qq"]);
    if (!(updated && run(["install", "-y", "-qq", "--no-install-recommends", ...wants.map((w) => w.pkg)]))) {
      for (const w of wants) console.error(`setup: could not install ${w.pkg}; ${w.without}`);
    }
  } else {
    for (const w of wants) {
      console.error(`setup: ${w.pkg} is not installed; ${w.without} (install it as root)`);
    }
  }
}
