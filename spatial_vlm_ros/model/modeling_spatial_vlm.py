"""`SpatialVLM`: geometry encoder + optional dense depth, segmentation and detection heads + object
tokens + a small causal LM with Hidden-CoT latents, as one transformers `PreTrainedModel`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_spatial_vlm import (
    PIECE_PAIR_DIM,
    REGION_CHANNELS,
    REGION_SCALAR_DIM,
    SHADE_BRIGHTNESS_DIM,
    SpatialVLMConfig,
)
from .encoder import EncoderOutput, GeometryEncoder
from .heads import CenterNetHead, DPTDepthHead, LanguageHead, PieceHead, RegionHead, SegmentationHead, ShadeHead
from .hidden_cot import HiddenCoT
from .object_tokens import ObjectInputs, ObjectTokenizer

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass
class QAInputs:
    """M question/answer rows; each reads the object and pair tokens of image `image_index[m]`."""

    image_index: torch.Tensor  # (M,) long
    question_ids: torch.Tensor  # (M, Lq) long
    question_mask: torch.Tensor  # (M, Lq) bool
    answer_input_ids: torch.Tensor  # (M, La) long: [ANS] a1 .. a_{La-1}
    answer_mask: torch.Tensor  # (M, La) bool
    answer_labels: Optional[torch.Tensor] = None  # (M, La) long: a1 .. [EOS], -100 on padding
    focus: Optional[torch.Tensor] = None  # (M, 4) long: subject slot, object slot, pair (s, o), pair (o, s); -1 = none

    def to(self, device) -> QAInputs:
        return QAInputs(*(None if getattr(self, f) is None else getattr(self, f).to(device)
                          for f in self.__dataclass_fields__))


@dataclass
class SpatialVLMOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None  # answer-token cross-entropy when labels are given
    depth: Optional[torch.Tensor] = None  # (B*S, 1, H, W) metres
    log_depth: Optional[torch.Tensor] = None
    depth_confidence: Optional[torch.Tensor] = None  # (B*S, 1, H, W) in [0, 1]
    segmentation_logits: Optional[torch.Tensor] = None  # (B*S, 1 + C, H, W)
    heatmap: Optional[torch.Tensor] = None  # (B*S, C, h, w) logits
    box_size: Optional[torch.Tensor] = None
    box_offset: Optional[torch.Tensor] = None
    center_depth: Optional[torch.Tensor] = None  # log metres
    answer_logits: Optional[torch.Tensor] = None  # (M, La, V)
    latent_states: Optional[torch.Tensor] = None  # (M, K, H) last-layer states at the Hidden-CoT positions
    object_tokens: Optional[torch.Tensor] = None
    pair_tokens: Optional[torch.Tensor] = None
    color_logits: Optional[torch.Tensor] = None
    encoder_tokens: Optional[torch.Tensor] = None  # (B, S, h*w, D) for feature distillation


class SpatialVLM(PreTrainedModel):
    config_class = SpatialVLMConfig
    base_model_prefix = "spatial_vlm"
    main_input_name = "pixel_values"

    def __init__(self, config: SpatialVLMConfig):
        super().__init__(config)
        c = config
        n_layers = len(c.resolved_dpt_layers)
        self.encoder = GeometryEncoder(c)
        up = c.patch_size // c.dense_output_stride  # upsampling factor of the dense heads
        self.depth_head = DPTDepthHead(c.encoder_dim, n_layers, c.dpt_dim, up) if c.use_depth_head else None
        self.segmentation_head = (SegmentationHead(c.encoder_dim, n_layers, c.dpt_dim, len(c.categories), up)
                                  if c.use_segmentation_head else None)
        self.detection_head = (CenterNetHead(c.encoder_dim, len(c.categories), c.patch_size, c.detection_stride, c.detection_dim)
                               if c.use_detection_head else None)
        self.region_head = (RegionHead(REGION_CHANNELS, REGION_SCALAR_DIM, c.region_widths, c.region_hidden, len(c.categories))
                            if c.use_region_head else None)
        self.piece_head = PieceHead(PIECE_PAIR_DIM, c.piece_head_hidden) if c.use_piece_head else None
        self.shade_head = ShadeHead(len(c.shade_colors), SHADE_BRIGHTNESS_DIM) if c.use_shade_head else None
        if c.use_language_head:
            self.language_head = LanguageHead(c)
            self.object_tokenizer = ObjectTokenizer(c)
            self.hidden_cot = HiddenCoT(c.hidden_cot_k, c.lm_hidden_size)
            self.focus_embed = nn.Parameter(torch.zeros(4, c.lm_hidden_size)) if c.use_focus_tokens else None
            self._register_name_ids("category_word_ids", c.category_token_ids, len(c.categories))
            self._register_name_ids("color_word_ids", c.color_token_ids, len(c.colors))
        else:
            self.language_head = self.object_tokenizer = self.hidden_cot = None
        self.post_init()

    def _register_name_ids(self, name: str, ids: Optional[list[list[int]]], n: int) -> None:
        """Token ids of each category/colour name, padded with -1 (names may be several words)."""
        ids = ids or [[self.config.unk_token_id] for _ in range(n)]
        width = max(len(x) for x in ids)
        table = torch.full((n, width), -1, dtype=torch.long)
        for i, x in enumerate(ids):
            table[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        self.register_buffer(name, table)  # persistent: from_pretrained does not rebuild buffers

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # --- pieces (the engine calls them one by one so a question can reuse a frame's tokens) ------
    def encode(self, pixel_values: torch.Tensor, depth: Optional[torch.Tensor] = None) -> EncoderOutput:
        if pixel_values.dim() == 4:
            pixel_values = pixel_values.unsqueeze(1)
        if depth is not None and depth.dim() == 4:
            depth = depth.unsqueeze(1)
        return self.encoder(pixel_values, depth)

    def dense_heads(self, enc: EncoderOutput, out: SpatialVLMOutput) -> None:
        c = self.config
        size = (c.image_height // c.dense_output_stride, c.image_width // c.dense_output_stride)
        full = (c.image_height, c.image_width)
        layers = [t.flatten(0, 1) for t in enc.intermediate]

        def up(x):
            return x if x.shape[-2:] == full else F.interpolate(x, size=full, mode="bilinear", align_corners=False)

        if self.depth_head is not None:
            _, log_depth, conf = self.depth_head(layers, enc.grid, size)
            out.log_depth, out.depth_confidence = up(log_depth), up(conf)
            out.depth = out.log_depth.exp()
        if self.segmentation_head is not None:
            out.segmentation_logits = up(self.segmentation_head(layers, enc.grid, size))
        if self.detection_head is not None:
            det = self.detection_head(enc.patch_tokens.flatten(0, 1), enc.grid)
            out.heatmap, out.box_size, out.box_offset, out.center_depth = (
                det.heatmap_logits, det.box_size, det.box_offset, det.center_log_depth)

    def name_embeddings(self, table: torch.Tensor) -> torch.Tensor:
        emb = self.language_head.embed_tokens(table.clamp(min=0))
        valid = (table >= 0).to(emb.dtype)[..., None]
        return (emb * valid).sum(1) / valid.sum(1).clamp(min=1)

    def object_tokens(self, enc: Optional[EncoderOutput], objects: ObjectInputs):
        # The first view is the reference frame the boxes refer to.
        tokens = None if enc is None else enc.patch_tokens[:, 0]
        return self.object_tokenizer(tokens, None if enc is None else enc.grid, objects,
                                     self.name_embeddings(self.category_word_ids),
                                     self.name_embeddings(self.color_word_ids))

    def answer_logits(self, object_tokens, object_mask, pair_tokens, pair_mask, qa: QAInputs,
                      hidden_cot_k: Optional[int] = None):
        """-> (answer logits (M, La, V), latent states (M, K, H)).

        The sequence of row m is [BOS][objects][pairs][question][K latents][answer] of image
        image_index[m]. The [BOS][objects][pairs] prefix is run once per image and its key/value
        cache is shared by all of that image's questions, so a question costs only its own tokens."""
        ii = qa.image_index
        m, b = ii.shape[0], object_tokens.shape[0]
        embed = self.language_head.embed_tokens
        bos = embed(torch.full((b, 1), self.config.bos_token_id, device=ii.device, dtype=torch.long))
        prefix = torch.cat([bos, object_tokens, pair_tokens], 1)
        ones = torch.ones(b, 1, dtype=torch.bool, device=ii.device)
        prefix_mask = torch.cat([ones, object_mask, pair_mask], 1)
        latents = self.hidden_cot(m, hidden_cot_k).to(prefix.dtype)
        k = latents.shape[1]
        la = qa.answer_input_ids.shape[1]
        parts = [embed(qa.question_ids), latents, embed(qa.answer_input_ids)]
        masks = [qa.question_mask, torch.ones(m, k, dtype=torch.bool, device=ii.device), qa.answer_mask]
        if self.focus_embed is not None:
            focus, focus_mask = self.focus_tokens(object_tokens, pair_tokens, ii, qa.focus, m)
            parts.insert(0, focus)
            masks.insert(0, focus_mask)
        suffix = torch.cat(parts, 1)
        suffix_mask = torch.cat(masks, 1)
        logits, hidden = self.language_head.prefix_then_suffix(prefix, prefix_mask, ii, suffix, suffix_mask)
        start = suffix.shape[1] - la
        return logits[:, start:], hidden[:, start - k: start]

    def focus_tokens(self, object_tokens, pair_tokens, image_index, focus: Optional[torch.Tensor], m: int):
        """(M, 4, H) tokens: the mentioned subject, object and both ordered pairs, each with a role
        embedding; missing ones are masked out."""
        h = object_tokens.shape[-1]
        if focus is None:
            focus = torch.full((m, 4), -1, dtype=torch.long, device=image_index.device)
        valid = focus >= 0
        idx = focus.clamp(min=0)
        objs = object_tokens[image_index.unsqueeze(1).expand(-1, 2), idx[:, :2]]  # (M, 2, H)
        pairs = pair_tokens[image_index.unsqueeze(1).expand(-1, 2), idx[:, 2:]]
        tokens = (torch.cat([objs, pairs], 1) + self.focus_embed.to(objs.dtype)) * valid[..., None]
        return tokens.view(m, 4, h), valid

    # --- the full forward used in training ---------------------------------------------------
    def forward(self, pixel_values: Optional[torch.Tensor] = None, depth: Optional[torch.Tensor] = None,
                objects: Optional[ObjectInputs] = None, qa: Optional[QAInputs] = None,
                hidden_cot_k: Optional[int] = None) -> SpatialVLMOutput:
        """Images -> dense and detection heads; objects (+ qa) -> object/pair tokens (+ answer logits).
        Without RoI features the language path runs without images (objects of other frames)."""
        enc = None
        out = SpatialVLMOutput()
        if pixel_values is not None:
            enc = self.encode(pixel_values, depth)
            out.encoder_tokens = enc.patch_tokens
            self.dense_heads(enc, out)
        if self.language_head is not None and objects is not None:
            out.object_tokens, out.pair_tokens, out.color_logits = self.object_tokens(enc, objects)
            if qa is not None:
                out.answer_logits, out.latent_states = self.answer_logits(
                    out.object_tokens, objects.mask, out.pair_tokens, objects.pair_mask, qa, hidden_cot_k)
                if qa.answer_labels is not None:
                    out.loss = F.cross_entropy(out.answer_logits.flatten(0, 1).float(), qa.answer_labels.flatten(),
                                               ignore_index=-100)
        return out

    def num_parameters_m(self) -> float:
        return sum(p.numel() for p in self.parameters()) / 1e6
