"""Object and pair tokens: the interface between perception and language.

One token per object: RoI-pooled encoder features + category and colour (added as the LM's own word
embeddings of their names, so "the red mug" in the question matches the token directly) + mean
colour statistics + 3D geometry in the gravity frame. One token per ordered pair: an MLP over the
explicit metric pair features (surface gap, vertical offsets, distances) plus role-projected copies
of the two object tokens."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_spatial_vlm import OBJECT_COLOR_DIM, OBJECT_GEOMETRY_DIM, PAIR_FEATURE_DIM


@dataclass
class ObjectInputs:
    """Per image: N object slots and P ordered-pair slots (padded; masks say which are real)."""

    boxes: torch.Tensor  # (B, N, 4) x0, y0, x1, y1 as fractions of the image
    category_scores: torch.Tensor  # (B, N, C) probabilities
    color_features: torch.Tensor  # (B, N, OBJECT_COLOR_DIM)
    geometry: torch.Tensor  # (B, N, OBJECT_GEOMETRY_DIM)
    mask: torch.Tensor  # (B, N) bool
    pair_index: torch.Tensor  # (B, P, 2) long, subject and object slot
    pair_features: torch.Tensor  # (B, P, PAIR_FEATURE_DIM)
    pair_mask: torch.Tensor  # (B, P) bool

    def to(self, device, dtype=None) -> ObjectInputs:
        def mv(t):
            return t.to(device=device, dtype=dtype) if (dtype is not None and t.is_floating_point()) else t.to(device)
        return ObjectInputs(*(mv(getattr(self, f)) for f in self.__dataclass_fields__))


def roi_pool(features: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear RoI pooling. features (B, D, h, w), boxes (B, N, 4) fractions -> (B, N, D * size * size)."""
    b, n, _ = boxes.shape
    steps = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    x0, y0, x1, y1 = boxes.unbind(-1)
    xs = x0[..., None] + (x1 - x0)[..., None] * steps  # (B, N, size)
    ys = y0[..., None] + (y1 - y0)[..., None] * steps
    gx = xs[:, :, None, :].expand(b, n, size, size)
    gy = ys[:, :, :, None].expand(b, n, size, size)
    grid = torch.stack([gx, gy], -1).view(b, n * size, size, 2) * 2 - 1
    pooled = F.grid_sample(features, grid.to(features.dtype), mode="bilinear", align_corners=False)
    return pooled.view(b, -1, n, size, size).permute(0, 2, 1, 3, 4).reshape(b, n, -1)


class ObjectTokenizer(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, h = config.encoder_dim, config.lm_hidden_size
        self.roi_size = config.roi_size
        self.use_roi = config.use_roi_features
        n_col = len(config.colors)
        in_dim = (d * config.roi_size**2 if self.use_roi else 0) + OBJECT_GEOMETRY_DIM + OBJECT_COLOR_DIM + 4
        self.object_mlp = nn.Sequential(nn.Linear(in_dim, 2 * h), nn.GELU(), nn.Linear(2 * h, h))
        # Colour names are read off the pixels' colour statistics by a tiny classifier.
        self.color_classifier = nn.Sequential(nn.Linear(OBJECT_COLOR_DIM, 64), nn.GELU(), nn.Linear(64, n_col))
        self.pair_mlp = nn.Sequential(nn.Linear(PAIR_FEATURE_DIM, 2 * h), nn.GELU(), nn.Linear(2 * h, h))
        self.subject_proj = nn.Linear(h, h)
        self.object_proj = nn.Linear(h, h)
        self.type_embed = nn.Parameter(torch.randn(2, h) * 0.02)  # object token / pair token

    def forward(self, patch_tokens: torch.Tensor | None, grid: tuple[int, int] | None, objects: ObjectInputs,
                category_word_embeds: torch.Tensor, color_word_embeds: torch.Tensor):
        """patch_tokens (B, h*w, D); *_word_embeds (C, H) LM embeddings of each name.
        -> object tokens (B, N, H), pair tokens (B, P, H), colour logits (B, N, n_colors)."""
        parts = [objects.geometry, objects.color_features, objects.boxes]
        if self.use_roi:
            if patch_tokens is None:
                raise ValueError("this model's object tokens need the image (use_roi_features=True)")
            b = patch_tokens.shape[0]
            fmap = patch_tokens.transpose(1, 2).reshape(b, -1, *grid)
            parts.insert(0, roi_pool(fmap, objects.boxes, self.roi_size))
        feats = torch.cat(parts, -1)
        color_logits = self.color_classifier(objects.color_features)
        tokens = (
            self.object_mlp(feats)
            + objects.category_scores @ category_word_embeds
            + color_logits.softmax(-1) @ color_word_embeds
            + self.type_embed[0]
        )
        tokens = tokens * objects.mask[..., None]
        idx = objects.pair_index.clamp(min=0)
        subj = torch.gather(tokens, 1, idx[..., :1].expand(-1, -1, tokens.shape[-1]))
        obj = torch.gather(tokens, 1, idx[..., 1:].expand(-1, -1, tokens.shape[-1]))
        pairs = self.pair_mlp(objects.pair_features) + self.subject_proj(subj) + self.object_proj(obj) + self.type_embed[1]
        pairs = pairs * objects.pair_mask[..., None]
        return tokens, pairs, color_logits
