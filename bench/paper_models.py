"""Paper-size model shapes for GPU timing (random init: weights do not change latency).

Student (the paper's distilled model): a VGGT-1B-size encoder (DINO-style patch embedding and 24
blocks, then 24 frame-wise + 24 global attention blocks alternating, dim 1024, patch 14, 518 px)
+ MLP projector + a ~1B Llama decoder (hidden 2048, 16 layers, 32 heads, 8 KV heads, vocab 128256)
+ learned Hidden CoT latents appended to the prompt. Teacher: LLaVA-style CLIP-L/336 + 7B Llama.
Needs only torch + transformers, so it runs on a bare GPU box.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class EncoderSpec:
    dim: int
    heads: int
    patch: int
    image: int
    views: int = 1
    dino_blocks: int = 24
    frame_blocks: int = 0  # VGGT: attention within each view
    global_blocks: int = 0  # VGGT: attention across all views, alternating with frame blocks

    @property
    def grid(self) -> int:
        return self.image // self.patch


@dataclass(frozen=True)
class VLMSpec:
    name: str
    encoder: EncoderSpec
    llm: dict = field(default_factory=dict)  # LlamaConfig keyword arguments
    n_visual: int = 576  # visual tokens handed to the LLM (a square number per view)
    n_text: int = 48  # question tokens
    n_latent: int = 0  # Hidden CoT latent tokens
    n_answer: int = 32  # answer tokens generated

    @property
    def prompt_len(self) -> int:
        return self.n_visual + self.n_text + self.n_latent


LLAMA_1B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=2048)
LLAMA_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048)

PAPER_STUDENT = VLMSpec(
    "student_2.4B",
    EncoderSpec(dim=1024, heads=16, patch=14, image=518, dino_blocks=24, frame_blocks=24, global_blocks=24),
    LLAMA_1B, n_latent=8,
)
PAPER_TEACHER = VLMSpec("teacher_7B", EncoderSpec(dim=1024, heads=16, patch=14, image=336, dino_blocks=24), LLAMA_7B)

# Same code paths at toy size, for the CPU smoke test.
SMOKE_STUDENT = VLMSpec(
    "student_smoke",
    EncoderSpec(dim=32, heads=2, patch=14, image=56, dino_blocks=1, frame_blocks=1, global_blocks=1),
    dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
         num_key_value_heads=2, max_position_embeddings=128),
    n_visual=9, n_text=6, n_latent=2, n_answer=6,
)
SMOKE_TEACHER = VLMSpec(
    "teacher_smoke",
    EncoderSpec(dim=32, heads=2, patch=14, image=42, dino_blocks=2),
    dict(vocab_size=384, hidden_size=96, intermediate_size=192, num_hidden_layers=3, num_attention_heads=4,
         num_key_value_heads=4, max_position_embeddings=128),
    n_visual=9, n_text=6, n_latent=0, n_answer=6,
)


class Block(nn.Module):
    """Pre-norm ViT block; SDPA picks flash attention in bf16 on GPUs."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VisionEncoder(nn.Module):
    """Patch embedding, DINO-style blocks, then VGGT's alternating frame / global attention."""

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec
        self.patch_embed = nn.Conv2d(3, spec.dim, spec.patch, spec.patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.grid * spec.grid, spec.dim))
        self.dino = nn.ModuleList(Block(spec.dim, spec.heads) for _ in range(spec.dino_blocks))
        self.frame = nn.ModuleList(Block(spec.dim, spec.heads) for _ in range(spec.frame_blocks))
        self.globl = nn.ModuleList(Block(spec.dim, spec.heads) for _ in range(spec.global_blocks))

    def forward(self, images: torch.Tensor, run_block=None) -> torch.Tensor:
        """(views, 3, H, W) -> (views, grid*grid, dim). `run_block(block, x)` lets a caller run the blocks
        through one compiled function (all blocks share shapes, so one compilation serves all 72)."""
        run = run_block or (lambda block, x: block(x))
        views = images.shape[0]
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed
        for block in self.dino:
            x = run(block, x)
        n = x.shape[1]
        for i in range(max(len(self.frame), len(self.globl))):
            if i < len(self.frame):
                x = run(self.frame[i], x)
            if i < len(self.globl):
                x = run(self.globl[i], x.reshape(1, views * n, -1)).reshape(views, n, -1)
        return x


class PaperVLM(nn.Module):
    """Encoder -> pooled visual tokens -> MLP projector -> [visual | question | latents] -> Llama."""

    def __init__(self, spec: VLMSpec) -> None:
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        self.spec = spec
        side = int(round((spec.n_visual // spec.encoder.views) ** 0.5))
        if side * side * spec.encoder.views != spec.n_visual or side > spec.encoder.grid:
            raise ValueError(f"{spec.name}: n_visual {spec.n_visual} is not views x a square <= the patch grid")
        self.pool_side = side
        self.encoder = VisionEncoder(spec.encoder)
        self.llm = LlamaForCausalLM(LlamaConfig(**spec.llm))
        hidden = self.llm.config.hidden_size
        self.projector = nn.Sequential(nn.Linear(spec.encoder.dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.latents = nn.Parameter(torch.randn(1, spec.n_latent, hidden) * 0.02)
        # Fixed-length answers: no EOS stop, so eager and static produce the same number of tokens.
        self.llm.generation_config.eos_token_id = None
        self.llm.generation_config.pad_token_id = 0

    def prompt_embeds(self, images: torch.Tensor, question_ids: torch.Tensor, run_block=None) -> torch.Tensor:
        """(views, 3, H, W), (1, n_text) -> (1, prompt_len, hidden)."""
        tokens = self.encoder(images, run_block)
        views, n, dim = tokens.shape
        grid = self.spec.encoder.grid
        pooled = F.adaptive_avg_pool2d(tokens.transpose(1, 2).reshape(views, dim, grid, grid), self.pool_side)
        visual = self.projector(pooled.flatten(2).transpose(1, 2).reshape(1, -1, dim))
        question = self.llm.get_input_embeddings()(question_ids)
        return torch.cat([visual, question, self.latents.expand(question.shape[0], -1, -1)], dim=1)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(spec: VLMSpec, device: torch.device, dtype: torch.dtype, seed: int = 0) -> PaperVLM:
    """Random-init model built directly on `device` in `dtype` (no fp32 detour for the 7B)."""
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = PaperVLM(spec)
    finally:
        torch.set_default_dtype(previous)
    return model.to(device=device, dtype=dtype).eval()
