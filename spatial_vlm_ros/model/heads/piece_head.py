"""Piece head: are two touching detections pieces of one object?

It reads the pair description of spatial_vlm_ros.inference.piece_pairs (colour differences, how each
piece was named, shared border, depth step, vertical layout) and gives one logit. A small MLP: the
features are already object-centric, as in the region head (FINDINGS.md).
"""
from __future__ import annotations

import torch
from torch import nn


class PieceHead(nn.Module):
    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, pair_features: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> (N,) logits of "one object"."""
        return self.net(pair_features)[:, 0]
