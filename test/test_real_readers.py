"""Readers of ../shared/realdata: conventions checked against the datasets' own numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spatial_vlm_ros.inference.geometry import backproject, points_in_box, valid_points
from spatial_vlm_training.data.realdata import (
    box_from_corners,
    read_frames,
    read_nyu_frames,
    read_sunrgbd_frame,
    read_tum_frame,
)


def test_box_from_corners_recovers_a_rotated_box():
    from spatial_vlm_ros.inference.types import Box3D

    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    box = Box3D(np.array([1.0, 2.0, 3.0]), np.array([0.4, 0.2, 0.6]), rot)
    c = box.corners()
    # votenet order: top face 0-3 (counter-clockwise), bottom face 4-7 below them.
    order = [c[7], c[5], c[1], c[3], c[6], c[4], c[0], c[2]]
    rebuilt = box_from_corners(np.array(order))
    np.testing.assert_allclose(rebuilt.center, box.center, atol=1e-9)
    np.testing.assert_allclose(sorted(rebuilt.size), sorted(box.size), atol=1e-9)


@pytest.mark.parametrize("frame_id", ["000001", "000002", "000003", "000004"])
def test_sunrgbd_depth_points_inside_boxes_match_the_dataset_count(realdata, frame_id):
    """The provenance file counts the depth points inside each annotated box; reproducing the counts
    exactly proves the 1-based pixel convention, the depth scale and the box corners are all right."""
    d = realdata / "sunrgbd_mmdet3d" / frame_id
    frame = read_sunrgbd_frame(d)
    expected = {o["classname"]: o["n_depth_points_inside"] for o in json.loads((d / "boxes.json").read_text())["objects"]}
    pts = valid_points(backproject(frame.depth, frame.intrinsics))
    for obj in frame.objects:
        got = int(points_in_box(pts, obj.box3d).sum())
        assert abs(got - expected[obj.category]) <= 2, (obj.id, got, expected[obj.category])


def test_sunrgbd_up_vector_and_annotated_relations(realdata):
    frames = read_frames(realdata / "sunrgbd_mmdet3d")
    assert [f.name for f in frames] == [f"sunrgbd/00000{i}" for i in range(1, 5)]
    for f in frames:
        assert f.up is not None and abs(np.linalg.norm(f.up) - 1) < 1e-3 and f.up[1] < -0.9  # up is mostly -y
        on = {(r.subject_id, r.object_id) for r in f.annotated_relations() if r.predicate == "on"}
        if f.name.endswith("000002"):
            assert on == set()
        else:
            assert ("lamp_0", "night_stand_0") in on
            gap = next(r.gap_m for r in f.annotated_relations() if r.predicate == "on")
            assert -0.03 <= gap <= -0.015  # PROVENANCE: -2..-3 cm


def test_nyu_and_tum_frames_load_with_metric_depth(realdata):
    nyu = read_nyu_frames(realdata / "nyuv2_metric3d_unidepth")
    assert len(nyu) == 4
    for f in nyu + [read_tum_frame(realdata / "open3d_testdata")]:
        assert f.rgb.shape[:2] == f.depth.shape == (480, 640)
        med = float(np.nanmedian(f.depth))
        assert 1.0 < med < 5.0, (f.name, med)
    assert len(read_frames(realdata)) == 9


def test_bad_paths_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a realdata folder"):
        read_frames(tmp_path)
    (tmp_path / "camera.json").write_text("{broken")
    with pytest.raises(ValueError, match="corrupt JSON"):
        read_frames(tmp_path)


def test_annotation_lookup_finds_boxes_by_image(realdata):
    from spatial_vlm_ros.inference.types import RGBDFrame
    from spatial_vlm_training.data.realdata import AnnotationLookup

    frames = read_frames(realdata / "sunrgbd_mmdet3d")
    lookup = AnnotationLookup(frames)
    assert len(lookup) == 4
    for f in frames:
        noisy = np.clip(f.rgb.astype(int) + np.random.default_rng(0).integers(-3, 4, f.rgb.shape), 0, 255).astype(np.uint8)
        dets = lookup(RGBDFrame(noisy, f.intrinsics))  # e.g. after a lossy image transport
        assert [d.id for d in dets] == [o.id for o in f.objects]
    with pytest.raises(ValueError, match="no annotated frame"):
        lookup(RGBDFrame(np.zeros_like(frames[0].rgb), frames[0].intrinsics))
