"""The region pathway of the student's detection: class-agnostic proposals, region inputs, training
(from ground truth and distilled from a teacher) and the committed student detecting end to end."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from conftest import load_script

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.object_features import WORK_SIZE, gravity_basis, object_points, working_views
from spatial_vlm_ros.inference.region_inputs import region_inputs
from spatial_vlm_ros.inference.region_proposals import box_iou, mask_at_size, mask_box, region_proposals
from spatial_vlm_ros.inference.types import RelationType
from spatial_vlm_ros.model.build import new_model, save_model, tokenizer_for
from spatial_vlm_ros.model.configuration_spatial_vlm import (
    DEFAULT_CATEGORIES,
    DEFAULT_COLORS,
    REGION_CHANNELS,
    REGION_SCALAR_DIM,
)
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples
from spatial_vlm_training.distill.region_data import load_region_examples
from spatial_vlm_training.distill.region_train import predict, region_metrics, train_region_head, with_region_head

TINY = dict(image_height=48, image_width=64, encoder_dim=32, encoder_depth=2, encoder_heads=2, dpt_dim=8,
            detection_dim=8, lm_hidden_size=32, lm_layers=1, lm_heads=2, lm_intermediate_size=64, hidden_cot_k=2,
            use_roi_features=False)


@pytest.fixture(scope="module")
def splits(generated_split):
    return {"train": generated_split("train", 5151, 8), "val": generated_split("val", 6262, 3)}


def _gt_recall(split) -> float:
    hit = total = 0
    for s in iter_samples(split):
        f = frame_from_sample(s)
        w, h = f.size
        rgb_small, points_small = working_views(f.rgb, f.depth, f.intrinsics)
        props = region_proposals(rgb_small, points_small, f.intrinsics.scaled(*WORK_SIZE), f.up)
        assert all(p.mask.shape == (WORK_SIZE[1], WORK_SIZE[0]) and p.mask.any() for p in props)
        boxes = np.stack([p.box for p in props]) if props else np.zeros((0, 4))
        for o in s.objects:
            total += 1
            gt = np.asarray(o.box2d, float) / [w, h, w, h]
            hit += bool(len(boxes)) and box_iou(gt[None], boxes).max() >= 0.5
    return hit / total


def test_proposals_cover_most_objects(splits):
    # Measured on the 200-frame val split of results/: 87 % at IoU 0.5.
    assert _gt_recall(splits["val"]) >= 0.6


def test_a_plate_lying_on_the_floor_is_proposed_by_its_colour():
    """Flush with the floor within depth noise, it is found only by colour (region_proposals._on_floor_masks)."""
    from spatial_vlm_ros.inference.geometry import PlaneFit, ScenePlanes
    from spatial_vlm_ros.inference.region_proposals import ProposalConfig, _colour_steps, _on_floor_masks

    h, w = 60, 80
    xs, zs = np.meshgrid(np.linspace(-1, 1, w), np.linspace(1, 3, h))
    points = np.stack([xs, np.full_like(xs, 1.0), zs], -1)  # the floor: y = 1 m below the camera
    points[20:30, 30:45, 1] -= 0.008  # the plate, 8 mm proud of the floor
    rgb = np.full((h, w, 3), 120.0, np.float32)
    rgb[20:30, 30:45] = (200, 40, 40)
    color = rgb + 1.0
    total = color.sum(-1, keepdims=True)
    scene = ScenePlanes(PlaneFit(np.array([0.0, -1.0, 0.0]), 1.0, 0.9), [])

    def steps(chroma, intensity):
        return [((dy, dx), None, *_colour_steps(chroma, intensity, dy, dx)) for dy, dx in ((0, 1), (1, 0))]

    chroma, intensity = color / total, np.log(total[..., 0])
    masks = _on_floor_masks(scene, points, chroma, intensity, steps(chroma, intensity), ProposalConfig())
    assert len(masks) == 1 and masks[0].sum() == 150 and masks[0][20:30, 30:45].all()
    same = np.full((h, w, 3), 121.0, np.float32)  # nothing unlike the floor: nothing proposed
    flat_c, flat_i = same / same.sum(-1, keepdims=True), np.log(same.sum(-1))
    assert _on_floor_masks(scene, points, flat_c, flat_i, steps(flat_c, flat_i), ProposalConfig()) == []
    for scene_, cfg in ((ScenePlanes(None, []), ProposalConfig()), (scene, ProposalConfig(floor_band_m=0.0))):
        assert _on_floor_masks(scene_, points, chroma, intensity, steps(chroma, intensity), cfg) == []


def test_a_noisy_table_top_is_one_surface_and_a_plate_on_it_stays_out():
    """Range noise of 5 mm sigma (a top at 1.1 m) against a 6 mm plane band: tested pixel by pixel a
    quarter of the top is lost in specks; a vote over 5x5 pixels (support_median_px) keeps it whole and
    the plate, 2 cm proud of it, out (region_proposals.support_mask)."""
    from spatial_vlm_ros.inference.geometry import PlaneFit, ScenePlanes
    from spatial_vlm_ros.inference.region_proposals import ProposalConfig, support_mask

    h, w = 60, 80
    rng = np.random.default_rng(0)
    xs, zs = np.meshgrid(np.linspace(-0.6, 0.6, w), np.linspace(0.8, 1.4, h))
    points = np.stack([xs, np.full_like(xs, 0.5), zs], -1)  # the top: y = 0.5 m below the camera (y down)
    points[25:40, 30:50, 1] -= 0.02  # the plate
    points[..., 1] += rng.normal(0.0, 0.005, (h, w))
    points[5, 5] = np.nan  # no depth: not part of the top, and no harm to its neighbours
    top = PlaneFit(np.array([0.0, -1.0, 0.0]), 0.5, 0.9)  # n.p + d = 0 on the top; up is -y
    up = np.array([0.0, -1.0, 0.0])
    plate = np.zeros((h, w), bool)
    plate[25:40, 30:50] = True
    inner = np.zeros((h, w), bool)
    inner[3:-3, 3:-3] = True  # the median window reaches past the border by 2 px

    def mask(cfg):
        return support_mask(points, [top], ScenePlanes(None, []), up, cfg)

    smooth, specks = mask(ProposalConfig()), mask(ProposalConfig(support_median_px=0))
    assert smooth[inner & ~plate & ~np.isnan(points[..., 1])].mean() > 0.97
    assert smooth[plate].mean() < 0.03
    assert specks[inner & ~plate].mean() < 0.85  # what the vote is for
    with pytest.raises(ValueError, match="support_median_px"):
        ProposalConfig(support_median_px=7)


@pytest.mark.parametrize("w, h", [(640, 480), (960, 720), (1920, 1440), (800, 600)])
def test_a_mask_at_another_size_is_nearest_neighbour_inside_its_box(w, h):
    """What a detection carries: its working-resolution mask at the frame's size, read only inside its box.
    At whole-number scales it is OpenCV's nearest-neighbour resize pixel for pixel."""
    rng = np.random.default_rng(3)
    mask = np.zeros((240, 320), bool)
    mask[40:90, 100:180] = rng.random((50, 80)) > 0.3
    fx0, fy0, fx1, fy1 = mask_box(mask)
    big = mask_at_size(mask, w, h, (fx0 * w, fy0 * h, fx1 * w, fy1 * h))
    assert big.shape == (h, w) and big.dtype == bool
    if w % 320 == 0 and h % 240 == 0:
        assert np.array_equal(big, cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0)
    else:
        assert abs(int(big.sum()) - mask.sum() * (w / 320) * (h / 240)) < 0.05 * big.sum()
    assert mask_at_size(mask, 320, 240, (0, 0, 320, 240)) is mask


def test_region_inputs_shapes_and_mask_channel(splits):
    s = next(iter(iter_samples(splits["val"])))
    f = frame_from_sample(s)
    rgb_small, points_small = working_views(f.rgb, f.depth, f.intrinsics)
    props = region_proposals(rgb_small, points_small, f.intrinsics.scaled(*WORK_SIZE), f.up)
    basis = gravity_basis(f.up)
    objs = [object_points(rgb_small, points_small, p.mask, basis) for p in props]
    crops, scalars = region_inputs(rgb_small, points_small, [p.mask for p in props], objs, 24)
    assert crops.shape == (len(props), REGION_CHANNELS, 24, 24) and scalars.shape == (len(props), REGION_SCALAR_DIM)
    assert np.isfinite(crops).all() and np.isfinite(scalars).all()
    assert (crops[:, 3].reshape(len(props), -1).max(1) > 0.5).all()  # the region itself is in its crop


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    tok = tokenizer_for([], DEFAULT_CATEGORIES, DEFAULT_COLORS)
    return save_model(new_model(tok, **TINY), tok, tmp_path_factory.mktemp("region_base"))


def test_region_head_learns_and_distils(splits, base_model, tmp_path):
    train = load_region_examples(splits["train"], 16)
    val = load_region_examples(splits["val"], 16)
    assert train.labels.min() == 0 and train.labels.max() > 0  # background and objects

    teacher, tok, fresh = with_region_head(base_model, widths=[16, 32], hidden=64, crop=16)
    assert fresh and teacher.region_head is not None
    before = region_metrics(predict(teacher, train), train.labels)["loss"]
    summary = train_region_head(teacher, train, train, epochs=20, batch_size=32, lr=5e-3, progress=False)
    after = region_metrics(predict(teacher, train), train.labels)
    assert after["loss"] < before and after["accuracy"] > (train.labels == 0).mean()
    assert summary["steps"] > 0 and not summary["distilled"]

    student, _, _ = with_region_head(base_model, widths=[8, 16], hidden=32, crop=16)
    frozen = {k: v.clone() for k, v in student.state_dict().items() if not k.startswith("region_head.")}
    t_logits = predict(teacher, train)
    s = train_region_head(student, train, val, teacher_logits=t_logits, epochs=10, batch_size=32, progress=False)
    assert s["distilled"]
    # Only the region head trains; the rest of the saved student is untouched.
    for k, v in student.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
    agree = (predict(student, train).argmax(1) == t_logits.argmax(1)).mean()
    assert agree > 0.5

    out = save_model(student, tok, tmp_path / "student")
    engine = load_engine(out, score_threshold=0.0, max_objects=5)
    assert engine.model.region_head is not None and engine.config.region_crop_size == 16
    f = frame_from_sample(next(iter(iter_samples(splits["val"]))))
    scene = engine.infer(f)
    assert 0 < len(scene.detections) <= 5  # threshold 0: every kept proposal is named
    for d in scene.detections:
        assert d.label in DEFAULT_CATEGORIES and d.box3d is not None


def test_train_regions_cli_one_line_errors(splits, base_model, tmp_path, capsys):
    from spatial_vlm_ros.cli import main

    rc = main(["train-regions", "--model", str(base_model), "--data", str(splits["train"]), "--val",
               str(splits["val"]), "--out", str(tmp_path / "o"), "--teacher", str(base_model), "--epochs", "1"])
    assert rc != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("spatial-vlm")]
    assert len(err) == 1 and "no region head" in err[0] and str(base_model) in err[0]


def test_train_regions_continues_or_replaces_a_head_and_keeps_records(splits, base_model, tmp_path, capsys):
    """A head the model has is continued: a different shape asked for is a one-line error unless
    --new-head replaces it. The base model's records (its piece and shade heads' summaries) travel on."""
    from spatial_vlm_ros.cli import main

    common = ["--data", str(splits["train"]), "--val", str(splits["val"]), "--epochs", "1"]
    first = tmp_path / "first"
    assert main(["train-regions", "--model", str(base_model), "--out", str(first), "--widths", "8", "16",
                 "--hidden", "16", "--crop", "16", *common]) == 0
    (first / "shade_summary.json").write_text('{"kept": true}\n')
    capsys.readouterr()

    assert main(["train-regions", "--model", str(first), "--out", str(tmp_path / "x"), "--crop", "8", *common]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("spatial-vlm")]
    assert len(err) == 1 and "--new-head" in err[0] and "crop 16" in err[0]

    continued = tmp_path / "continued"
    assert main(["train-regions", "--model", str(first), "--out", str(continued), "--crop", "16", *common]) == 0
    assert not json.loads((continued / "region_summary.json").read_text())["new_head"]
    assert (continued / "shade_summary.json").read_text() == '{"kept": true}\n'

    replaced = tmp_path / "replaced"
    assert main(["train-regions", "--model", str(first), "--out", str(replaced), "--new-head", "--widths", "8",
                 "--hidden", "8", "--crop", "8", *common]) == 0
    assert json.loads((replaced / "region_summary.json").read_text())["new_head"]
    assert load_engine(replaced).config.region_crop_size == 8


def test_committed_student_detects_end_to_end(student_dir, repo_root):
    """The embedded student's region head finds the objects of freshly generated frames (not a training
    seed), and results/reproduction.json says what it measured on the held-out test split."""
    engine = load_engine(student_dir)
    assert engine.model.region_head is not None
    summary = json.loads((student_dir / "region_summary.json").read_text())
    assert summary["distilled"] and summary["best_val"]["object_accuracy"] > 0.8
    rep = json.loads((repo_root / "results" / "reproduction.json").read_text())
    assert rep["models"]["student"]["detection_map50"] >= 0.5


def test_engine_proposal_config_takes_effect(student_dir, splits, monkeypatch):
    """`engine.proposal_config` is what the engine proposes with: one proposal allowed -> at most one
    detection; the plane seed reaches the RANSAC fit."""
    import dataclasses

    from spatial_vlm_ros.inference import region_proposals as rp

    engine = load_engine(student_dir)
    frame = frame_from_sample(next(iter(iter_samples(splits["val"]))))
    assert len(engine.infer(frame).detections) >= 2
    engine.proposal_config = dataclasses.replace(engine.proposal_config, max_proposals=1)
    assert len(engine.infer(frame).detections) <= 1
    seeds = []
    real_fit = rp.fit_dominant_planes
    monkeypatch.setattr(rp, "fit_dominant_planes", lambda points, seed=0: seeds.append(seed) or real_fit(points, seed=seed))
    engine.proposal_config = dataclasses.replace(engine.proposal_config, plane_seed=7)
    engine.infer(frame)
    assert seeds == [7]


def test_proposals_beyond_the_trained_depth_are_not_scored(student_dir, splits, base_model, tmp_path):
    """train-regions records how deep its training objects stood (10 % beyond the deepest centre,
    config.max_trained_depth_m); the engine scores no proposal deeper than its limit: the checkpoint's
    by default, none at all at 1 mm, any at 0 (no limit)."""
    from spatial_vlm_ros.cli import main
    from spatial_vlm_training.distill.region_data import DEPTH_MARGIN, max_trained_depth_m

    deepest = max(float(o.box3d.center[2]) for s in iter_samples(splits["train"]) for o in s.objects)
    assert max_trained_depth_m(splits["train"]) == pytest.approx(DEPTH_MARGIN * deepest, abs=1e-3)
    out = tmp_path / "rh"
    assert main(["train-regions", "--model", str(base_model), "--data", str(splits["train"]), "--val",
                 str(splits["val"]), "--out", str(out), "--widths", "8", "16", "--hidden", "16", "--crop", "16",
                 "--epochs", "1"]) == 0
    recorded = json.loads((out / "config.json").read_text())["max_trained_depth_m"]
    assert recorded == pytest.approx(DEPTH_MARGIN * deepest, abs=1e-3)
    assert json.loads((out / "region_summary.json").read_text())["max_trained_depth_m"] == recorded
    # models trained before train-regions recorded it get it from their training split by a script
    record = load_script("record_trained_depth").main
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "max_trained_depth_m": None}))
    assert record(["--data", str(splits["train"]), str(out)]) == 0
    assert load_engine(out).max_depth_m == pytest.approx(recorded)
    assert record(["--data", str(splits["train"]), str(base_model)]) == 1  # no region head: one-line error

    engine = load_engine(student_dir)
    assert engine.max_depth_m == engine.config.max_trained_depth_m > 3.0
    assert load_engine(student_dir, max_depth_m=0).max_depth_m == math.inf
    assert load_engine(student_dir, max_depth_m=2.5).max_depth_m == 2.5
    frame = frame_from_sample(next(iter(iter_samples(splits["val"]))))
    kept = engine.infer(frame).detections
    assert len(kept) >= 2  # a generated frame's objects all stand within the trained depth
    engine.max_depth_m = math.inf
    assert [d.description for d in engine.infer(frame).detections] == [d.description for d in kept]
    engine.max_depth_m = 1e-3
    assert engine.infer(frame).detections == []


def _p_yes(relation) -> float:
    """P(yes) of the relation's pair question, back from its published predicate and confidence."""
    if relation.predicate == "far":
        return 1.0 - relation.confidence
    return relation.confidence if relation.holds else 1.0 - relation.confidence


def test_superlatives_rank_by_the_model_judgements(student_dir, splits):
    """"Which object is closest to X?" names the object the model itself judges most in contact with and
    near X (and "farthest" the least), by the pair judgements as the LM made them: the published ones are
    made to agree within each pair (pair_consistency) and saturate into ties."""
    engine = load_engine(student_dir)
    asked = 0
    for s in iter_samples(splits["val"]):
        f = frame_from_sample(s)
        scene = engine.infer(f)
        dets = scene.detections
        if len(dets) < 3:
            continue
        x = dets[0]
        judged = engine._cache[id(scene)][1].pair_yes
        closeness = {d.description: judged[(RelationType.CONTACT, 0, j)] + judged[(RelationType.PROXIMITY, 0, j)]
                     for j, d in enumerate(dets) if j > 0}
        published = {r.object if r.subject_id == x.id else r.subject for r in scene.relations
                     if r.type.name in ("PROXIMITY", "CONTACT") and x.id in (r.subject_id, r.object_id)}
        assert set(closeness) == published and len(closeness) == len(dets) - 1
        closest = engine.answer(f, scene, f"What is the nearest object to the {x.description}?")
        farthest = engine.answer(f, scene, f"which object is farthest from the {x.description}")
        assert closest.text == f"the {max(closeness, key=closeness.get)}"
        assert farthest.text == f"the {min(closeness, key=closeness.get)}"
        assert 0.0 <= closest.confidence <= 1.0
        unknown = engine.answer(f, scene, "Which object is closest to the purple elephant?")  # the LM's closed set
        assert unknown.text in {"yes", "no", "the floor", *(f"the {d.description}" for d in dets)}
        asked += 1
    assert asked >= 1


def test_support_answers_agree_with_the_published_relations(student_dir, splits):
    """"What is X resting on?" names the object the model itself judges X most likely on, or the floor
    when it judges X on nothing, so the answer never contradicts the support relations the node publishes."""
    engine = load_engine(student_dir)
    asked = 0
    for s in iter_samples(splits["val"]):
        f = frame_from_sample(s)
        scene = engine.infer(f)
        if len(scene.detections) < 2:
            continue
        for x in scene.detections:
            on = {r.object: _p_yes(r) for r in scene.relations if r.type.name == "SUPPORT" and r.subject_id == x.id}
            assert len(on) == len(scene.detections) - 1
            answer = engine.answer(f, scene, f"What is the {x.description} resting on?")
            best = max(on, key=on.get)
            assert answer.text == (f"the {best}" if on[best] >= 0.5 else "the floor")
            assert 0.5 <= answer.confidence <= 1.0
            asked += 1
    assert asked >= 2
