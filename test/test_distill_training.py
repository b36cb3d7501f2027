"""A short real training run (loss decreases, uncertainty weights move), resume, the CLI and config errors."""
from __future__ import annotations

import json

import pytest

from spatial_vlm_training.distill.config import TrainConfig
from spatial_vlm_training.distill.trainer import train

TINY_YAML = "config/train_tiny_test.yaml"


@pytest.fixture(scope="module")
def tiny_split(generated_split):
    return generated_split("train", 4242, 6)


def test_training_loss_decreases_and_weights_are_learned(repo_root, tiny_split, tmp_path):
    cfg = TrainConfig.from_yaml(repo_root / TINY_YAML, {"max_steps": 16, "log_every": 4})
    result = train(cfg, tiny_split, tmp_path / "model", val_dir=tiny_split, progress=False)
    log = [json.loads(line) for line in (tmp_path / "model" / "training_log.jsonl").read_text().splitlines()]
    assert log[-1]["losses"]["total"] < log[0]["losses"]["total"]
    assert log[-1]["losses"]["answer"] < log[0]["losses"]["answer"]
    assert any(abs(w - 1.0) > 0.01 for w in result.task_weights.values())
    assert set(result.val) >= {"acc_all"}
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert (tmp_path / "model" / "tokenizer" / "tokenizer.json").is_file()
    # resume continues from the checkpoint's step
    cfg2 = TrainConfig.from_yaml(repo_root / TINY_YAML, {"max_steps": 18, "log_every": 1})
    again = train(cfg2, tiny_split, tmp_path / "model", resume=True, progress=False)
    assert again.steps == 18


def test_language_only_fine_tune_keeps_the_image_heads(repo_root, tiny_split, tmp_path, monkeypatch):
    """init_from + language_only: no images are read, only the language path moves; the features
    come from proposal masks where proposal_mask_share asks for them."""
    import cv2
    import torch
    from safetensors.torch import load_file

    from spatial_vlm_ros.inference.object_features import working_views
    from spatial_vlm_training.data.sample import iter_samples
    from spatial_vlm_training.distill import cache, trainer
    from spatial_vlm_training.distill.proposal_masks import proposal_masks

    base = train(TrainConfig.from_yaml(repo_root / TINY_YAML, {"max_steps": 2}), tiny_split, tmp_path / "base",
                 progress=False).out_dir

    def no_images(*args, **kwargs):
        raise AssertionError("language_only must not load images")

    monkeypatch.setattr(trainer, "load_images", no_images)
    cfg = TrainConfig.from_dict({"init_from": str(base), "language_only": True, "proposal_mask_share": 1.0,
                                 "max_steps": 3, "warmup_steps": 1, "checkpoint_every": 0, "lang_batch_size": 4})
    train(cfg, tiny_split, tmp_path / "tuned", progress=False)
    before, after = load_file(base / "model.safetensors"), load_file(tmp_path / "tuned" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("encoder.", "depth_head.", "detection_head.")))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("language_head."))
    assert list((tiny_split / cache.CACHE_DIR).glob("features-*-p100.pkl"))
    # the proposal masks cover most objects of a generated frame and stay on them
    sample = next(iter(iter_samples(tiny_split, 1)))
    _, inst = sample.load_gt()
    small = cv2.resize(inst, cache.WORK_SIZE, interpolation=cv2.INTER_NEAREST)
    gt = [small == o.instance for o in sample.objects if (small == o.instance).sum() >= 20]
    views = working_views(sample.load_rgb(), sample.load_depth(), sample.intrinsics)
    found = proposal_masks(*views, sample.intrinsics.scaled(*cache.WORK_SIZE), sample.up, gt)
    assert len(found) == len(gt) and sum(m is not None for m in found) >= len(gt) // 2
    for g, m in zip(gt, found, strict=True):
        if m is not None:
            assert (m & g).sum() / (m | g).sum() >= 0.3


def test_fine_tune_config_errors(tmp_path):
    with pytest.raises(ValueError, match="proposal_mask_share"):
        TrainConfig.from_dict({"proposal_mask_share": 1.5})
    with pytest.raises(ValueError, match="init_from"):
        TrainConfig.from_dict({"init_from": "x", "model": {"lm_layers": 2}})


def test_config_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: 4\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="bad.yaml.*learning_rat"):
        TrainConfig.from_yaml(bad)
    bad.write_text("loss:\n  weighting: magic\n")
    with pytest.raises(ValueError, match="bad.yaml.*weighting"):
        TrainConfig.from_yaml(bad)
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml: invalid YAML"):
        TrainConfig.from_yaml(bad)


def test_train_cli_reports_bad_data_in_one_line(repo_root, tmp_path, capsys):
    from spatial_vlm_ros.cli import main

    code = main(["train", "--config", str(repo_root / TINY_YAML), "--data", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "missing" in err and len(err.strip().splitlines()) == 1


def test_language_pack_carries_the_features_without_frames(repo_root, tiny_split, tmp_path, monkeypatch):
    """scripts/language_pack.py: what another machine needs for language-only training, and no frames."""
    import importlib.util
    import shutil
    import sys

    from spatial_vlm_training.distill import cache

    spec = importlib.util.spec_from_file_location("language_pack", repo_root / "scripts" / "language_pack.py")
    pack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pack)
    val = tmp_path / "val"
    shutil.copytree(tiny_split, val, ignore=shutil.ignore_patterns(cache.CACHE_DIR))
    monkeypatch.setattr(pack, "VAL_FRAMES", 6)
    monkeypatch.setattr(sys, "argv", ["language_pack.py", "make", "--data", str(tiny_split), "--val", str(val),
                                      "--share", "0.5", "--out", str(tmp_path / "pack")])
    assert pack.main() == 0
    assert not list((tmp_path / "pack").rglob("*.png"))
    monkeypatch.setattr(sys, "argv", ["language_pack.py", "unpack", str(tmp_path / "pack"), str(tmp_path / "there")])
    assert pack.main() == 0

    def no_recompute(*args, **kwargs):
        raise AssertionError("the carried cache must be found, not recomputed")

    monkeypatch.setattr(cache, "ProcessPoolExecutor", no_recompute)
    there = cache.load_features(tmp_path / "there" / "train", pack.MAX_OBJECTS, 0, proposal_share=0.5)
    assert there.ids == cache.load_features(tiny_split, pack.MAX_OBJECTS, 0, proposal_share=0.5).ids
    assert cache.load_features(tmp_path / "there" / "val", pack.MAX_OBJECTS, 6).ids
