"""ScanNet 2D-frames loader on a fixture written in that exact layout (rendered from a known layout)."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from spatial_vlm_training.data.camera import framing_distance, orbit_pose, sample_intrinsics
from spatial_vlm_training.data.generator import _scene_view_target, build_scene
from spatial_vlm_training.data.meshes import FURNITURE_CATEGORIES, OBJECT_CATEGORIES
from spatial_vlm_training.data.renderer import LayoutRenderer
from spatial_vlm_training.data.sample import load_split
from spatial_vlm_training.data.scannet import ScanNetScene, convert_scannet
from spatial_vlm_training.eval.harness import evaluate
from spatial_vlm_training.eval.oracle import OracleEngine

LABEL_IDS = {name: 100 + i for i, name in enumerate(OBJECT_CATEGORIES + FURNITURE_CATEGORIES)}
LABEL_IDS["floor"] = 2


def _matrix_txt(path, m):
    np.savetxt(path, m, fmt="%.6f")


def write_fixture(root, n_frames=3, seed=4):
    """One ScanNet-style scene: colour at 2x the depth resolution (as in ScanNet), 4x4 text matrices,
    instance ids and label ids whose names come from a scannetv2-labels.combined.tsv."""
    scene = root / "scene0000_00"
    for sub in ("color", "depth", "pose", "intrinsic", "instance-filt", "label-filt"):
        (scene / sub).mkdir(parents=True)
    with (root / "scannetv2-labels.combined.tsv").open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["id", "raw_category", "category", "count", "nyu40id", "nyu40class"])
        for name, i in LABEL_IDS.items():
            w.writerow([i, name, "cup" if name == "mug" else name, 1, 40, "otherprop"])
    for index in range(40):  # a layout with furniture and at least three objects
        layout, truth, render_rng, _ = build_scene("test", seed, index)
        if len(layout.objects) >= 4 and layout.objects[0].is_furniture and layout.objects[0].category != "shelf":
            break
    renderer = LayoutRenderer(layout, render_rng)
    k = sample_intrinsics(render_rng, 320, 240)
    center, radius = _scene_view_target(layout)
    K4 = np.eye(4)
    K4[:3, :3] = k.matrix
    _matrix_txt(scene / "intrinsic" / "intrinsic_depth.txt", K4)
    K4c = K4.copy()
    K4c[:2, :3] *= 2
    _matrix_txt(scene / "intrinsic" / "intrinsic_color.txt", K4c)
    poses = []
    for i in range(n_frames):
        pose = orbit_pose(center, framing_distance(radius, k) * 1.1, 0.4 * i, np.deg2rad(40))
        r = renderer.render(k, pose, render_rng)
        rgb2 = cv2.resize(r.rgb, (640, 480), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(scene / "color" / f"{i}.jpg"), cv2.cvtColor(rgb2, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(scene / "depth" / f"{i}.png"), r.sensor_depth_mm)
        inst = np.where(r.geometry > 0, r.geometry, 0).astype(np.uint16)
        labels = np.zeros_like(inst)
        labels[r.geometry == 0] = LABEL_IDS["floor"]
        for kk, obj in enumerate(layout.objects):
            labels[r.geometry == kk + 1] = LABEL_IDS[obj.category]
        big = (640, 480)
        cv2.imwrite(str(scene / "instance-filt" / f"{i}.png"), cv2.resize(inst, big, interpolation=cv2.INTER_NEAREST))
        cv2.imwrite(str(scene / "label-filt" / f"{i}.png"), cv2.resize(labels, big, interpolation=cv2.INTER_NEAREST))
        _matrix_txt(scene / "pose" / f"{i}.txt", pose)
        poses.append(pose)
    return scene, layout, truth, poses


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("scannet")
    scene, layout, truth, poses = write_fixture(root)
    out = root / "converted"
    n = convert_scannet([scene], out, seed=1)
    return scene, layout, truth, poses, out, n


def test_reads_the_layout_and_maps_labels(fixture):
    scene, layout, _, poses, out, n = fixture
    s = ScanNetScene(scene)
    assert s.frames == ["0", "1", "2"] and s.labels[LABEL_IDS["mug"]] == "cup"
    split = load_split(out)
    assert n == len(split.samples) >= 2
    assert set(split.meta.categories) == {o.category for smp in split.samples for o in smp.objects}
    for smp, pose in zip(split.samples, poses, strict=False):
        assert smp.load_rgb().shape == (240, 320, 3)  # colour brought to the depth resolution
        assert np.allclose(smp.up, pose[:3, :3].T @ [0, 0, 1], atol=1e-4)
        cats = {o.category for o in smp.objects}
        assert cats <= {o.category for o in layout.objects}


def test_boxes_and_relations_match_the_known_layout(fixture):
    _, layout, truth, poses, out, _ = fixture
    agree_far, agree_touch, touching_pairs = 0, 0, 0
    for smp, pose in zip(load_split(out).samples, poses, strict=False):
        _, instance = smp.load_gt()
        for o in smp.objects:
            placed = layout.objects[int(o.id[3:]) - 1]
            lo, hi = placed.mesh.lower, placed.mesh.upper
            true_center = (placed.rotation @ ((lo + hi) / 2) + placed.position - pose[:3, 3]) @ pose[:3, :3]
            assert np.linalg.norm(o.box3d.center - true_center) <= 0.5 * np.linalg.norm(hi - lo) + 0.03
            assert (instance == o.instance).sum() == o.visible_px
        for r in smp.relations:
            a, b = (layout.objects[int(x[3:]) - 1].id for x in (r.subject, r.object))
            if truth.gap(a, b) >= 0.6:
                agree_far += r.near is False
                assert r.near is not True
            if truth.labels(a, b)["on"]:
                touching_pairs += 1
                agree_touch += r.gap_m <= 0.03
    assert agree_far > 0
    if touching_pairs:
        assert agree_touch / touching_pairs >= 0.6


def test_qa_and_oracle_through_the_harness(fixture):
    *_, out, _ = fixture
    split = load_split(out)
    assert sum(len(s.qa) for s in split.samples) > 0
    m = evaluate(OracleEngine(out), out, "oracle", progress=False).metrics
    for key in ("proximity_accuracy", "contact_accuracy", "description_f1", "detection_map50"):
        assert m[key] is None or m[key] >= 0.97, key


def test_missing_folder_is_a_clear_error(tmp_path):
    (tmp_path / "color").mkdir()
    with pytest.raises(FileNotFoundError, match="depth"):
        ScanNetScene(tmp_path)
