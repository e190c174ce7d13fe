"""Folds the GPU check's step results into ONE JSON line (run.sh's last output).

    python3 summary.py RESULTS_DIR

RESULTS_DIR holds NAME.rc (exit code) and NAME.json (stdout; the last line that parses as
JSON is the step's result) for doctor, parity, webgpu_step, torch_step and hf_parity.
"""

import json
import os
import re
import sys


def step(results, name):
    """(exit code or None when the step did not run, last JSON object or None, stdout)."""
    try:
        rc = int(open(os.path.join(results, name + ".rc")).read().strip())
    except (OSError, ValueError):
        return None, None, ""
    try:
        text = open(os.path.join(results, name + ".json")).read()
    except OSError:
        text = ""
    for line in reversed(text.strip().splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return rc, obj, text
    return rc, None, text


def summarize(results):
    out = {"gpu_check": 1, "exit_codes": {}}
    for name in ["doctor", "parity", "webgpu_step", "torch_step", "hf_parity"]:
        out["exit_codes"][name] = step(results, name)[0]
    _, doctor, _ = step(results, "doctor")
    if doctor:
        out["adapter"] = doctor.get("adapter")
        out["device_limits"] = doctor.get("device_limits")
        out["training_backend"] = doctor.get("training", {}).get("backend")
        out["evaluation_provider"] = doctor.get("evaluation", {}).get("provider")
        out["gpu_prerequisites_missing"] = [c["check"] for c in doctor.get("gpu_prerequisites", []) if not c["ok"]]
    out["hardware_gpu"] = out["exit_codes"]["doctor"] == 0
    rc, _, text = step(results, "parity")
    counts = re.search(r"(\d+) passed \| (\d+) failed", re.sub(r"\x1b\[[0-9;]*m", "", text))
    out["wgsl_parity"] = {
        "ok": rc == 0,
        "passed": int(counts.group(1)) if counts else None,
        "failed": int(counts.group(2)) if counts else None,
    }
    _, web, _ = step(results, "webgpu_step")
    if web:
        out["webgpu"] = {
            k: web.get(k)
            for k in [
                "step_ms",
                "first_step_s",
                "loss",
                "embedding_grad_norm",
                "embedding_blocks",
                "peak_rss_mb",
                "adapter",
                "complete",
                "webgpu_calls",
                "split_ms",
                "tfjs_device",
            ]
        }
    _, torch, _ = step(results, "torch_step")
    if torch:
        out["torch"] = torch
    if web and torch and torch.get("step_ms"):
        full = web.get("step_ms", {}).get("full")
        drop = web.get("step_ms", {}).get("graddrop")
        out["webgpu_over_torch"] = full / torch["step_ms"] if full else None
        out["graddrop_over_full"] = drop / full if full and drop else None
    _, hf, _ = step(results, "hf_parity")
    if hf:
        out.update(hf)
    return out


if __name__ == "__main__":
    print(json.dumps(summarize(sys.argv[1])))
