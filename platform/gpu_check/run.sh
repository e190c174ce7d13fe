#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, Python (torch, transformers), no network,
# no Deno: everything else comes in .gpu_check/bundle.tar.xz and .gl/*.deb, made here by
#   deno run -A platform/gpu_check/pack.ts
# Run from the repository root (device tool: carry [".gpu_check", ".gl"]):
#   bash platform/gpu_check/run.sh
# Steps, each with its own time limit inside 8 minutes in all: Vulkan loader; doctor
# --expect-gpu; WGSL parity tests; an XLM-R-base fine-tuning step in PyTorch eager;
# transformers' logits for the project's exported checkpoint; the same step on WebGPU (full,
# GradDrop) with its WebGPU calls counted per phase. Prints ONE
# JSON line (also $OUT/summary.json); the log of every step goes to $OUT/gpu_check.log.
set -uo pipefail

root=$(pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${GPU_CHECK_WORK:-/tmp/graddrop-gpu-check}
out=${OUT:-$work/out}
end=$((SECONDS + ${GPU_CHECK_SECONDS:-480}))
mkdir -p "$work/results" "$out"
log=$out/gpu_check.log
: >"$log"
say() { echo "gpu_check: $*" | tee -a "$log" >&2; }

# run NAME SECONDS CMD...: stdout to results/NAME.json, stderr to the log, exit code to results/NAME.rc.
run() {
  local name=$1 limit=$2
  shift 2
  local left=$((end - SECONDS))
  ((limit > left)) && limit=$left
  if ((limit < 10)); then
    say "$name: skipped, out of time"
    echo 124 >"$work/results/$name.rc"
    return
  fi
  say "$name (limit ${limit}s): $*"
  timeout -k 5 "$limit" "$@" >"$work/results/$name.json" 2>>"$log"
  echo $? >"$work/results/$name.rc"
  say "$name: exit $(cat "$work/results/$name.rc")"
}

bundle=$root/.gpu_check/bundle.tar.xz
[[ -f $bundle ]] || { say "no $bundle: run pack.ts first"; exit 2; }
# Python's tarfile when the image's tar has no xz.
tar -C "$work" -xJf "$bundle" 2>/dev/null ||
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle" "$work" ||
  exit 2

# Vulkan loader and GL/EGL dispatch from the carried .debs, when the machine has none.
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for f in "$root"/.gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# NVIDIA's container toolkit may mount the driver's manifests under /usr/local/nvidia only.
nv=/usr/local/nvidia/share
if ! ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json >/dev/null 2>&1 &&
  [[ -f $nv/vulkan/icd.d/nvidia_icd.json ]]; then
  export VK_DRIVER_FILES=$nv/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=$nv/glvnd/egl_vendor.d/10_nvidia.json
fi

export DENO_DIR=$work/deno_dir DENO_NO_UPDATE_CHECK=1 DENO_WEBGPU_BACKEND=vulkan NO_COLOR=1
export GRADDROP_HOME=$work/home XDG_RUNTIME_DIR=$work/run PYTHONUNBUFFERED=1
mkdir -p "$XDG_RUNTIME_DIR" "$GRADDROP_HOME" && chmod 700 "$XDG_RUNTIME_DIR"
deno=$work/deno
js=(-A --no-config --no-lock)

# What the machine offers, for reading the log when doctor finds no GPU adapter.
{
  nvidia-smi -L
  env | grep '^NVIDIA_'
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d "$nv/vulkan/icd.d"
  ldconfig -p | grep -E 'libvulkan|nvidia' | head -20
} >>"$log" 2>&1

run doctor 60 "$deno" run "${js[@]}" "$work/js/doctor.js" --json --expect-gpu
run parity 90 "$deno" test "${js[@]}" "$work/js/kernels_test.js"
cat "$work/results/parity.json" >>"$log"
run torch_step 120 python3 "$here/torch_step.py" time --batch 32 --seq 128 --steps 5
run hf_parity 60 python3 "$here/torch_step.py" compare "$work/hf_tiny" "$work/hf_tiny_logits.json"
# Last, with what time is left: its first step took 207 s on the H200 (shader compilation and
# uploads), a steady step 47 s. It prints its figures after each phase, so a timeout keeps them.
if [[ $(cat "$work/results/doctor.rc") == 0 ]]; then
  run webgpu_step 330 "$deno" run "${js[@]}" "$work/js/step_bench.js" --config base --batch 32 --seq 128 \
    --steps 1 --trace
else
  say "webgpu_step: skipped, no hardware WebGPU adapter (see doctor above)"
fi

python3 "$here/summary.py" "$work/results" | tee "$out/summary.json"
