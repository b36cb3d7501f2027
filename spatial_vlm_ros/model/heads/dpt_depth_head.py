"""DPT-style dense prediction: tokens of several encoder layers are reassembled into feature maps,
fused, and upsampled back to the input resolution. `DPTDepthHead` predicts metric log-depth and a
confidence; given measured depth it learns to reproduce it and to fill its holes."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DPTHead(nn.Module):
    def __init__(self, encoder_dim: int, num_layers: int, dim: int, out_channels: int, patch_size: int):
        super().__init__()
        self.reassemble = nn.ModuleList(nn.Conv2d(encoder_dim, dim, 1) for _ in range(num_layers))
        self.fuse = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GELU())
        n_up = int(round(math.log2(patch_size)))
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GELU()) for _ in range(n_up)
        )
        self.out = nn.Conv2d(dim, out_channels, 3, padding=1)

    def forward(self, layers: list[torch.Tensor], grid: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
        """layers: each (N, h*w, D) -> (N, out_channels, H, W)."""
        gh, gw = grid
        x = 0
        for proj, tokens in zip(self.reassemble, layers, strict=False):
            x = x + proj(tokens.transpose(1, 2).reshape(tokens.shape[0], -1, gh, gw))
        x = self.fuse(x)
        for block in self.up:
            x = block(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        if x.shape[-2:] != tuple(out_size):
            x = F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)
        return self.out(x)


class DPTDepthHead(nn.Module):
    def __init__(self, encoder_dim: int, num_layers: int, dim: int, patch_size: int):
        super().__init__()
        self.dpt = DPTHead(encoder_dim, num_layers, dim, 2, patch_size)

    def forward(self, layers, grid, out_size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (depth metres, log-depth, confidence in [0, 1]), each (N, 1, H, W)."""
        out = self.dpt(layers, grid, out_size)
        log_depth = out[:, :1]
        return log_depth.exp(), log_depth, torch.sigmoid(out[:, 1:2])
