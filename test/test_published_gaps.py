"""scripts/measure_published_gaps.py: the published metric gap against the ground-truth gap, from the
detections' masks and from their 3D boxes, on the same detections."""
from __future__ import annotations

import json

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("measure_published_gaps")


def test_measures_both_ways_on_the_same_pairs(script, generated_split, student_dir, tmp_path):
    data = generated_split("val", 5151, 2, width=320, height=240)
    out = tmp_path / "gaps.json"
    assert script.main([str(data), "--model", str(student_dir), "--frames", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    masks, boxes = result["masks"], result["boxes"]
    assert masks["pairs"] == boxes["pairs"] > 0  # the same detected pairs, measured two ways
    assert masks["touching_pairs"] == boxes["touching_pairs"] and masks["apart_pairs"] == boxes["apart_pairs"]
    for way in (masks, boxes):
        assert way["measured"] > 0 and 0.0 <= way["abs_error_median_m"] < 1.0
        assert way["touching_judged_touching"] <= way["touching_pairs"] and way["cross_check_ms_median"] > 0
    assert len(result["data_sha256"]) == 64


def test_not_a_split_is_a_one_line_error(script, tmp_path, capsys):
    assert script.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
