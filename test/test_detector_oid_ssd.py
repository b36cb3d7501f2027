"""The OIDv4 SSD on the LiteRT runtime: model files, raw outputs, real frames, bad input."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spatial_vlm_ros.inference.detectors.oid_ssd import LABEL_FILE, MODEL_FILE, default_model_dir

pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def detector():
    from spatial_vlm_ros.inference.detectors.oid_ssd import OidSsdDetector

    return OidSsdDetector(score_threshold=0.4)


def test_model_files_match_their_checksums():
    d = default_model_dir()
    sums = dict(line.split()[::-1] for line in (d / "SHA256SUMS").read_text().splitlines())
    for name in (MODEL_FILE, LABEL_FILE):
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == sums[name]
    assert "Apache License" in (d / "LICENSE").read_text()


def test_labels_and_raw_output_shapes(detector):
    assert detector.labels[0] == "???" and "Mug" in detector.labels and len(detector.labels) == 24
    enc, logits = detector.raw_outputs(np.zeros((300, 300, 3), np.uint8))
    assert enc.shape == (1917, 4) and logits.shape == (1917, 24)


def test_blank_image_gives_no_confident_detection(detector):
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


@pytest.mark.parametrize("bad", [np.zeros((10, 10)), np.zeros((4, 4, 3), np.uint8), np.zeros((50, 50, 3), np.float32)])
def test_bad_images_fail_with_one_line(detector, bad):
    with pytest.raises(ValueError):
        detector.detect(bad)


def test_tum_desk_frame_finds_the_chairs_and_the_desk(detector, realdata):
    """Boxes land on the real objects (checked by eye: the red chair lower left, the yellow chair
    right of centre, the desk across the frame)."""
    from spatial_vlm_training.data.realdata import read_tum_frame

    frame = read_tum_frame(realdata / "open3d_testdata")
    dets = detector.detect(frame.rgb)
    by_label = {}
    for d in dets:
        by_label.setdefault(d.label, []).append(d)
    assert len(by_label.get("chair", [])) >= 2
    assert "desk" in by_label or "table" in by_label
    red_chair = max(by_label["chair"], key=lambda d: _iou(d.box2d, (10, 245, 255, 480)))
    assert _iou(red_chair.box2d, (10, 245, 255, 480)) > 0.7
    yellow_chair = max(by_label["chair"], key=lambda d: _iou(d.box2d, (380, 210, 525, 430)))
    assert _iou(yellow_chair.box2d, (380, 210, 525, 430)) > 0.6


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
