"""The geometry engine on real frames: annotated SUN RGB-D boxes, the class-agnostic path and the SSD.

Writes PNGs of what it found to out/real_world/ for a person to look at."""
from __future__ import annotations

import numpy as np
import pytest

from spatial_vlm_ros.inference.class_agnostic import find_objects
from spatial_vlm_ros.inference.detectors.overlay import draw_scene, save_png
from spatial_vlm_ros.inference.geometry import backproject, points_in_box
from spatial_vlm_ros.inference.geometry_engine import GeometryEngine
from spatial_vlm_ros.inference.types import RelationType, RGBDFrame
from spatial_vlm_training.data.realdata import read_frames


@pytest.fixture(scope="module")
def sun_scenes(realdata, repo_root):
    engine = GeometryEngine(detector="annotations")
    out = []
    for frame in read_frames(realdata / "sunrgbd_mmdet3d"):
        engine.set_annotations(frame.annotated_detections())
        rgbd = frame.to_rgbd_frame()
        scene = engine.infer(rgbd)
        save_png(repo_root / "out" / "real_world" / f"annotations_{frame.name.split('/')[1]}.png",
                 draw_scene(frame.rgb, scene, f"{frame.name}: annotated 2D boxes, measured relations", frame.depth))
        out.append((frame, rgbd, scene, engine))
    return out


def _held(scene, rtype):
    return {(r.subject_id, r.object_id) for r in scene.relations if r.type == rtype and r.holds}


def test_lamp_rests_on_and_touches_the_night_stand(sun_scenes):
    for frame, rgbd, scene, engine in sun_scenes:
        if frame.name.endswith("000002"):
            continue
        assert ("lamp_0", "night_stand_0") in _held(scene, RelationType.SUPPORT), frame.name
        contacts = _held(scene, RelationType.CONTACT)
        assert {("lamp_0", "night_stand_0"), ("night_stand_0", "lamp_0")} & contacts, frame.name
        answer = engine.answer(rgbd, scene, "What is the lamp resting on?")
        assert answer.success and answer.text == "The lamp is on the night stand.", answer
        assert "The lamp is on the night stand." in scene.description


def test_nothing_false_in_frame_2(sun_scenes):
    frame, _, scene, _ = next(s for s in sun_scenes if s[0].name.endswith("000002"))
    assert _held(scene, RelationType.SUPPORT) == set()
    assert _held(scene, RelationType.CONTACT) == set()  # bed and night stand are 14 cm apart (annotated boxes)


def test_every_support_found_is_annotated_and_false_contacts_are_rare(sun_scenes):
    false_contacts = []
    for frame, _, scene, _ in sun_scenes:
        annotated_on = {(r.subject_id, r.object_id) for r in frame.annotated_relations() if r.predicate == "on"}
        assert _held(scene, RelationType.SUPPORT) <= annotated_on, frame.name
        gaps = frame.annotated_box_gaps()
        false_contacts += [(frame.name, a, b) for a, b in _held(scene, RelationType.CONTACT) if gaps[frozenset((a, b))] > 0.08]
    # Measured: one (000001: the ottoman against the bed's footboard, annotated 15 cm apart, p = 0.59).
    assert len(false_contacts) <= 1, false_contacts


def test_confidences_reflect_range(sun_scenes):
    """The same kind of relation is less certain at 4.8 m (frame 1) than at 3.5 m (frame 4)."""
    conf = {}
    for frame, _, scene, _ in sun_scenes:
        for r in scene.relations:
            if r.type == RelationType.SUPPORT and r.holds:
                conf[frame.name] = r.confidence
    assert conf["sunrgbd/000001"] < conf["sunrgbd/000004"] <= 1.0


def test_class_agnostic_finds_the_furniture_without_a_detector(realdata, repo_root):
    """Each annotated object with at least 5000 depth points is mostly inside one depth segment."""
    covered, total = 0, 0
    for frame in read_frames(realdata / "sunrgbd_mmdet3d"):
        objs = find_objects(frame.to_rgbd_frame())
        assert objs, frame.name
        xyz = backproject(frame.depth, frame.intrinsics).reshape(-1, 3)
        for ann in frame.objects:
            inside = points_in_box(xyz, ann.box3d).reshape(frame.depth.shape) & np.isfinite(frame.depth)
            if inside.sum() < 5000:
                continue
            total += 1
            covered += max((o.mask & inside).sum() / inside.sum() for o in objs) >= 0.5
        engine = GeometryEngine(detector="class_agnostic")
        scene = engine.infer(frame.to_rgbd_frame())
        save_png(repo_root / "out" / "real_world" / f"class_agnostic_{frame.name.split('/')[1]}.png",
                 draw_scene(frame.rgb, scene, f"{frame.name}: class-agnostic depth segments"))
    # Measured: 13 of 13 objects (touching furniture often shares one segment: coverage, not separation).
    assert total >= 10 and covered / total >= 0.8


def test_ssd_engine_on_tum_and_nyu(realdata, repo_root):
    pytest.importorskip("ai_edge_litert")
    engine = GeometryEngine(detector="oid_ssd", score_threshold=0.4)
    frames = read_frames(realdata / "open3d_testdata") + read_frames(realdata / "nyuv2_metric3d_unidepth")
    found = {}
    for frame in frames:
        scene = engine.infer(frame.to_rgbd_frame())
        found[frame.name] = sorted(d.label for d in scene.detections)
        save_png(repo_root / "out" / "real_world" / f"oid_ssd_{frame.name.replace('/', '_')}.png",
                 draw_scene(frame.rgb, scene, f"{frame.name}: oid_ssd", frame.depth))
        for d in scene.detections:
            if d.box3d is not None:
                assert 0.3 < float(d.box3d.center[2]) < 10.0
    assert {"chair", "desk"} <= set(found["tum/fr3"])
    assert "table" in found["nyu/unidepth"] and "chair" in found["nyu/unidepth"]


def test_engine_input_errors(realdata):
    with pytest.raises(ValueError, match="unknown detector"):
        GeometryEngine(detector="yolo")
    engine = GeometryEngine(detector="annotations")
    frame = read_frames(realdata / "sunrgbd_mmdet3d" / "000002")[0]
    with pytest.raises(ValueError, match="no annotated boxes"):
        engine.infer(frame.to_rgbd_frame())
    # Without depth the boxes come back in 2D only, with no relations.
    no_depth = RGBDFrame(frame.rgb, frame.intrinsics)
    scene = engine.infer(no_depth, detections=frame.annotated_detections())
    assert len(scene.detections) == 2 and scene.relations == []
    with pytest.raises(ValueError):
        engine.infer(RGBDFrame(np.zeros((5, 5)), frame.intrinsics), detections=[])
    bad = engine.answer(no_depth, scene, "")
    assert not bad.success and "empty" in bad.message


def test_depth_at_a_lower_resolution_than_colour(realdata):
    """Boxes are in colour pixels; a half-resolution depth image gives the same support relation."""
    import cv2

    frame = read_frames(realdata / "sunrgbd_mmdet3d" / "000003")[0]
    h, w = frame.depth.shape
    half = cv2.resize(frame.depth, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    scene = GeometryEngine(detector="annotations").infer(RGBDFrame(frame.rgb, frame.intrinsics, depth=half, up=frame.up),
                                                         detections=frame.annotated_detections())
    assert ("lamp_0", "night_stand_0") in _held(scene, RelationType.SUPPORT)
    assert all(d.mask is None or d.mask.shape == (h, w) for d in scene.detections)


def test_detector_loader():
    pytest.importorskip("ai_edge_litert")
    from spatial_vlm_ros.inference.detectors import load_detector

    assert load_detector("oid_ssd", score_threshold=0.5).score_threshold == 0.5
    with pytest.raises(ValueError, match="unknown detector"):
        load_detector("yolo")


def test_annotations_found_by_image_for_frames_that_went_through_ros(realdata):
    from spatial_vlm_training.data.realdata import AnnotationLookup

    frames = read_frames(realdata / "sunrgbd_mmdet3d")
    engine = GeometryEngine(detector="annotations", annotations=AnnotationLookup(frames))
    f = frames[3]
    scene = engine.infer(RGBDFrame(f.rgb.copy(), f.intrinsics, depth=f.depth, up=f.up, stamp_ns=123, frame_id="camera"))
    assert ("lamp_0", "night_stand_0") in _held(scene, RelationType.SUPPORT)
