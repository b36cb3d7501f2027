"""VGGT-style geometry encoder: patch tokens of RGB(+depth) with a camera token and register tokens
per frame, through blocks that alternate frame-wise attention (each view alone) and global attention
(all views of a sample together), so S > 1 views fuse while S = 1 is an ordinary ViT."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_spatial_vlm import SpatialVLMConfig
from .layers import AttentionBlock, PatchEmbed


@dataclass
class EncoderOutput:
    patch_tokens: torch.Tensor  # (B, S, h*w, D) after the last block
    intermediate: list[torch.Tensor]  # patch tokens after the DPT layers, each (B, S, h*w, D)
    camera_tokens: torch.Tensor  # (B, S, D)
    grid: tuple[int, int]


def depth_channels(depth: torch.Tensor | None, like: torch.Tensor, min_m: float, max_m: float) -> torch.Tensor:
    """(N, 1, H, W) metres (0/NaN = hole, None = no sensor) -> (N, 2, H, W) [inverse depth in [0,1], valid]."""
    if depth is None:
        return like.new_zeros(like.shape[0], 2, like.shape[2], like.shape[3])
    depth = torch.nan_to_num(depth, nan=0.0)
    valid = (depth > min_m) & (depth < max_m)
    inv = torch.where(valid, min_m / depth.clamp(min=min_m), torch.zeros_like(depth))
    return torch.cat([inv, valid.to(like.dtype)], dim=1)


class GeometryEncoder(nn.Module):
    def __init__(self, config: SpatialVLMConfig):
        super().__init__()
        self.config = config
        d = config.encoder_dim
        in_ch = 3 + (2 if config.use_depth_input else 0)
        self.patch_embed = PatchEmbed(in_ch, d, config.patch_size)
        h, w = config.grid_size
        self.pos_embed = nn.Parameter(torch.zeros(1, h * w, d))
        self.camera_token = nn.Parameter(torch.zeros(1, 1, d))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, d))
        self.frame_embed = nn.Parameter(torch.zeros(1, config.max_frames, 1, d))
        self.blocks = nn.ModuleList(
            AttentionBlock(d, config.encoder_heads, config.mlp_ratio) for _ in range(config.encoder_depth)
        )
        self.norm = nn.LayerNorm(d)
        for p in (self.pos_embed, self.camera_token, self.register_tokens, self.frame_embed):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, pixel_values: torch.Tensor, depth: torch.Tensor | None = None) -> EncoderOutput:
        """pixel_values (B, S, 3, H, W) normalised RGB; depth (B, S, 1, H, W) metres or None."""
        cfg = self.config
        b, s, _, hh, ww = pixel_values.shape
        if s > cfg.max_frames:
            raise ValueError(f"{s} frames given, the encoder fuses at most max_frames={cfg.max_frames}")
        x = pixel_values.reshape(b * s, 3, hh, ww)
        if cfg.use_depth_input:
            dd = None if depth is None else depth.reshape(b * s, 1, hh, ww)
            x = torch.cat([x, depth_channels(dd, x, cfg.depth_min_m, cfg.depth_max_m)], dim=1)
        tokens = self.patch_embed(x)
        gh, gw = hh // cfg.patch_size, ww // cfg.patch_size
        tokens = tokens + self._pos_embed(gh, gw)
        n_special = 1 + cfg.num_register_tokens
        special = torch.cat([self.camera_token, self.register_tokens], dim=1).expand(b * s, -1, -1)
        x = torch.cat([special, tokens], dim=1)
        t = x.shape[1]
        x = (x.view(b, s, t, -1) + self.frame_embed[:, :s]).view(b * s, t, -1)
        keep = set(cfg.resolved_dpt_layers)
        intermediate = []
        for i, block in enumerate(self.blocks):
            if i % 2 == 0:  # frame-wise
                x = block(x)
            else:  # global: every token of every view of one sample attends to all
                x = block(x.view(b, s * t, -1)).view(b * s, t, -1)
            if i in keep:
                intermediate.append(self.norm(x[:, n_special:]).view(b, s, gh * gw, -1))
        x = self.norm(x).view(b, s, t, -1)
        return EncoderOutput(x[:, :, n_special:], intermediate, x[:, :, 0], (gh, gw))

    def _pos_embed(self, gh: int, gw: int) -> torch.Tensor:
        h0, w0 = self.config.grid_size
        if (gh, gw) == (h0, w0):
            return self.pos_embed
        grid = self.pos_embed.view(1, h0, w0, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)
        return grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)
