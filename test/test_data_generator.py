"""Invariants of the procedural generator: geometry, masks, boxes, labels, balance, determinism."""
from __future__ import annotations

import filecmp
import itertools
import math
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest

from spatial_vlm_ros.inference.geometry import DEFAULT_THRESHOLDS, backproject, surface_gap
from spatial_vlm_training.data.generator import GenerateConfig, build_scene, generate_split, scene_seed
from spatial_vlm_training.data.qa import PROXIMITY_YESNO
from spatial_vlm_training.data.sample import FLOOR, FORMAT_VERSION, load_split, split_fingerprint

SPLIT_ARGS = {"split": "test", "seed": 11, "n_scenes": 8, "views": 1, "width": 320, "height": 240}


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "test"
    generate_split(GenerateConfig(out, **SPLIT_ARGS))
    return out


@pytest.fixture(scope="module")
def split(split_dir):
    return load_split(split_dir)


def _mesh_points(obj, n=6000) -> np.ndarray:
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(obj.world_vertices),
                                     o3d.utility.Vector3iVector(obj.mesh.triangles))
    return np.asarray(mesh.sample_points_uniformly(n).points)


def test_meta_and_files(split, split_dir):
    assert split.meta.format == FORMAT_VERSION
    assert split.meta.n_frames == len(split.samples) == SPLIT_ARGS["n_scenes"]
    s = split.samples[0]
    assert s.load_rgb().shape == (240, 320, 3) and s.load_rgb().dtype == np.uint8
    depth = s.load_depth()
    gt_depth, instance = s.load_gt()
    assert depth.shape == gt_depth.shape == instance.shape == (240, 320)
    assert np.isnan(depth).any(), "the sensor model must leave holes"
    ids = {x.id for x in split.samples}
    assert len(ids) == len(split.samples)


def test_sensor_depth_is_noisy_but_close(split):
    for s in split.samples:
        depth, (gt, _) = s.load_depth(), s.load_gt()
        ok = np.isfinite(depth) & np.isfinite(gt)
        err = np.abs(depth[ok] - gt[ok])
        sigma = 0.002 + 0.0025 * gt[ok] ** 2
        assert err.max() > 0
        assert np.mean(err < 4 * sigma + 0.001) > 0.995


def test_masks_agree_with_boxes_and_instances(split):
    for s in split.samples:
        _, instance = s.load_gt()
        assert instance.max() == len(s.objects)
        for k, o in enumerate(s.objects, 1):
            assert o.instance == k
            ys, xs = np.nonzero(instance == k)
            assert len(xs) == o.visible_px
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(int(v) for v in o.box2d)


def test_gt_depth_points_lie_in_their_3d_boxes(split):
    """Back-projected ground-truth depth under each mask sits in its 3D box: intrinsics, pose, depth and
    boxes share one convention."""
    for s in split.samples:
        gt, instance = s.load_gt()
        pts = backproject(gt, s.intrinsics)
        for o in s.objects:
            p = pts[instance == o.instance]
            p = p[np.isfinite(p).all(axis=1)]
            local = (p - o.box3d.center) @ np.asarray(o.box3d.rotation)
            assert (np.abs(local) <= np.asarray(o.box3d.size) / 2 + 0.003).all(), (s.id, o.id)


def test_3d_boxes_contain_their_meshes(split):
    for s in split.samples[:4]:
        layout, _, _, _ = build_scene(SPLIT_ARGS["split"], SPLIT_ARGS["seed"], s.scene)
        world_from_cam = s.camera_pose
        for o in s.objects:
            verts = layout.by_id(o.id).world_vertices
            cam = (verts - world_from_cam[:3, 3]) @ world_from_cam[:3, :3]
            local = (cam - o.box3d.center) @ np.asarray(o.box3d.rotation)
            assert (np.abs(local) <= np.asarray(o.box3d.size) / 2 + 1e-3).all()


def test_gaps_match_an_independent_measurement(split):
    """Touching pairs are within 1 cm and far pairs beyond 0.5 m by a separate dense point-to-point check."""
    checked = {"touching": 0, "far": 0}
    for s in split.samples[:5]:
        layout, _, _, _ = build_scene(SPLIT_ARGS["split"], SPLIT_ARGS["seed"], s.scene)
        pts = {o.id: _mesh_points(layout.by_id(o.id)) for o in s.objects}
        for r in s.relations:
            if r.subject > r.object:
                continue
            if r.touching:
                # Point sets only overestimate a gap (by about their spacing).
                assert surface_gap(pts[r.subject], pts[r.object], max_points=6000) <= DEFAULT_THRESHOLDS.contact_m + 0.012
                checked["touching"] += 1
            if r.near is False:
                assert surface_gap(pts[r.subject], pts[r.object], max_points=6000) >= DEFAULT_THRESHOLDS.far_m
                checked["far"] += 1
    assert checked["touching"] > 0 and checked["far"] > 0


def test_labels_follow_the_thresholds(split):
    t = DEFAULT_THRESHOLDS
    for s in split.samples:
        for r in s.relations:
            assert r.touching is (True if r.gap_m <= t.contact_m else False if r.gap_m >= t.no_contact_m else None)
            assert r.near is (True if r.gap_m <= t.near_m else False if r.gap_m >= t.far_m else None)
            if r.on:
                assert r.touching and not s.relation(r.object, r.subject).on
        for o in s.objects:
            if o.resting_on != FLOOR and o.resting_on in {x.id for x in s.objects}:
                assert s.relation(o.id, o.resting_on).on


def test_every_frame_has_designed_relation_kinds(split):
    kinds = {"touching": 0, "near": 0, "far": 0, "on": 0}
    for s in split.samples:
        for r in s.relations:
            kinds["touching"] += bool(r.touching)
            kinds["near"] += r.near is True and r.touching is False
            kinds["far"] += r.near is False
            kinds["on"] += r.on
    assert all(v > 0 for v in kinds.values()), kinds


def test_answers_agree_with_geometry(split):
    negated = {t.split("{a}")[1].split("{b}")[0] for t, flips in PROXIMITY_YESNO if flips}
    n = 0
    for s in split.samples:
        desc = {o.id: o.description for o in s.objects}
        for q in s.qa:
            assert desc[q.subject] in q.question
            if q.kind == "yesno":
                r = s.relation(q.subject, q.object)
                assert desc[q.object] in q.question
                if q.type == "proximity":
                    truth = r.near if not any(p in q.question for p in negated) else not r.near
                elif q.type == "contact":
                    truth = r.touching
                else:
                    truth = r.on
                assert r.near is not None if q.type == "proximity" else r.touching is not None
                assert q.answer == ("yes" if truth else "no"), q
            elif q.type == "support":
                o = s.object_by_id(q.subject)
                assert q.answer == ("the floor" if o.resting_on == FLOOR else f"the {desc[o.resting_on]}")
            else:
                gaps = sorted((r.gap_m, r.object) for r in s.relations if r.subject == q.subject)
                assert q.answer == f"the {desc[gaps[0][1]]}"
                assert gaps[1][0] - gaps[0][0] >= 0.05
            n += 1
    assert n > 20


def test_yes_no_balance_per_type(split):
    for qtype in ("proximity", "contact", "support"):
        answers = [q.answer for s in split.samples for q in s.qa if q.type == qtype and q.kind == "yesno"]
        assert len(answers) >= 6, qtype
        assert 0.35 <= answers.count("yes") / len(answers) <= 0.65, qtype


def test_referring_expressions_unique(split):
    for s in split.samples:
        descs = [o.description for o in s.objects]
        assert len(descs) == len(set(descs))


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, split_dir):
    args = dict(SPLIT_ARGS, n_scenes=3)
    generate_split(GenerateConfig(tmp_path / "a", **args))
    generate_split(GenerateConfig(tmp_path / "b", **args, workers=2))
    for name in ("samples.jsonl", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    files = sorted(p.name for p in (tmp_path / "a" / "frames").iterdir())
    assert files and filecmp.cmpfiles(tmp_path / "a" / "frames", tmp_path / "b" / "frames", files, shallow=False)[0] == files
    # ...and the first scenes of the bigger split are the same bytes too.
    assert (tmp_path / "a" / "frames" / files[0]).read_bytes() == (split_dir / "frames" / files[0]).read_bytes()
    # The fingerprint results files carry: equal for the same frames, different for other frames or counts.
    assert split_fingerprint(tmp_path / "a") == split_fingerprint(tmp_path / "b") == split_fingerprint(split_dir, 3)
    assert split_fingerprint(split_dir, 2) != split_fingerprint(split_dir, 3)


def test_splits_never_share_scene_seeds():
    names = ("train", "val", "test", "select")  # select: the split for choosing settings (select_trials.json)
    seeds = {split: {scene_seed(split, 0, i) for i in range(2000)} for split in names}
    for a, b in itertools.combinations(names, 2):
        assert not seeds[a] & seeds[b], (a, b)
    assert math.isclose(len(seeds["train"]), 2000)
    assert {scene_seed(split, 7, 0) & 3 for split in names} == {0, 1, 2, 3}  # the low bits name the split
