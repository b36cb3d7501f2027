"""Hidden chain of thought: K learnable latent embeddings placed after the question and before the
answer. They are processed in the same forward pass as the prompt (no extra decoding steps), giving
the language model K extra positions to compute in before it commits to the first answer token."""
from __future__ import annotations

import torch
from torch import nn


class HiddenCoT(nn.Module):
    def __init__(self, k: int, dim: int):
        super().__init__()
        self.trained_k = k
        self.latents = nn.Parameter(torch.randn(max(k, 0), dim) * 0.02)

    def forward(self, batch: int, k: int | None = None) -> torch.Tensor:
        """-> (batch, k, dim); k defaults to the trained K, 0 disables, more than trained is an error."""
        k = self.trained_k if k is None else k
        if k < 0 or k > self.trained_k:
            raise ValueError(f"hidden_cot_k={k}: this model was trained with K={self.trained_k} latents (use 0..{self.trained_k})")
        return self.latents[:k].unsqueeze(0).expand(batch, -1, -1)
