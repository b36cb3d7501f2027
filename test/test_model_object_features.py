"""Metric object/pair features: known gaps and heights come out of a rendered depth map."""
from __future__ import annotations

import numpy as np

from spatial_vlm_ros.inference.object_features import WORK_SIZE, box_mask, scene_features
from spatial_vlm_ros.inference.types import CameraIntrinsics


def two_boxes_scene(gap_m: float):
    """A fronto-parallel wall at 2 m with two flat patches; the second sits `gap_m` behind the first."""
    w, h = 640, 480
    k = CameraIntrinsics(500.0, 500.0, 320.0, 240.0, w, h)
    depth = np.full((h, w), 3.0, np.float32)
    depth[200:280, 200:300] = 2.0
    depth[200:280, 300:400] = 2.0 + gap_m
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[200:280, 200:300] = (220, 20, 20)
    rgb[200:280, 300:400] = (20, 20, 220)
    sx, sy = WORK_SIZE[0] / w, WORK_SIZE[1] / h
    masks = [box_mask(np.array([200 * sx, 200 * sy, 300 * sx, 280 * sy]) / np.array([*WORK_SIZE, *WORK_SIZE])),
             box_mask(np.array([300 * sx, 200 * sy, 400 * sx, 280 * sy]) / np.array([*WORK_SIZE, *WORK_SIZE]))]
    return rgb, depth, k, masks


def test_pair_gap_matches_the_depth_step():
    for gap in (0.0, 0.05, 0.4):
        rgb, depth, k, masks = two_boxes_scene(gap)
        f = scene_features(rgb, depth, k, np.array([0.0, -1.0, 0.0]), masks)
        assert f.pair_index.tolist() == [[0, 1], [1, 0]]
        # adjacent columns 1 pixel apart at 2 m are ~8 mm apart laterally at the working resolution
        assert abs(f.gap_m[0] - gap) < 0.02, (gap, f.gap_m)
        assert np.isclose(f.gap_m[0], f.gap_m[1], atol=0.02)
        assert f.pair_features.shape == (2, 12) and np.isfinite(f.pair_features).all()


def test_colour_and_geometry_features():
    rgb, depth, k, masks = two_boxes_scene(0.1)
    f = scene_features(rgb, depth, k, None, masks)
    red, blue = f.color
    assert red[0] > 0.7 > red[2] and blue[2] > 0.7 > blue[0]  # mean RGB
    assert np.isclose(f.geometry[0, 8], 2.0, atol=0.01)  # median depth of the first patch
    assert f.geometry[0, 3] > 0.2 and f.geometry[0, 4] < 0.01  # 40 cm wide (p10-p90: 32 cm), flat in depth


def test_objects_without_points_are_flagged():
    rgb, depth, k, masks = two_boxes_scene(0.1)
    depth[:] = np.nan
    f = scene_features(rgb, depth, k, None, masks)
    assert np.isnan(f.gap_m).all() and (f.pair_features[:, -1] == 1).all()
