"""The language head: a small causal LM (Qwen2 or Llama) built from config, reading visual object and
pair tokens as `inputs_embeds` before the question, the Hidden-CoT latents and the answer."""
from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM


def build_causal_lm(config) -> nn.Module:
    common = dict(
        vocab_size=config.vocab_size,
        hidden_size=config.lm_hidden_size,
        intermediate_size=config.lm_intermediate_size,
        num_hidden_layers=config.lm_layers,
        num_attention_heads=config.lm_heads,
        num_key_value_heads=config.lm_heads,
        max_position_embeddings=config.lm_max_positions,
        tie_word_embeddings=False,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
    )
    if config.lm_type == "llama":
        return LlamaForCausalLM(LlamaConfig(**common))
    return Qwen2ForCausalLM(Qwen2Config(**common))


def cache_kwarg(module: nn.Module) -> str:
    """The keyword `module.forward` takes its key/value cache by. transformers 5.2x renamed
    `past_key_values` to `cache`; the other name would vanish into **kwargs and the cache (here: the
    objects and pairs of the prefix) would be silently ignored."""
    params = inspect.signature(module.forward).parameters
    if "cache" in params:
        return "cache"
    if "past_key_values" in params:
        return "past_key_values"
    raise TypeError(f"{type(module).__name__}.forward takes no key/value cache argument")


class LanguageHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.lm = build_causal_lm(config)
        self._cache = cache_kwarg(self.lm.model)

    @property
    def embed_tokens(self) -> nn.Embedding:
        return self.lm.get_input_embeddings()

    def prefix_then_suffix(self, prefix: torch.Tensor, prefix_mask: torch.Tensor, index: torch.Tensor,
                           suffix: torch.Tensor, suffix_mask: torch.Tensor):
        """Run each distinct prefix once, then every suffix row against the cache of prefix[index[row]].
        -> (suffix logits (M, Ts, V), suffix last hidden states (M, Ts, H))."""
        tp = prefix.shape[1]
        pos = (prefix_mask.long().cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.lm.config)
        self.lm.model(inputs_embeds=prefix, attention_mask=prefix_mask.long(), position_ids=pos,
                      use_cache=True, cache_position=torch.arange(tp, device=prefix.device), **{self._cache: cache})
        cache.reorder_cache(index)
        full_mask = torch.cat([prefix_mask[index], suffix_mask], 1).long()
        spos = prefix_mask[index].long().sum(-1, keepdim=True) + suffix_mask.long().cumsum(-1) - 1
        out = self.lm(inputs_embeds=suffix, attention_mask=full_mask, position_ids=spos.clamp(min=0),
                      use_cache=True, output_hidden_states=True,
                      cache_position=torch.arange(tp, tp + suffix.shape[1], device=suffix.device), **{self._cache: cache})
        return out.logits, out.hidden_states[-1]

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor):
        """-> (logits (M, T, V), last hidden states (M, T, H))."""
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                      output_hidden_states=True, use_cache=False)
        return out.logits, out.hidden_states[-1]
