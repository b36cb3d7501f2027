"""Build a fresh SpatialVLM for a tokenizer, and save model + tokenizer as one folder."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .configuration_spatial_vlm import SpatialVLMConfig
from .modeling_spatial_vlm import SpatialVLM
from .tokenizer import ANS, BOS, EOS, PAD, UNK, save_tokenizer, train_tokenizer, word_ids

# Enough English for the relation questions the engine asks itself, before any data is seen.
BASE_TEXT = [
    "Is the a near the b? Is the a touching the b? Is the a on the b? Is the a far from the b?",
    "Which object is closest to the a? What is the a resting on? the floor yes no",
]


def tokenizer_for(texts: Iterable[str], categories: list[str], colors: list[str]):
    return train_tokenizer([*BASE_TEXT, *texts], extra_words=[*categories, *colors])


def new_model(tokenizer, **config_kwargs) -> SpatialVLM:
    config = SpatialVLMConfig(**config_kwargs)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (PAD, UNK, BOS, EOS, ANS)}
    config.vocab_size = len(tokenizer)
    config.pad_token_id, config.unk_token_id = ids[PAD], ids[UNK]
    config.bos_token_id, config.eos_token_id, config.answer_token_id = ids[BOS], ids[EOS], ids[ANS]
    config.category_token_ids = [word_ids(tokenizer, c) or [ids[UNK]] for c in config.categories]
    config.color_token_ids = [word_ids(tokenizer, c) or [ids[UNK]] for c in config.colors]
    return SpatialVLM(config)


def with_new_head(model: SpatialVLM, prefix: str) -> SpatialVLM:
    """A model built from `model.config` (just changed to add the head whose weights start with `prefix`)
    carrying every other weight of `model`; a head `model` already has under `prefix` starts fresh."""
    model.config.validate_spatial()
    fresh = SpatialVLM(model.config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(prefix) for k in missing):
        raise ValueError(f"weights do not match the config ({unexpected or missing})")
    return fresh.eval()


def save_model(model: SpatialVLM, tokenizer, out_dir: Path | str) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    save_tokenizer(tokenizer, out)
    return out
