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
