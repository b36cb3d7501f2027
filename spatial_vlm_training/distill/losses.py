"""Multi-task distillation losses and the uncertainty-aware task weighting (Kendall et al. 2018)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

TASKS = ("answer", "depth", "detection", "segmentation", "color")


def answer_loss(logits: torch.Tensor, labels: torch.Tensor, topk_ids: Optional[torch.Tensor] = None,
                topk_logprobs: Optional[torch.Tensor] = None, has_soft: Optional[torch.Tensor] = None,
                temperature: float = 2.0, soft_weight: float = 0.5, teacher_right_only: bool = False) -> torch.Tensor:
    """Cross-entropy on the target answer tokens, mixed with the KL divergence to the teacher's
    (top-k) token distribution at temperature T where the teacher gave one (same tokenizer).
    Rows without soft targets are plain sequence-level training on the teacher's/ground-truth text.
    `teacher_right_only`: the KL term only on answers whose every token is the teacher's top choice, so
    a teacher that is confidently wrong on a question type is not copied (ours on "which is closest")."""
    logits = logits.float()
    ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    if topk_ids is None or topk_logprobs is None or soft_weight <= 0:
        return ce
    valid = (labels != -100) & (topk_ids[..., 0] >= 0)
    if has_soft is not None:
        valid &= has_soft[:, None]
    if teacher_right_only:
        valid &= ((topk_ids[..., 0] == labels) | (labels == -100)).all(-1, keepdim=True)
    if not valid.any():
        return ce
    t = temperature
    ids = topk_ids.clamp(min=0)
    teacher = torch.where(topk_ids >= 0, topk_logprobs.float() / t, torch.full_like(topk_logprobs.float(), -1e4))
    p_teacher = teacher.softmax(-1)  # renormalised over the teacher's top-k
    log_student = (logits / t).log_softmax(-1).gather(-1, ids)
    kl = (p_teacher * (p_teacher.clamp(min=1e-8).log() - log_student)).sum(-1)
    kl = (kl * valid).sum() / valid.sum() * t * t
    return (1 - soft_weight) * ce + soft_weight * kl


def depth_loss(log_depth: torch.Tensor, confidence: Optional[torch.Tensor], target: torch.Tensor,
               si_lambda: float = 0.85) -> torch.Tensor:
    """Scale-invariant log loss + L1 on log depth over valid target pixels (target 0 = none), plus a
    confidence that learns where the prediction is within 5 %."""
    valid = target > 0.05
    if not valid.any():
        return log_depth.sum() * 0.0
    err = (log_depth - target.clamp(min=0.05).log())[valid]
    silog = (err.pow(2).mean() - si_lambda * err.mean().pow(2)).clamp(min=0).sqrt()
    loss = silog + err.abs().mean()
    if confidence is not None:
        good = (err.detach().abs() < 0.05).float()
        loss = loss + 0.1 * F.binary_cross_entropy(confidence[valid].float().clamp(1e-4, 1 - 1e-4), good)
    return loss


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss against gaussian peaks (1.0 at centres)."""
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.ge(0.999).float()
    neg = 1 - pos
    pos_loss = (1 - p).pow(alpha) * p.log() * pos
    neg_loss = (1 - target).pow(beta) * p.pow(alpha) * (1 - p).log() * neg
    n_pos = pos.sum().clamp(min=1)
    return -(pos_loss.sum() + neg_loss.sum()) / n_pos


def detection_loss(out, targets, soft_heatmap: Optional[torch.Tensor] = None, soft_weight: float = 0.5) -> torch.Tensor:
    loss = focal_heatmap_loss(out.heatmap, targets.heatmap)
    if soft_heatmap is not None:
        loss = loss + soft_weight * F.binary_cross_entropy_with_logits(out.heatmap.float(), soft_heatmap.float()) * 10
    if len(targets.index):
        b, r, c = targets.index.unbind(-1)
        size = out.box_size[b, :, r, c]
        offset = out.box_offset[b, :, r, c]
        depth = out.center_depth[b, 0, r, c]
        loss = loss + 5 * F.l1_loss(size, targets.size) + F.l1_loss(offset, targets.offset) + F.l1_loss(depth, targets.log_depth)
    return loss


def feature_similarity_loss(student_tokens: torch.Tensor, teacher_tokens: torch.Tensor,
                            student_grid: tuple[int, int], teacher_grid: tuple[int, int]) -> torch.Tensor:
    """Feature distillation without a projection: match the token-to-token cosine similarity
    structure of the student to the teacher's (teacher tokens resampled to the student's grid)."""
    b, n, d = student_tokens.shape
    t = teacher_tokens.transpose(1, 2).reshape(b, -1, *teacher_grid)
    t = F.interpolate(t.float(), size=student_grid, mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    s = F.normalize(student_tokens.float(), dim=-1)
    t = F.normalize(t, dim=-1)
    return F.mse_loss(s @ s.transpose(1, 2), (t @ t.transpose(1, 2)).detach())


class TaskWeighting(nn.Module):
    """L = sum_t exp(-s_t) L_t + s_t with a learned log-variance s_t per task ("uncertainty"), or
    L = sum_t w_t L_t with fixed weights ("fixed", the ablation)."""

    def __init__(self, tasks: tuple[str, ...] | list[str], mode: str = "uncertainty",
                 fixed_weights: Optional[dict[str, float]] = None):
        super().__init__()
        if mode not in ("uncertainty", "fixed"):
            raise ValueError(f"loss weighting must be uncertainty or fixed, got {mode!r}")
        self.tasks = list(tasks)
        self.mode = mode
        self.fixed = {t: float((fixed_weights or {}).get(t, 1.0)) for t in self.tasks}
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)), requires_grad=mode == "uncertainty")

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for i, t in enumerate(self.tasks):
            if t not in losses:
                continue
            if self.mode == "uncertainty":
                total = total + self.fixed[t] * (torch.exp(-self.log_vars[i]) * losses[t] + self.log_vars[i])
            else:
                total = total + self.fixed[t] * losses[t]
        return total

    def weights(self) -> dict[str, float]:
        if self.mode == "fixed":
            return dict(self.fixed)
        return {t: float(self.fixed[t] * torch.exp(-self.log_vars[i].detach())) for i, t in enumerate(self.tasks)}
