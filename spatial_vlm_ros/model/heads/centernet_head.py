"""CenterNet-style detection: per-category centre heatmap, 2D box size, sub-cell offset and centre
depth on a grid of stride `detection_stride`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class CenterNetOutput:
    heatmap_logits: torch.Tensor  # (N, C, h, w)
    box_size: torch.Tensor  # (N, 2, h, w) width, height as a fraction of the image
    box_offset: torch.Tensor  # (N, 2, h, w) centre offset inside the cell, in cells
    center_log_depth: torch.Tensor  # (N, 1, h, w)


class CenterNetHead(nn.Module):
    def __init__(self, encoder_dim: int, num_categories: int, patch_size: int, stride: int, dim: int = 64):
        super().__init__()
        self.upsample = patch_size // stride
        self.stem = nn.Sequential(nn.Conv2d(encoder_dim, dim, 3, padding=1), nn.GELU())
        self.refine = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GELU())
        self.heatmap = nn.Conv2d(dim, num_categories, 1)
        self.size = nn.Conv2d(dim, 2, 1)
        self.offset = nn.Conv2d(dim, 2, 1)
        self.depth = nn.Conv2d(dim, 1, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)  # prior 0.1, the CenterNet initialisation

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> CenterNetOutput:
        gh, gw = grid
        x = self.stem(tokens.transpose(1, 2).reshape(tokens.shape[0], -1, gh, gw))
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        x = self.refine(x)
        return CenterNetOutput(self.heatmap(x), torch.sigmoid(self.size(x)), torch.sigmoid(self.offset(x)), self.depth(x))
