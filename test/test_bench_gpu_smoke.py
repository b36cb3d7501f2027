"""bench/paper_scale_gpu.py runs as a plain script (as on a bare GPU box) and writes well-formed JSON."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

TINY = ["--reps", "1", "--static-reps", "2", "--warmup", "0"]


def _run(repo_root, *args):
    return subprocess.run([sys.executable, str(repo_root / "bench" / "paper_scale_gpu.py"), *args],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)


def test_smoke_writes_json_and_static_ids_equal_eager(repo_root, tmp_path):
    out = tmp_path / "gpu_smoke.json"
    # compiled_fused walks the compile + fused-MLP code of the GPU's compiled_all variant (aot_eager: fast).
    proc = _run(repo_root, "--smoke", "--out", str(out), "--modes", "eager,compiled_fused",
                "--compile-backend", "aot_eager", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["smoke"] is True and data["complete"] is True and data["errors"] == {}
    for key in ("gpu.teacher_eager_ms", "gpu.student_eager_ms", "gpu.student_static_ms", "gpu.student_prefill_ms",
                "gpu.student_decode_ms_per_token", "gpu.student_params_B", "gpu.teacher_params_B",
                "gpu.latency_ratio_static_vs_teacher", "gpu.size_ratio"):
        assert isinstance(data[key], (int, float)) and data[key] > 0, key
    # Static engine vs eager greedy ids, on the CPU in fp32: must be identical.
    assert data["gpu.student_static_tokens_match_eager"] is True
    assert data["gpu.teacher_eager_static_tokens_match_eager"] is True
    assert data["gpu.student_eager_tokens_valid"] is True
    assert data["gpu.student_compiled_fused_static_tokens_match_eager"] is True
    assert data["gpu.student_compiled_fused_fused_mlps"] == 2  # the smoke LLM has two layers
    assert data["gpu.student_compiled_fused_front_end_compiled"] is True
    assert data["settings"]["answer_tokens"] == data["gpu.student_answer_tokens"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_without_cuda_skips_and_writes_nothing(repo_root, tmp_path):
    out = tmp_path / "gpu.json"
    proc = _run(repo_root, "--out", str(out))
    assert proc.returncode == 0
    assert "skipped: no CUDA" in proc.stdout
    assert not out.exists()


def test_bad_mode_is_one_line_error(repo_root, tmp_path):
    proc = _run(repo_root, "--smoke", "--modes", "warp", "--out", str(tmp_path / "x.json"))
    assert proc.returncode == 1
    assert "unknown mode" in proc.stderr and "Traceback" not in proc.stderr
