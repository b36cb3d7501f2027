"""Geometry cross-check + fusion, markers, message conversion, debug image and the query logic,
on a hand-built metric scene (no ROS graph, no model)."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rclpy")
from visualization_msgs.msg import Marker  # noqa: E402

from spatial_vlm_ros.inference.geometry import RelationThresholds  # noqa: E402
from spatial_vlm_ros.inference.types import (  # noqa: E402
    Answer,
    CameraIntrinsics,
    Detection,
    Relation,
    RelationType,
    RGBDFrame,
    SceneResult,
)
from spatial_vlm_ros.ros.debug_image import annotate  # noqa: E402
from spatial_vlm_ros.ros.fusion import cloud_to_depth, cross_check, fuse, positive_probability  # noqa: E402
from spatial_vlm_ros.ros.markers import CONTACT_STYLE, NEAR_STYLE, MarkerTracker  # noqa: E402
from spatial_vlm_ros.ros.query_handler import SceneState, handle_query, parse_question  # noqa: E402
from spatial_vlm_ros.ros.scene_messages import (  # noqa: E402
    detection_to_msg,
    msg_to_detection,
    msg_to_relation,
    relation_to_msg,
)

INTR = CameraIntrinsics(300.0, 300.0, 160.0, 120.0, 320, 240)


def wall_scene():
    """Three fronto-parallel patches at 1 m: A and B 5 mm apart (touching), C 0.8 m to the side of A."""
    depth = np.full((240, 320), 3.0, np.float32)  # background wall
    depth[100:140, 40:80] = 1.0  # A: x in [-0.4, -0.27] m
    depth[100:140, 81:121] = 1.005  # B: starts ~3 mm right of A, 5 mm deeper
    depth[100:140, 280:300] = 1.0  # C: x in [0.4, 0.47] m
    dets = [Detection("a", "mug", 0.9, (40, 100, 80, 140), color="red"),
            Detection("b", "book", 0.8, (81, 100, 121, 140), color="blue"),
            Detection("c", "laptop", 0.7, (280, 100, 300, 140), color="gray")]

    def rel(s, o, t, pred, holds, conf):
        sd = {d.id: d for d in dets}
        return Relation(s, o, sd[s].description, sd[o].description, t, pred, holds, conf)

    # The "model" is wrong about a/b contact (says no, weakly) and right about a/c being far.
    rels = [rel("a", "b", RelationType.CONTACT, "touching", False, 0.6),
            rel("a", "b", RelationType.PROXIMITY, "near", True, 0.9),
            rel("a", "c", RelationType.PROXIMITY, "far", True, 0.8)]
    scene = SceneResult(dets, rels, "three objects")
    frame = RGBDFrame(rgb=np.zeros((240, 320, 3), np.uint8), intrinsics=INTR, depth=depth, stamp_ns=5)
    return scene, frame


@pytest.mark.parametrize("rule", ["geometry", "log_odds", "mean", "model"])
def test_cross_check_measures_gaps_and_applies_rule(rule):
    scene, frame = wall_scene()
    out = cross_check(scene, frame, rule)
    contact, near_ab, far_ac = out.relations
    assert out.depth_source == "measured" and out.checked == 3
    assert contact.distance_m < 0.01 and far_ac.distance_m > 0.6
    if rule == "model":
        assert contact.source == "model" and not contact.holds
    else:
        assert contact.source == ("geometry" if rule == "geometry" else "fused")
    if rule in ("geometry", "log_odds"):
        assert contact.holds  # the metric evidence overrules a weak wrong model answer
    assert near_ab.predicate == "near" and far_ac.predicate == "far"
    assert all(0.5 <= r.confidence <= 1.0 for r in out.relations)
    assert all(d.box3d is not None for d in scene.detections)  # lifted from measured depth


def test_cross_check_measures_from_the_mask_when_a_detection_has_one():
    """A box that takes in the wall behind: from the box, C's points are the wall 2 m behind A; its mask keeps
    C's own patch, 0.67 m to the side of A."""
    scene, frame = wall_scene()
    c = scene.detections[2]
    c.box2d = (40, 100, 300, 140)
    unmasked = {(r.subject_id, r.object_id): r.distance_m for r in cross_check(scene, frame, "geometry").relations}
    c.mask = np.zeros((240, 320), bool)
    c.mask[100:140, 280:300] = True
    masked = {(r.subject_id, r.object_id): r.distance_m for r in cross_check(scene, frame, "geometry").relations}
    assert unmasked[("a", "c")] > 1.5
    assert masked[("a", "c")] == pytest.approx(0.67, abs=0.02)


def test_cross_check_from_point_cloud_only_and_without_depth():
    scene, frame = wall_scene()
    pts = frame.depth  # back-project the same surfaces into a cloud
    from spatial_vlm_ros.inference.geometry import backproject

    cloud = backproject(pts, INTR).reshape(-1, 3)
    cloud_frame = RGBDFrame(rgb=frame.rgb, intrinsics=INTR, points=cloud[np.isfinite(cloud).all(1)])
    out = cross_check(scene, cloud_frame, "geometry")
    assert out.depth_source == "cloud" and out.relations[0].holds and out.relations[0].distance_m < 0.01
    assert np.isfinite(cloud_to_depth(cloud_frame.points, INTR)[110, 50])
    empty = cross_check(wall_scene()[0], RGBDFrame(rgb=frame.rgb, intrinsics=INTR), "log_odds")
    assert empty.depth_source == "none" and empty.checked == 0


def test_thresholds_change_the_geometric_answer():
    scene, frame = wall_scene()
    strict = RelationThresholds(contact_m=0.0005, no_contact_m=0.001)
    assert not cross_check(scene, frame, "geometry", strict).relations[0].holds


def test_fusion_rules():
    assert fuse(0.9, 0.2, "model") == 0.9 and fuse(0.9, 0.2, "geometry") == 0.2
    assert fuse(0.9, 0.2, "mean") == pytest.approx(0.55)
    assert fuse(0.8, 0.8, "log_odds") > 0.9 and fuse(0.5, 0.3, "log_odds") == pytest.approx(0.3)
    with pytest.raises(ValueError):
        fuse(0.5, 0.5, "vote")
    r = Relation("a", "b", "a", "b", RelationType.PROXIMITY, "far", True, 0.8)
    assert positive_probability(r) == pytest.approx(0.2)


def test_markers_styles_and_delete_for_vanished_objects():
    scene, frame = wall_scene()
    rels = cross_check(scene, frame, "geometry").relations
    tracker = MarkerTracker()
    first = tracker.build(scene.detections, rels, header=None).markers
    boxes = [m for m in first if m.ns == "boxes"]
    lines = [m for m in first if m.ns == "relations"]
    assert len(boxes) == 3 and all(m.type == Marker.CUBE for m in boxes)
    assert len([m for m in first if m.type == Marker.TEXT_VIEW_FACING]) == 3
    # contact (thick red) and near (thin green) lines between a and b; nothing for the far pair
    assert sorted(m.scale.x for m in lines) == sorted([CONTACT_STYLE[1], NEAR_STYLE[1]])
    second = tracker.build(scene.detections[:1], [], header=None).markers
    deleted = [m for m in second if m.action == Marker.DELETE]
    assert len(deleted) == 2 * 2 + 2  # b and c: box + label; two relation lines
    assert not any(m.action == Marker.DELETE for m in tracker.build(scene.detections[:1], [], None).markers)


def test_message_conversion_round_trip():
    scene, frame = wall_scene()
    rels = cross_check(scene, frame, "log_odds").relations
    d = scene.detections[0]
    back = msg_to_detection(detection_to_msg(d))
    assert back.box2d == pytest.approx(d.box2d) and back.description == "red mug"
    assert np.allclose(back.box3d.center, d.box3d.center, atol=1e-6)
    r = msg_to_relation(relation_to_msg(rels[0]))
    assert r.predicate == rels[0].predicate and r.source == rels[0].source
    assert relation_to_msg(rels[0]).text == rels[0].text
    nan_rel = relation_to_msg(Relation("a", "b", "a", "b", RelationType.CONTACT, "touching", True, 0.5))
    assert math.isnan(nan_rel.distance_m)


def test_debug_image_draws_boxes_and_tints_masks():
    scene, frame = wall_scene()
    img = annotate(frame.rgb, scene.detections, cross_check(scene, frame).relations)
    assert img.shape == frame.rgb.shape and img.dtype == np.uint8
    assert img[100, 60].any() and not frame.rgb.any()
    assert not img[112, 55].any()  # inside A's box, off the relation lines, no mask: untouched
    scene.detections[0].mask = np.zeros((240, 320), bool)
    scene.detections[0].mask[110:130, 50:70] = True
    tinted = annotate(frame.rgb, scene.detections, [])
    assert tinted[112, 55].any() and not tinted[105, 45].any()


@pytest.mark.parametrize("question, kind, subject, obj, rtype, positive", [
    ("Is the red mug touching the blue book?", "yes_no", "red mug", "blue book", 1, True),
    ("is the mug far from the laptop", "yes_no", "mug", "laptop", 0, False),
    ("Does the mug touch the book?", "yes_no", "mug", "book", 1, True),
    ("What is near the laptop?", "list", "", "laptop", 0, True),
    ("what is the mug on?", "list", "mug", "", 2, True),
    ("How far is the mug from the book?", "distance", "mug", "book", 0, True),
    ("Are the purple bowl and the white mug in contact?", "yes_no", "purple bowl", "white mug", 1, True),
    ("Are the mug and the book near each other?", "yes_no", "mug", "book", 0, True),
    ("Is the mug sitting on top of the book?", "yes_no", "mug", "book", 2, True),
    ("Which object is closest to the laptop?", "closest", "", "laptop", 0, True),
    ("What supports the mug?", "list", "mug", "", 2, True),
])
def test_question_parser(question, kind, subject, obj, rtype, positive):
    p = parse_question(question)
    assert (p.kind, p.subject, p.object, p.type, p.positive) == (kind, subject, obj, rtype, positive)


def test_query_answers_from_scene_and_rejects_bad_questions():
    scene, frame = wall_scene()
    state = SceneState(frame, scene, cross_check(scene, frame, "geometry").relations, 5)
    yes = handle_query(state, "Is the red mug touching the blue book?")
    assert yes.success and yes.answer.startswith("Yes") and "gap" in yes.answer and yes.stamp_ns == 5
    no = handle_query(state, "is the mug near the laptop?")
    assert no.success and no.answer.startswith("No")
    far = handle_query(state, "is the mug far from the laptop?")
    assert far.success and far.answer.startswith("Yes")
    listed = handle_query(state, "what is near the mug?")
    assert listed.success and "blue book" in listed.answer and "laptop" not in listed.answer
    closest = handle_query(state, "which object is closest to the red mug?")
    assert closest.success and "blue book" in closest.answer
    dist = handle_query(state, "how far is the mug from the laptop?")
    assert dist.success and "cm" in dist.answer
    structured = handle_query(state, subject="book", obj="mug", rtype=int(RelationType.CONTACT))
    assert structured.success and structured.answer.startswith("Yes")
    for bad, why in [("", "empty"), ("?!?!", "understand"), ("x" * 1000, "too long"),
                     ("is the sofa near the mug?", "no 'sofa'"), ("tell me a story", "understand")]:
        out = handle_query(state, bad)
        assert not out.success and why in out.message
    assert "no frame" in handle_query(None, "is the mug near the book?").message
    empty = SceneState(frame, SceneResult([], [], ""), [], 1)
    assert "no objects" in handle_query(empty, "is the mug near the book?").message
    assert not handle_query(state, subject="mug", obj="book", rtype=7).success


def test_query_finds_a_look_alike_by_the_detectors_label_scores():
    """"The red cup" finds the object we named "red mug" when the detector thought it might be a cup;
    a category nothing is likely to be stays unknown."""
    scene, frame = wall_scene()
    scene.detections[0].label_scores = {"mug": 0.7, "cup": 0.3}
    scene.detections[2].label_scores = {"laptop": 0.9, "cup": 0.02}
    state = SceneState(frame, scene, cross_check(scene, frame, "geometry").relations, 5)
    assert [d.id for d in scene.find("the red cup")] == ["a"]
    out = handle_query(state, "Is the red cup touching the blue book?")
    assert out.success and out.answer.startswith("Yes") and "red mug" in out.answer
    assert scene.find("the green sofa") == []


def test_query_uses_language_head_for_unknown_pairs_and_free_text():
    scene, frame = wall_scene()
    state = SceneState(frame, scene, [], 5)
    asked = []

    def ask(q):
        asked.append(q)
        return Answer(q, "yes", 0.7)

    out = handle_query(state, "is the mug near the laptop?", ask_model=ask)
    assert out.success and out.source == "model" and asked == ["is the mug near the laptop?"]
    assert handle_query(state, "which colour is the mug", ask_model=ask).source == "model"
    silent = handle_query(state, "is the mug near the laptop?", ask_model=lambda q: Answer(q, "", 0.0))
    assert not silent.success and "no answer" in silent.message

    def broken(q):
        raise RuntimeError("cuda oom")

    failed = handle_query(state, "is the mug near the laptop?", ask_model=broken)
    assert not failed.success and "cuda oom" in failed.message


def test_query_asks_the_engine_to_look_again_for_an_object_not_published():
    """"The green can" is among no published detections: the engine looks again among the regions it did
    not keep, and the service answers only when that found every object the question names."""
    scene, frame = wall_scene()
    state = SceneState(frame, scene, cross_check(scene, frame, "geometry").relations, 5)
    asked = []

    def found(q):
        asked.append(q)
        return Answer(q, "yes", 0.8, second_look=["green can"])

    out = handle_query(state, "Is the green can near the red mug?", ask_model=found, second_look=True)
    assert out.success and out.source == "model" and out.answer == "yes"
    assert "second look" in out.message and "green can" in out.message
    assert asked == ["Is the green can near the red mug?"]
    # structured requests become the question they stand for
    assert handle_query(state, subject="green can", obj="red mug", rtype=int(RelationType.CONTACT),
                        ask_model=found, second_look=True).success
    assert asked[-1] == "is the green can touching the red mug?"
    assert handle_query(state, "which object is closest to the green can?", ask_model=found, second_look=True).success

    not_there = handle_query(state, "Is the green can near the red mug?",
                             ask_model=lambda q: Answer(q, "no", 0.6, unresolved=["green can"]), second_look=True)
    assert not not_there.success and "no 'green can'" in not_there.message
    nothing_new = handle_query(state, "Is the green can near the red mug?", ask_model=lambda q: Answer(q, "no", 0.6),
                               second_look=True)
    assert not nothing_new.success and "no 'green can'" in nothing_new.message
    before = len(asked)
    off = handle_query(state, "Is the green can near the red mug?", ask_model=found, second_look=False)
    assert not off.success and "no 'green can'" in off.message and len(asked) == before
    # a metric distance needs published geometry: no second look
    asked.clear()
    far = handle_query(state, "how far is the green can from the red mug?", ask_model=found, second_look=True)
    assert not far.success and "no 'green can'" in far.message and asked == []
