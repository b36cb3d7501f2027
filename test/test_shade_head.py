"""The shade head: among white, gray and black, the engine re-decides an object's colour from how bright
its best-lit pixels are. Its inputs, how its answer is applied, training on a model's own detections,
the engine, and the committed models."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.object_features import scene_features
from spatial_vlm_ros.inference.shade_inputs import BRIGHTNESS_PERCENTILES, reshade, shade_features, shade_indices
from spatial_vlm_ros.model.build import save_model
from spatial_vlm_ros.model.configuration_spatial_vlm import DEFAULT_COLORS, SHADE_BRIGHTNESS_DIM, SpatialVLMConfig
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples
from spatial_vlm_training.distill.shade_data import collect_shades
from spatial_vlm_training.distill.shade_train import fit_shade_head, shade_accuracy, with_shade_head

SHADES = shade_indices(DEFAULT_COLORS, ["white", "gray", "black"])


def _probs(colour: str) -> np.ndarray:
    p = np.full(len(DEFAULT_COLORS), 0.02, np.float32)
    p[DEFAULT_COLORS.index(colour)] = 0.6
    p[DEFAULT_COLORS.index("gray")] += 0.1
    return p / p.sum()


def test_shade_features_describe_only_shade_objects():
    assert len(BRIGHTNESS_PERCENTILES) == SHADE_BRIGHTNESS_DIM
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[:20, :20] = 230  # a bright white object
    rgb[:20, 20:40] = (200, 30, 35)  # a red one
    masks = [np.zeros((240, 320), bool) for _ in range(4)]
    masks[0][:20, :20] = masks[1][:20, 20:40] = masks[3][:20, :20] = True
    masks[2][0, 0] = True  # one pixel: too few to judge
    probs = np.stack([_probs("white"), _probs("red"), _probs("white"), _probs("black")])
    x, rows = shade_features(probs, rgb, masks, SHADES)
    assert rows.tolist() == [0, 3] and x.shape == (2, 3 + SHADE_BRIGHTNESS_DIM) and x.dtype == np.float32
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x[0, :3], np.log(probs[0, SHADES]), rtol=1e-6)
    np.testing.assert_allclose(x[0, 3:], np.log(230 / 255), rtol=1e-5)  # every percentile of a flat patch
    empty, none = shade_features(probs[:0], rgb, [], SHADES)
    assert empty.shape == (0, 3 + SHADE_BRIGHTNESS_DIM) and len(none) == 0


def test_reshade_shares_out_the_shade_probability_and_leaves_the_rest():
    probs = np.stack([_probs("white"), _probs("red"), _probs("gray")])
    out = reshade(probs, np.array([0]), np.array([[-5.0, -5.0, 5.0]]), SHADES)  # row 0: black
    assert DEFAULT_COLORS[int(out[0].argmax())] == "black"
    assert out[0, SHADES].sum() == pytest.approx(probs[0, SHADES].sum())
    others = np.setdiff1d(np.arange(len(DEFAULT_COLORS)), SHADES)
    np.testing.assert_array_equal(out[0, others], probs[0, others])
    np.testing.assert_array_equal(out[1:], probs[1:])  # rows the head did not judge
    assert out.dtype == probs.dtype


def test_config_rejects_shades_that_are_not_colours():
    with pytest.raises(ValueError, match="shade_colors"):
        SpatialVLMConfig(use_shade_head=True, shade_colors=["white", "silver"])
    SpatialVLMConfig(use_shade_head=False, shade_colors=["white", "silver"])  # unused: not checked


@pytest.fixture(scope="module")
def shade_split(generated_split):
    return generated_split("train", 7373, 10)


def test_shade_head_learns_from_a_models_own_detections(student_dir, shade_split, tmp_path):
    train = collect_shades(student_dir, shade_split)
    known = train.label >= 0
    assert known.sum() > 10 and len(np.unique(train.label[known])) >= 2
    assert train.features.shape[1] == 3 + SHADE_BRIGHTNESS_DIM
    model, tok = with_shade_head(student_dir)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("shade_head.")}
    summary = fit_shade_head(model, train, l2=1e-3)
    assert summary["last_loss"] < summary["first_loss"]
    for k, v in model.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
    acc = shade_accuracy(model, train)
    assert acc["detections"] == known.sum() and acc["head_right"] >= acc["lm_right"]
    # The standardisation is part of the saved weights.
    out = save_model(model, tok, tmp_path / "with_head")
    loaded = load_engine(out).model.shade_head
    assert torch.equal(loaded.input_mean, model.shade_head.input_mean)
    assert torch.equal(loaded.linear.weight, model.shade_head.linear.weight)


def test_engine_reshades_only_objects_named_by_a_shade(student_dir, shade_split, tmp_path):
    model, tok = with_shade_head(student_dir)
    with torch.no_grad():
        model.shade_head.linear.weight.zero_()
        model.shade_head.linear.bias.copy_(torch.tensor([-10.0, -10.0, 10.0]))  # always black
    engine = load_engine(save_model(model, tok, tmp_path / "black"))
    head, shades, changed = engine.model.shade_head, SHADES.tolist(), 0
    for sample in iter_samples(shade_split):
        frame = frame_from_sample(sample)
        scene = engine.infer(frame)
        assert not any(d.color in ("white", "gray") for d in scene.detections)  # published: every shade black
        # The same objects' colours with the head and without it (infer itself is not bit-repeatable:
        # Open3D's RANSAC moves a mask now and then).
        regions = engine.regions_of(scene)
        feats = scene_features(frame.rgb, scene.depth, frame.intrinsics, frame.up, regions.kept_masks,
                               thresholds=engine.thresholds, views=regions.views, objects=regions.kept_objects)
        args = (regions.encoded, regions.kept_boxes, feats, regions.views[0], regions.kept_masks)
        with torch.inference_mode():
            _, with_head = engine._tokens(*args)
            engine.model.shade_head = None
            try:
                _, lm_only = engine._tokens(*args)
            finally:
                engine.model.shade_head = head
        for lm, reshaded in zip(lm_only, with_head, strict=True):
            if int(lm.argmax()) in shades:
                assert DEFAULT_COLORS[int(reshaded.argmax())] == "black"
                changed += DEFAULT_COLORS[int(lm.argmax())] != "black"
            else:
                np.testing.assert_array_equal(reshaded, lm)
    assert changed > 0


def test_train_shades_cli_one_line_errors(bare_model_dir, shade_split, tmp_path, cli_error_line):
    err = cli_error_line(["train-shades", "--model", str(bare_model_dir), "--data", str(shade_split), "--val",
                          str(shade_split), "--out", str(tmp_path / "o")])
    assert "region head" in err and str(bare_model_dir) in err


def test_committed_models_carry_a_shade_head_chosen_on_val(repo_root):
    for name in ("student", "teacher"):
        folder = repo_root / "resource" / "models" / name
        config = json.loads((folder / "config.json").read_text())
        summary = json.loads((folder / "shade_summary.json").read_text())
        assert config["use_shade_head"] and summary["kept"], name
        assert summary["val"]["head_right"] > summary["val"]["lm_right"], name
        assert summary["last_loss"] < summary["first_loss"], name
