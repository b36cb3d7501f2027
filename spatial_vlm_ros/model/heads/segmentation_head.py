"""Per-pixel category (background + every category) at input resolution. Together with a detected
box it gives the object's pixels, so its 3D statistics do not pick up the table or the floor."""
from __future__ import annotations

from torch import nn

from .dpt_depth_head import DPTHead


class SegmentationHead(nn.Module):
    def __init__(self, encoder_dim: int, num_layers: int, dim: int, num_categories: int, patch_size: int):
        super().__init__()
        self.dpt = DPTHead(encoder_dim, num_layers, dim, num_categories + 1, patch_size)

    def forward(self, layers, grid, out_size):
        """-> logits (N, 1 + C, H, W); channel 0 is background."""
        return self.dpt(layers, grid, out_size)
