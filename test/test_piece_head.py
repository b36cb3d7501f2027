"""The piece head: of touching detections judged to be pieces of one object, the engine keeps the
best-scored. Pair features, grouping, training on a model's own detections, the engine and its switch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spatial_vlm_ros.inference.detection_decode import DecodedBox
from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.piece_pairs import PIECE_PAIR_DIM, Piece, pair_features, piece_groups, touching_pairs
from spatial_vlm_ros.model.build import save_model
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples
from spatial_vlm_training.distill.piece_data import collect_pairs
from spatial_vlm_training.distill.piece_train import (
    best_threshold,
    predict,
    train_piece_head,
    with_piece_head,
)


def _mask(r0, r1, c0, c1, shape=(240, 320)):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


def _piece(mask, category, score, rgb):
    scores = np.full(12, 0.01)
    scores[category] = 1.0
    color = np.array([*rgb, 0.0, 0.0, 0.1, 0.5], np.float32)
    geometry = np.array([0, 0, 0.5, 0.1, 0.1, 0.1, 0.4, 0.6, 2.0, 0.5, 1.0], np.float32)
    return Piece(mask, DecodedBox(np.zeros(4), category, score, scores / scores.sum(), 2.0), color, geometry)


def test_touching_pairs_and_groups():
    a, b, c = _mask(10, 20, 10, 20), _mask(10, 20, 21, 30), _mask(100, 110, 100, 110)
    assert touching_pairs([a, b, c]) == [(0, 1)]
    # 0-1 and 1-3 join, 2 stays alone; the groups keep index order, led by their first member.
    assert piece_groups(4, [(0, 1), (1, 3), (0, 2)], np.array([0.9, 0.7, 0.2]), 0.5) == [[0, 1, 3], [2]]
    assert piece_groups(3, [(0, 1)], np.array([0.4]), 0.5) == [[0], [1], [2]]


def test_pair_features_are_order_free_and_finite():
    depth = np.full((240, 320), 2.0, np.float32)
    depth[:, 25:] = np.nan  # a hole at the border must not produce NaN
    big = _piece(_mask(10, 40, 10, 30), 3, 0.9, (0.2, 0.6, 0.2))
    small = _piece(_mask(10, 20, 30, 36), 2, 0.6, (0.2, 0.55, 0.2))
    f = pair_features(big, small, depth)
    assert f.shape == (PIECE_PAIR_DIM,) and f.dtype == np.float32 and np.isfinite(f).all()
    assert np.array_equal(f, pair_features(small, big, depth))
    assert f[5] == pytest.approx(small.box.category_scores[3]) and f[9] == 0.0  # named differently


@pytest.fixture(scope="module")
def piece_splits(generated_split):
    return {"train": generated_split("train", 7373, 10), "val": generated_split("val", 8484, 4)}


def test_piece_head_learns_from_a_models_own_detections(student_dir, piece_splits, tmp_path):
    train = collect_pairs(student_dir, piece_splits["train"])
    assert len(train) > 10 and train.features.shape[1] == PIECE_PAIR_DIM
    assert train.same.any() and not train.same.all()  # the student does split objects into pieces
    model, tok = with_piece_head(student_dir, hidden=16)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("piece_head.")}
    summary = train_piece_head(model, train, epochs=150, lr=1e-2, seed=0, progress=False)
    assert summary["last_loss"] < summary["first_loss"]
    for k, v in model.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
    prob = predict(model, train)
    assert prob[train.same].mean() > prob[~train.same].mean()
    threshold, net = best_threshold(prob, train.same)
    assert 0 < threshold <= 1 and net >= 0

    model.config.piece_head_threshold = threshold
    out = save_model(model, tok, tmp_path / "with_head")
    engine = load_engine(out)
    assert engine.drop_pieces and engine.config.piece_head_threshold == threshold
    assert engine.model.piece_head.net[1].in_features == PIECE_PAIR_DIM


def _forced(student_dir, tmp_path, logit: float):
    """The committed student with a piece head that always says `logit`."""
    model, tok = with_piece_head(student_dir, hidden=8)
    with torch.no_grad():
        for p in model.piece_head.parameters():
            p.zero_()
        model.piece_head.net[-1].bias.fill_(logit)
    return load_engine(save_model(model, tok, tmp_path / f"forced{logit:+.0f}"))


def test_engine_keeps_the_best_piece_and_the_switch_turns_it_off(student_dir, piece_splits, tmp_path):
    engine = _forced(student_dir, tmp_path, 10.0)  # every touching pair is one object
    frames = [frame_from_sample(s) for s in iter_samples(piece_splits["val"])]
    dropped_any, counts_apart = False, []
    for f in frames:
        engine.drop_pieces = False
        apart = engine.infer(f)
        counts_apart.append(len(apart.detections))
        n_touching = len(touching_pairs(engine.regions_of(apart).kept_masks))
        engine.drop_pieces = True
        kept = engine.infer(f)
        assert len(engine.regions_of(kept).kept_masks) == len(kept.detections)
        if n_touching:
            dropped_any = True
            assert len(kept.detections) < len(apart.detections)
            # The best-scored detection always stays, and no two kept detections touch.
            assert kept.detections[0].score == apart.detections[0].score
            assert not touching_pairs(engine.regions_of(kept).kept_masks)
        else:
            assert len(kept.detections) == len(apart.detections)
    assert dropped_any
    never = _forced(student_dir, tmp_path, -10.0)  # no pair is one object: every detection stays
    assert never.drop_pieces and [len(never.infer(f).detections) for f in frames] == counts_apart


def test_train_pieces_cli_one_line_errors(bare_model_dir, piece_splits, tmp_path, cli_error_line):
    err = cli_error_line(["train-pieces", "--model", str(bare_model_dir), "--data", str(piece_splits["train"]),
                          "--val", str(piece_splits["val"]), "--out", str(tmp_path / "o")])
    assert "no region head" in err and str(bare_model_dir) in err


def test_committed_models_carry_a_piece_head_chosen_on_val(repo_root):
    for name in ("student", "teacher"):
        folder = repo_root / "resource" / "models" / name
        config = json.loads((folder / "config.json").read_text())
        assert config["use_piece_head"], name
        summary = json.loads((folder / "piece_summary.json").read_text())
        val = summary["val"]
        assert summary["threshold"] == config["piece_head_threshold"]
        assert val["called_one_right"] > val["called_one_wrong"], name
        assert summary["last_loss"] < summary["first_loss"]
