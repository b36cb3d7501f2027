"""The student's inference engine (SpatialEngine protocol), its one-line errors, and the committed student."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.types import Answer, CameraIntrinsics, RGBDFrame, SceneResult
from spatial_vlm_ros.model.build import new_model, save_model, tokenizer_for
from spatial_vlm_ros.model.configuration_spatial_vlm import DEFAULT_CATEGORIES, DEFAULT_COLORS

TINY = dict(image_height=48, image_width=64, encoder_dim=32, encoder_depth=2, encoder_heads=2, dpt_dim=8,
            detection_dim=8, lm_hidden_size=32, lm_layers=1, lm_heads=2, lm_intermediate_size=64, hidden_cot_k=2,
            use_roi_features=False)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    tok = tokenizer_for([], DEFAULT_CATEGORIES, DEFAULT_COLORS)
    return save_model(new_model(tok, **TINY), tok, tmp_path_factory.mktemp("tiny_student"))


def frame(with_depth=True, w=128, h=96):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    depth = rng.uniform(0.8, 2.0, (h, w)).astype(np.float32) if with_depth else None
    if depth is not None:
        depth[:10, :10] = np.nan  # holes are completed from the prediction
    return RGBDFrame(rgb, CameraIntrinsics(100.0, 100.0, w / 2, h / 2, w, h), depth=depth, up=np.array([0, -1.0, 0]))


@pytest.mark.parametrize("with_depth", [True, False])
def test_infer_and_answer(tiny_model_dir, with_depth):
    engine = load_engine(tiny_model_dir, score_threshold=0.0, max_objects=4)
    f = frame(with_depth)
    scene = engine.infer(f)
    assert isinstance(scene, SceneResult)
    assert scene.depth.shape == (96, 128) and np.isfinite(scene.depth).all()
    assert scene.depth_confidence.shape == (96, 128)
    assert 1 <= len(scene.detections) <= 4
    for d in scene.detections:
        x0, y0, x1, y1 = d.box2d
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 96  # source pixels, not model input pixels
        assert d.label in DEFAULT_CATEGORIES and d.color in DEFAULT_COLORS
        assert d.mask is not None and d.mask.shape == (96, 128)  # at the frame's size, for the cross-check
        ys, xs = np.nonzero(d.mask)
        assert len(xs) == 0 or (xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1)
    n = len(scene.detections)
    assert len(scene.relations) == n * (n - 1) // 2 * 2 + n * (n - 1)
    assert all(0.5 <= r.confidence <= 1.0 and r.source == "model" for r in scene.relations)
    assert scene.description.startswith("I see")
    assert {"encoder_heads", "features", "relations", "total"} <= set(scene.timings_ms)
    ans = engine.answer(f, scene, f"Is the {scene.detections[0].description} near the floor?")
    assert isinstance(ans, Answer) and ans.success and 0.0 <= ans.confidence <= 1.0
    assert not engine.answer(f, scene, "  ").success


def test_geometry_reads_the_measured_depth_and_the_prediction_only_without_one(tiny_model_dir, monkeypatch):
    """Proposals, object points and pair gaps come from the measurement alone (holes stay holes, as in
    training); the model's depth fills in only when there is no usable measurement."""
    from spatial_vlm_ros.inference import engine as engine_mod

    seen = []
    real = engine_mod.working_views
    monkeypatch.setattr(engine_mod, "working_views", lambda rgb, depth, intr: seen.append(depth) or real(rgb, depth, intr))
    engine = load_engine(tiny_model_dir, score_threshold=0.0, max_objects=4)
    f = frame(True)
    scene = engine.infer(f)
    valid = np.isfinite(f.depth)
    assert np.isnan(seen[-1][~valid]).all() and np.array_equal(seen[-1][valid], f.depth[valid])
    assert np.isfinite(scene.depth).all()  # the published depth map still has its holes completed
    engine.infer(frame(False))
    assert np.isfinite(seen[-1]).all()
    zero = frame(True)
    zero.depth[:] = 0.0  # a depth image with nothing measured: the model's depth is all there is
    engine.infer(zero)
    assert np.isfinite(seen[-1]).all()


def test_hidden_cot_override(tiny_model_dir):
    assert load_engine(tiny_model_dir, hidden_cot_k=0).hidden_cot_k == 0
    with pytest.raises(ValueError, match="trained with K=2"):
        load_engine(tiny_model_dir, hidden_cot_k=5)


def test_bad_frame_is_one_line_error(tiny_model_dir):
    engine = load_engine(tiny_model_dir)
    bad = frame()
    bad.rgb = bad.rgb[..., 0]
    with pytest.raises(ValueError, match="rgb must be"):
        engine.infer(bad)
    bad = frame()
    bad.depth = bad.depth[:10]
    with pytest.raises(ValueError, match="depth must be"):
        engine.infer(bad)


def test_missing_and_corrupt_files_name_the_file(tiny_model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_engine(tmp_path / "nope")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="model.safetensors"):
        load_engine(broken)
    (broken / "config.json").write_text("{ nope")
    with pytest.raises(ValueError, match="config.json"):
        load_engine(broken)
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    cfg["image_width"] = 50
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="config.json.*patch_size"):
        load_engine(broken)
    shutil.rmtree(broken / "tokenizer")
    cfg["image_width"] = 64
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_engine(broken)
    (tiny_model_dir / "missing_check").mkdir(exist_ok=True)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_engine(tiny_model_dir / "missing_check")


def test_committed_student_on_a_generated_split(student_dir, tmp_path):
    """The embedded default student answers a small freshly generated split through the eval harness."""
    if not (student_dir / "model.safetensors").is_file():
        pytest.skip(f"no committed student at {student_dir}")
    from spatial_vlm_training.data.generator import GenerateConfig, generate_split
    from spatial_vlm_training.eval.harness import evaluate

    generate_split(GenerateConfig(tmp_path / "split", "test", 9999, 3))
    engine = load_engine(student_dir)
    assert engine.model.num_parameters_m() > 0.1
    assert (student_dir / "model.safetensors").stat().st_size < 20 * 2**20  # the size limit of the student
    report = evaluate(engine, tmp_path / "split", "student", progress=False)
    m = report.metrics
    assert m["n_frames"] == 3 and m["n_questions"] > 0
    for key in ("proximity_accuracy", "contact_accuracy"):
        assert m[key] is not None and 0.0 <= m[key] <= 1.0
    assert m["depth_delta1"] is not None and m["depth_delta1"] > 0.5  # measured depth is kept, holes completed


@pytest.mark.parametrize("name, k, weighting", [("student_control", 4, "uncertainty"), ("student_k0", 0, "uncertainty"),
                                                ("student_fixed", 4, "fixed")])
def test_committed_ablation_students_are_what_the_table_says(repo_root, name, k, weighting):
    """The ablation table (results/ablations_regenerated_test) can be re-run from a clone: each committed
    ablation student loads, and differs from the control only in what it ablates."""
    folder = repo_root / "resource" / "models" / "ablations" / name
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"no committed ablation student at {folder}")
    summary = json.loads((folder / "train_summary.json").read_text())
    control = json.loads((folder.parent / "student_control" / "train_summary.json").read_text())
    assert summary["hidden_cot_k"] == k and summary["loss_weighting"] == weighting
    assert summary["steps"] == control["steps"] and summary["config"]["model"] == {**control["config"]["model"],
                                                                                   "hidden_cot_k": k}
    assert (folder / "model.safetensors").stat().st_size < 20 * 2**20
    assert load_engine(folder).model.config.hidden_cot_k == k
