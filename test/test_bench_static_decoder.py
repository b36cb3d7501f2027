"""StaticAnswerDecoder on the CPU: same greedy ids as transformers `generate`, clean errors.

The CUDA-graph modes replay exactly these step functions, so equality here (and the fullgraph trace of
the step under torch.compile) is what the GPU engine's correctness rests on."""
from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from spatial_vlm_ros.inference.static_decoder import FusedGatedMLP, StaticAnswerDecoder, fuse_gated_mlps, unfuse


def _tiny(kind: str = "llama"):
    torch.manual_seed(0)
    common = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = (LlamaForCausalLM(LlamaConfig(**common)) if kind == "llama" else Qwen2ForCausalLM(Qwen2Config(**common)))
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model.eval()


def _eager_ids(model, embeds, n):
    with torch.inference_mode():
        return model.generate(inputs_embeds=embeds, max_new_tokens=n, do_sample=False)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_static_ids_equal_eager_generate(kind):
    model = _tiny(kind)
    decoder = StaticAnswerDecoder(model, max_prompt_len=40, max_new_tokens=10)
    assert decoder.mode == "eager"  # auto on a CPU
    for prompt_len, n in ((23, 10), (7, 4), (40, 1)):
        embeds = torch.randn(1, prompt_len, 64, generator=torch.Generator().manual_seed(prompt_len))
        out = decoder.generate(embeds, max_new_tokens=n)
        assert out.num_tokens == n and out.token_ids.shape == (1, n)
        assert torch.equal(out.token_ids, _eager_ids(model, embeds, n))


def test_compiled_step_traces_as_one_graph_and_matches():
    # fullgraph=True: any graph break inside the step would raise here, long before a GPU sees it.
    model = _tiny()
    embeds = torch.randn(1, 19, 64, generator=torch.Generator().manual_seed(3))
    decoder = StaticAnswerDecoder(model, max_prompt_len=24, max_new_tokens=8, mode="compiled",
                                  compile_backend="aot_eager")
    out = decoder.generate(embeds)
    assert out.mode == "compiled"
    assert torch.equal(out.token_ids, _eager_ids(model, embeds, 8))


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_fused_gated_mlp_same_outputs_and_reversible(kind):
    model = _tiny(kind)
    embeds = torch.randn(1, 9, 64, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        before = model(inputs_embeds=embeds).logits
    swapped = fuse_gated_mlps(model)
    assert len(swapped) == 2 and all(isinstance(layer.mlp, FusedGatedMLP) for layer in model.model.layers)
    with torch.inference_mode():
        fused = model(inputs_embeds=embeds).logits
    torch.testing.assert_close(fused, before)
    decoder = StaticAnswerDecoder(model, max_prompt_len=9, max_new_tokens=5, mode="compiled",
                                  compile_backend="aot_eager", compile_prefill=True)
    fused_ids = decoder.generate(embeds).token_ids
    unfuse(swapped)
    assert not any(isinstance(layer.mlp, FusedGatedMLP) for layer in model.model.layers)
    unfused_ids = _eager_ids(model, embeds, 5)
    assert torch.equal(fused_ids, unfused_ids)


def test_early_stop_on_eos():
    model = _tiny()
    embeds = torch.randn(1, 12, 64, generator=torch.Generator().manual_seed(5))
    reference = _eager_ids(model, embeds, 12)[0]
    eos = int(reference[2])
    decoder = StaticAnswerDecoder(model, max_prompt_len=12, max_new_tokens=12, eos_token_id=eos, stop_check_interval=2)
    out = decoder.generate(embeds)
    assert out.stopped_early and out.num_tokens < 12
    assert eos in out.token_ids[0].tolist()
    assert torch.equal(out.token_ids[0], reference[: out.num_tokens])


def test_bad_inputs_raise_value_error():
    model = _tiny()
    decoder = StaticAnswerDecoder(model, max_prompt_len=8, max_new_tokens=4)
    with pytest.raises(ValueError, match="prompt length"):
        decoder.generate(torch.randn(1, 9, 64))
    with pytest.raises(ValueError, match="does not match"):
        decoder.generate(torch.randn(1, 4, 32))
    with pytest.raises(ValueError, match="inputs_embeds"):
        decoder.generate(torch.randn(4, 64))
    with pytest.raises(ValueError, match="max_new_tokens"):
        decoder.generate(torch.randn(1, 4, 64), max_new_tokens=5)
    with pytest.raises(ValueError, match="no prefill"):
        decoder.decode(1)
    decoder.prefill(torch.randn(1, 4, 64))
    with pytest.raises(ValueError, match="exceeds"):
        decoder.decode(4)
    with pytest.raises(ValueError, match="mode"):
        StaticAnswerDecoder(model, max_prompt_len=8, mode="warp")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal of CUDA-only modes")
def test_cuda_only_modes_refused_on_cpu():
    with pytest.raises(ValueError, match="CUDA"):
        StaticAnswerDecoder(_tiny(), max_prompt_len=8, mode="cuda_graph")
