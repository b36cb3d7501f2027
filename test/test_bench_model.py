"""`spatial-vlm bench model` runs end to end on tiny settings and writes well-formed JSON."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_model_bench_writes_json(repo_root, student_dir, tmp_path):
    if not (student_dir / "model.safetensors").is_file():
        pytest.skip("no embedded student model")
    out = tmp_path / "model.json"
    # The student stands in for the teacher: this checks the harness, not the ratio.
    cmd = [sys.executable, "-m", "spatial_vlm_ros.cli", "bench", "model", "--teacher", str(student_dir),
           "--frames", "1", "--reps", "1", "--warmup", "0", "--k-values", "0,6", "--k-reps", "1", "--no-profile",
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["benchmark"] == "model" and data["machine"]["logical_cpus"] >= 1
    for name in ("student", "teacher"):
        assert data[f"model.{name}_infer_median_ms"] > 0 and data[f"model.{name}_answer_p95_ms"] > 0
        assert data[f"model.{name}_params"] > 0 and data[f"model.{name}_peak_rss_MB"] > 0
        assert "total" in data[f"model.{name}_stage_median_ms"]
    assert data["model.size_ratio"] == pytest.approx(1.0)
    assert data["model.latency_ratio"] > 0
    assert data["model.hidden_cot_k0_answer_median_ms"] > 0 and data["model.hidden_cot_k6_answer_median_ms"] > 0
    assert data["model.hidden_cot_k6_trained"] is (6 <= data["model.hidden_cot_trained_k"])
    assert set(data["targets"]) == {"model.latency_ratio", "model.size_ratio"}


def test_model_bench_missing_teacher_is_one_line(repo_root, tmp_path):
    cmd = [sys.executable, "-m", "spatial_vlm_ros.cli", "bench", "model", "--teacher", str(tmp_path / "nope"),
           "--out", str(tmp_path / "m.json")]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "model folder not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.json").exists()
