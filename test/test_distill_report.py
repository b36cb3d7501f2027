"""`spatial-vlm report`: the reproduction table, its ratios and the spread over plane seeds, on a tiny split."""
from __future__ import annotations

import argparse
import json

from spatial_vlm_training.data.sample import split_fingerprint
from spatial_vlm_training.distill import report


def test_report_writes_table_ratios_and_plane_seed_spread(generated_split, student_dir, teacher_dir, tmp_path):
    data = generated_split("test", 4242, 2, width=320, height=240)
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    args = parser.parse_args(["--teacher", str(teacher_dir), "--student", str(student_dir), "--data", str(data),
                              "--out", str(tmp_path), "--limit", "2", "--latency-frames", "1", "--plane-seeds", "5"])
    assert report.run(args) == 0
    out = json.loads((tmp_path / "reproduction.json").read_text())
    assert out["size_ratio"] > 3 and out["latency_ratio"] > 0 and set(out["retention"]) == set(report.TASKS)
    spread = out["plane_seed_spread"]
    assert spread["seeds"] == [0, 5]
    for name in ("teacher", "student"):
        assert set(spread["per_seed"][name]) == {"0", "5"}
        assert spread["per_seed"][name]["0"]["proximity_accuracy"] == out["models"][name]["proximity_accuracy"]
        lo, hi = spread["range"][name]["contact_accuracy"]
        assert 0.0 <= lo <= hi <= 1.0
    assert out["data_sha256"] == split_fingerprint(data, 2)
    text = (tmp_path / "reproduction.md").read_text()
    assert out["data_sha256"][:16] in text
    assert "Spread over the proposal stage's RANSAC plane seeds [0, 5]" in text and "| student |" in text


def test_report_without_extra_seeds_has_no_spread(generated_split, student_dir, tmp_path):
    data = generated_split("test", 4243, 1, width=320, height=240)
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    args = parser.parse_args(["--teacher", str(student_dir), "--student", str(student_dir), "--data", str(data),
                              "--out", str(tmp_path), "--limit", "1", "--latency-frames", "1", "--plane-seeds"])
    assert report.run(args) == 0
    assert "plane_seed_spread" not in json.loads((tmp_path / "reproduction.json").read_text())
