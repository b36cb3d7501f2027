"""Shade head: which of the colours that differ only in brightness (white, gray, black) an object is.

The language model names colours from mean colour statistics. A white table whose legs and shaded
sides pull its mean down reads as gray, and those two were most of the student's colour errors (select
split: 47 of 54). What tells them apart is how bright the best-lit surface is, so the head reads the LM's
log-probabilities of the shades and the log of the object's brightness percentiles
(spatial_vlm_ros.inference.shade_inputs) and gives one logit per shade. Linear: with standardised inputs a
multinomial logistic regression is all the data supports (a few thousand detections).
"""
from __future__ import annotations

import torch
from torch import nn


class ShadeHead(nn.Module):
    def __init__(self, n_shades: int, brightness_dim: int):
        super().__init__()
        in_dim = n_shades + brightness_dim
        # Standardisation of the inputs, set from the training detections (train-shades); persistent
        # buffers, so from_pretrained restores them with the weights.
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_scale", torch.ones(in_dim))
        self.linear = nn.Linear(in_dim, n_shades)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, n_shades + brightness_dim) -> (N, n_shades) logits."""
        return self.linear((features - self.input_mean) / self.input_scale)
