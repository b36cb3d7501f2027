"""Distillation losses and the uncertainty-aware task weighting."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spatial_vlm_training.distill.losses import (
    TaskWeighting,
    answer_loss,
    depth_loss,
    feature_similarity_loss,
    focal_heatmap_loss,
)


def test_answer_loss_is_cross_entropy_without_teacher():
    logits = torch.randn(4, 3, 10)
    labels = torch.tensor([[1, 2, -100], [3, -100, -100], [4, 5, 6], [7, 8, -100]])
    expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    assert torch.allclose(answer_loss(logits, labels), expected)


def test_answer_kl_pulls_student_towards_teacher_distribution():
    torch.manual_seed(0)
    labels = torch.tensor([[1, 2]])
    teacher = torch.tensor([[[0.0, 3.0, 1.0, -1.0], [0.0, 0.0, 3.0, 1.0]]])
    top = teacher.log_softmax(-1).topk(3, -1)
    student = torch.zeros(1, 2, 4, requires_grad=True)
    opt = torch.optim.SGD([student], lr=1.0)
    first = None
    for _ in range(50):
        loss = answer_loss(student, labels, top.indices, top.values, torch.tensor([True]), temperature=2.0, soft_weight=1.0)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first * 0.2
    assert student.argmax(-1).tolist() == [[1, 2]]


def test_kl_only_where_the_teacher_is_right():
    """A teacher confidently wrong on an answer gives that answer no KL term, only the ground truth."""
    labels = torch.tensor([[1, 2], [1, 2]])
    right = torch.tensor([[0.0, 3.0, 1.0, -1.0], [0.0, 0.0, 3.0, 1.0]])
    wrong = torch.tensor([[0.0, 3.0, 1.0, -1.0], [0.0, 0.0, 1.0, 3.0]])  # second token: teacher says 3
    top = torch.stack([right, wrong]).log_softmax(-1).topk(3, -1)
    student = torch.randn(2, 2, 4)
    both = answer_loss(student, labels, top.indices, top.values, temperature=2.0, soft_weight=1.0)
    gated = answer_loss(student, labels, top.indices, top.values, temperature=2.0, soft_weight=1.0,
                        teacher_right_only=True)
    first_only = answer_loss(student[:1], labels[:1], top.indices[:1], top.values[:1], temperature=2.0, soft_weight=1.0)
    assert torch.allclose(gated, first_only) and not torch.allclose(gated, both)
    none_right = answer_loss(student[1:], labels[1:], top.indices[1:], top.values[1:], soft_weight=0.5,
                             teacher_right_only=True)
    assert torch.allclose(none_right, F.cross_entropy(student[1], labels[1]))  # nothing to distil: CE alone


def test_depth_loss_zero_for_exact_and_ignores_holes():
    target = torch.full((1, 1, 4, 4), 2.0)
    target[..., 0, 0] = 0.0  # hole
    pred = target.clamp(min=0.05).log().clone()
    pred[..., 0, 0] = 5.0  # whatever the prediction in the hole
    assert float(depth_loss(pred, None, target)) < 1e-5
    assert float(depth_loss(pred + 0.3, None, target)) > 0.2


def test_focal_heatmap_loss_rewards_peaks():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 1.0
    good = torch.full((1, 1, 5, 5), -6.0)
    good[0, 0, 2, 2] = 6.0
    assert float(focal_heatmap_loss(good, target)) < float(focal_heatmap_loss(torch.zeros(1, 1, 5, 5), target))


def test_feature_similarity_loss_zero_for_same_structure():
    t = torch.randn(2, 12, 8)
    assert float(feature_similarity_loss(t, t, (3, 4), (3, 4))) < 1e-6


def test_uncertainty_weights_are_learned_and_fixed_are_not():
    w = TaskWeighting(["a", "b"], "uncertainty")
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    for _ in range(20):
        total = w({"a": torch.tensor(4.0), "b": torch.tensor(0.1)})
        opt.zero_grad()
        total.backward()
        opt.step()
    weights = w.weights()
    assert weights["b"] > 1.0 > weights["a"]  # the noisier (larger) task gets the smaller weight
    fixed = TaskWeighting(["a", "b"], "fixed")
    assert not fixed.log_vars.requires_grad
    assert float(fixed({"a": torch.tensor(2.0), "b": torch.tensor(3.0)})) == 5.0
    with pytest.raises(ValueError, match="uncertainty or fixed"):
        TaskWeighting(["a"], "magic")
