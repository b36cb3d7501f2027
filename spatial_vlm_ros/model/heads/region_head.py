"""Region head: category (or background) of each class-agnostic region proposal.

It reads a small crop of the region (RGB, its mask, depth relative to the region) through a few
conv stages and joins it with the region's metric 3D statistics. This is the object-centric pathway
FINDINGS.md measured to learn on a CPU budget, where a dense pixels-to-boxes head did not.
"""
from __future__ import annotations

import torch
from torch import nn


class RegionHead(nn.Module):
    def __init__(self, in_channels: int, scalar_dim: int, widths: list[int], hidden: int, num_categories: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.GELU(), nn.MaxPool2d(2)]
            c = w
        self.convs = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.scalars = nn.Sequential(nn.LayerNorm(scalar_dim), nn.Linear(scalar_dim, hidden), nn.GELU())
        self.classify = nn.Sequential(nn.Linear(c + hidden, hidden), nn.GELU(), nn.Linear(hidden, num_categories + 1))

    def forward(self, crops: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        """crops (N, in_channels, S, S), scalars (N, scalar_dim) -> logits (N, 1 + C); 0 = background."""
        return self.classify(torch.cat([self.convs(crops), self.scalars(scalars)], -1))
