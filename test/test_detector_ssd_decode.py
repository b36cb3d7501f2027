"""SSD anchors, box decoding and NMS against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from spatial_vlm_ros.inference.detectors.ssd_anchors import SsdAnchorConfig, generate_anchors, layer_box_specs
from spatial_vlm_ros.inference.detectors.ssd_decode import BoxCoderScales, class_aware_nms, decode_boxes, nms


def test_anchor_count_and_feature_maps_match_the_model_outputs():
    cfg = SsdAnchorConfig()
    assert cfg.feature_map_sizes() == [19, 10, 5, 3, 2, 1]
    assert len(generate_anchors(cfg)) == 1917  # the .tflite's raw box count


def test_first_and_last_anchors_by_hand():
    anchors = generate_anchors()
    c = 0.5 / 19
    # Lowest layer, cell (0, 0): (0.1, 1.0), (0.2, 2.0), (0.2, 0.5) as (yc, xc, h, w).
    np.testing.assert_allclose(anchors[0], [c, c, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(anchors[1], [c, c, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(anchors[2], [c, c, 0.2 * math.sqrt(2), 0.2 / math.sqrt(2)], atol=1e-6)
    # Second anchor cell of the lowest layer moves one column right.
    np.testing.assert_allclose(anchors[3][:2], [c, 1.5 / 19], atol=1e-6)
    # Top layer (1x1): centred, scale 0.95, and the interpolated square sqrt(0.95 * 1.0).
    np.testing.assert_allclose(anchors[-6], [0.5, 0.5, 0.95, 0.95], atol=1e-6)
    np.testing.assert_allclose(anchors[-1], [0.5, 0.5, math.sqrt(0.95), math.sqrt(0.95)], atol=1e-6)
    # Layer 1 starts after 19*19*3 anchors with scale 0.35.
    np.testing.assert_allclose(anchors[1083], [0.05, 0.05, 0.35, 0.35], atol=1e-6)


def test_layer_specs_scale_interpolation():
    cfg = SsdAnchorConfig()
    specs = layer_box_specs(cfg, 2)
    assert len(specs) == 6
    assert specs[0] == pytest.approx((0.5, 1.0))
    assert specs[-1] == pytest.approx((math.sqrt(0.5 * 0.65), 1.0))


def test_decode_zero_offsets_is_the_anchor():
    anchors = np.array([[0.5, 0.4, 0.2, 0.1]], dtype=np.float32)
    box = decode_boxes(np.zeros((1, 4)), anchors)[0]
    np.testing.assert_allclose(box, [0.35, 0.4, 0.45, 0.6], atol=1e-7)  # x0, y0, x1, y1


def test_decode_by_hand():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]])
    # ty=10 moves the centre by one anchor height, th=5*ln(2) doubles the height.
    enc = np.array([[10.0, -5.0, 5 * math.log(2), 0.0]])
    x0, y0, x1, y1 = decode_boxes(enc, anchors, BoxCoderScales())[0]
    assert (y0 + y1) / 2 == pytest.approx(0.7)
    assert (x0 + x1) / 2 == pytest.approx(0.5 - 0.5 * 0.4)
    assert y1 - y0 == pytest.approx(0.4)
    assert x1 - x0 == pytest.approx(0.4)


def test_nms_keeps_best_of_overlapping_and_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [3, 2]  # 0 and 1 overlap box 3 with IoU > 0.5
    assert nms(boxes, scores, iou_threshold=0.99).tolist() == [3, 0, 1, 2]
    assert nms(boxes[:0], scores[:0]).tolist() == []


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float64)
    scores = np.array([0.9, 0.8, 0.6])
    classes = np.array([1, 1, 2])
    keep = class_aware_nms(boxes, scores, classes, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
