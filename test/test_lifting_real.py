"""Lifting annotated SUN RGB-D 2D boxes with real Kinect v2 depth, scored against the annotated 3D boxes.

Lifted boxes cover the visible surface only, so their centres sit in front of the annotated (amodal)
centres; the bounds below are what the method achieves here, measured and written in docs/real_world.md.
"""
from __future__ import annotations

import numpy as np
import pytest

from spatial_vlm_ros.inference.geometry import points_in_box
from spatial_vlm_ros.inference.lifting import lift_detections
from spatial_vlm_training.data.realdata import box_center_error, horizontal_center_error, read_frames


@pytest.fixture(scope="module")
def lifted_sun(realdata):
    out = []
    for frame in read_frames(realdata / "sunrgbd_mmdet3d"):
        dets = frame.annotated_detections()
        out.append((frame, dets, lift_detections(frame.depth, frame.intrinsics, dets, frame.up)))
    return out


def test_every_annotated_object_is_lifted(lifted_sun):
    for frame, dets, lifted in lifted_sun:
        missing = [d.id for d, obj in zip(dets, lifted, strict=True) if obj is None]
        assert not missing, (frame.name, missing)


def test_centre_error_against_annotated_3d_boxes(lifted_sun):
    errors, horizontal = [], []
    for frame, _, lifted in lifted_sun:
        for ann, obj in zip(frame.objects, lifted, strict=True):
            errors.append(box_center_error(obj.box3d, ann.box3d))
            horizontal.append(horizontal_center_error(obj.box3d, ann.box3d, frame.up))
    # 17 objects; measured: median 0.32 m, 14 of 17 under 0.5 m (the bed seen from its foot end: 1.6 m).
    assert np.median(errors) < 0.35
    assert np.mean(np.asarray(errors) < 0.5) >= 0.6
    assert np.median(horizontal) < 0.3


def test_lifted_points_belong_to_the_annotated_object(lifted_sun):
    """Mask precision: the share of an object's lifted points inside its annotated 3D box (grown by
    10 cm for annotation and depth noise). Measured: median 1.0, 15 of 17 objects >= 0.9."""
    shares = []
    for frame, _, lifted in lifted_sun:
        for ann, obj in zip(frame.objects, lifted, strict=True):
            shares.append(float(points_in_box(obj.points, ann.box3d, margin_m=0.1).mean()))
    assert np.median(shares) >= 0.95
    assert np.mean(np.asarray(shares) >= 0.8) >= 0.85


def test_lamps_are_located_to_a_decimetre(lifted_sun):
    for frame, _, lifted in lifted_sun:
        for ann, obj in zip(frame.objects, lifted, strict=True):
            if ann.category == "lamp" and frame.name != "sunrgbd/000001":  # frame 1: 150 depth points at 4.8 m
                assert box_center_error(obj.box3d, ann.box3d) < 0.15, (frame.name, ann.id)
