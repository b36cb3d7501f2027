"""`spatial-vlm bench node` runs the real node, camera stand-in and probe, and writes well-formed JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros


def test_node_bench_writes_json(repo_root, student_dir, tmp_path):
    pytest.importorskip("rclpy")
    if not (student_dir / "config.json").is_file():
        pytest.skip("no embedded student model")
    out = tmp_path / "node.json"
    cmd = [sys.executable, "-m", "spatial_vlm_ros.cli", "bench", "node", "--duration", "3", "--warmup", "1",
           "--frames", "1", "--query-hz", "10", "--startup-timeout", "120", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=400, env=dict(os.environ))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    data = json.loads(out.read_text())
    assert data["benchmark"] == "node" and data["complete"] is True
    assert data["node.frames_published"] > 0 and data["node.input_hz"] > 0
    assert data["node.frames_output"] > 0, "the node produced no output during the measured window"
    assert data["node.output_hz"] > 0 and data["node.latency_p95_ms"] > 0
    assert data["service.requests"] > 0
    assert isinstance(data["service.errors"], int) and data["service.errors"] >= 0
    assert set(data["targets"]) == {"node.output_hz", "node.latency_p95_ms", "service.latency_p95_ms",
                                    "service.errors"}
    for target in data["targets"].values():
        assert target["met"] in (True, False, None) and "target" in target


def test_node_bench_bad_param_is_one_line(repo_root, tmp_path):
    cmd = [sys.executable, "-m", "spatial_vlm_ros.cli", "bench", "node", "--node-param", "oops",
           "--frames", "1", "--out", str(tmp_path / "n.json")]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "NAME:=VALUE" in proc.stderr and "Traceback" not in proc.stderr
