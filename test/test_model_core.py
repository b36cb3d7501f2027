"""SpatialVLM: shapes, Hidden CoT switch, prefix sharing, save/load round trip, config errors."""
from __future__ import annotations

import pytest
import torch

from spatial_vlm_ros.inference import object_features
from spatial_vlm_ros.model import ObjectInputs, QAInputs, SpatialVLM, SpatialVLMConfig
from spatial_vlm_ros.model import configuration_spatial_vlm as cfgmod

TINY = dict(image_height=32, image_width=48, patch_size=8, encoder_dim=32, encoder_depth=2, encoder_heads=2,
            dpt_dim=8, detection_dim=8, lm_hidden_size=32, lm_layers=1, lm_heads=2, lm_intermediate_size=64,
            hidden_cot_k=3, vocab_size=40)


def inputs(b=2, n=3, p=6, m=5):
    g = torch.Generator().manual_seed(0)
    objs = ObjectInputs(torch.rand(b, n, 4, generator=g), torch.softmax(torch.randn(b, n, 12, generator=g), -1),
                        torch.randn(b, n, 7, generator=g), torch.randn(b, n, 11, generator=g),
                        torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)[:b],
                        torch.randint(0, n, (b, p, 2), generator=g), torch.randn(b, p, 12, generator=g),
                        torch.ones(b, p, dtype=torch.bool))
    qm = torch.ones(m, 7, dtype=torch.bool)
    qm[0, 5:] = False
    qa = QAInputs(torch.tensor([0, 0, 1, 1, 1])[:m], torch.randint(5, 40, (m, 7), generator=g), qm,
                  torch.randint(5, 40, (m, 3), generator=g), torch.ones(m, 3, dtype=torch.bool),
                  torch.randint(5, 40, (m, 3), generator=g))
    pix = torch.randn(b, 3, 32, 48, generator=g)
    depth = torch.rand(b, 1, 32, 48, generator=g) * 3
    return pix, depth, objs, qa


@pytest.mark.parametrize("roi", [True, False])
def test_forward_shapes_and_named_outputs(roi):
    model = SpatialVLM(SpatialVLMConfig(**TINY, use_roi_features=roi)).eval()
    pix, depth, objs, qa = inputs()
    out = model(pix, depth, objs, qa)
    assert out.depth.shape == (2, 1, 32, 48) and (out.depth > 0).all()
    assert out.depth_confidence.min() >= 0 and out.depth_confidence.max() <= 1
    assert out.segmentation_logits.shape == (2, 13, 32, 48)
    assert out.heatmap.shape == (2, 12, 8, 12)
    assert out.answer_logits.shape == (5, 3, 40)
    assert out.latent_states.shape == (5, 3, 32)
    assert torch.isfinite(out.loss)


def test_hidden_cot_k_switch_and_limits():
    model = SpatialVLM(SpatialVLMConfig(**TINY)).eval()
    pix, depth, objs, qa = inputs()
    with torch.no_grad():
        k3 = model(pix, depth, objs, qa)
        k0 = model(pix, depth, objs, qa, hidden_cot_k=0)
    assert k3.latent_states.shape[1] == 3 and k0.latent_states.shape[1] == 0
    assert not torch.allclose(k3.answer_logits, k0.answer_logits)  # the latents take part in the answer
    with pytest.raises(ValueError, match="trained with K=3"):
        model(pix, depth, objs, qa, hidden_cot_k=4)


def test_language_path_runs_without_images_and_with_depth_absent():
    model = SpatialVLM(SpatialVLMConfig(**TINY, use_roi_features=False)).eval()
    pix, _, objs, qa = inputs()
    out = model(objects=objs, qa=qa)
    assert out.depth is None and out.answer_logits.shape == (5, 3, 40)
    assert model(pix, None).depth.shape == (2, 1, 32, 48)


def test_shared_prefix_equals_full_sequence():
    model = SpatialVLM(SpatialVLMConfig(**TINY, use_roi_features=False)).eval()
    _, _, objs, qa = inputs()
    with torch.no_grad():
        out = model(objects=objs, qa=qa)
        ii, emb, m = qa.image_index, model.language_head.embed_tokens, 5
        bos = emb(torch.full((m, 1), model.config.bos_token_id))
        seq = torch.cat([bos, out.object_tokens[ii], out.pair_tokens[ii], emb(qa.question_ids), model.hidden_cot(m),
                         emb(qa.answer_input_ids)], 1)
        mask = torch.cat([torch.ones(m, 1, dtype=torch.bool), objs.mask[ii], objs.pair_mask[ii], qa.question_mask,
                          torch.ones(m, 3, dtype=torch.bool), qa.answer_mask], 1)
        full, _ = model.language_head(seq, mask.long())
    assert torch.allclose(full[:, -3:], out.answer_logits, atol=1e-5)


def test_save_load_round_trip_identical(tmp_path):
    model = SpatialVLM(SpatialVLMConfig(**TINY)).eval()
    pix, depth, objs, qa = inputs()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    again = SpatialVLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        a, b = model(pix, depth, objs, qa), again(pix, depth, objs, qa)
    for name in ("depth", "heatmap", "answer_logits", "segmentation_logits"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("bad, match", [
    (dict(image_width=50), "not a multiple of patch_size"),
    (dict(encoder_dim=30, encoder_heads=4), "not divisible"),
    (dict(hidden_cot_k=-1), "hidden_cot_k"),
    (dict(lm_type="gpt9"), "lm_type"),
])
def test_inconsistent_config_is_one_line_error(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        SpatialVLMConfig(**{**TINY, **bad})
    assert "\n" not in str(info.value)


def test_feature_sizes_agree_between_model_and_inference():
    assert cfgmod.OBJECT_GEOMETRY_DIM == object_features.OBJECT_GEOMETRY_DIM
    assert cfgmod.OBJECT_COLOR_DIM == object_features.OBJECT_COLOR_DIM
    assert cfgmod.PAIR_FEATURE_DIM == object_features.PAIR_FEATURE_DIM


def test_focus_tokens_copy_the_mentioned_objects():
    model = SpatialVLM(SpatialVLMConfig(**TINY, use_roi_features=False, use_focus_tokens=True)).eval()
    _, _, objs, qa = inputs()
    with torch.no_grad():
        none = model(objects=objs, qa=qa).answer_logits
        qa.focus = torch.tensor([[0, 1, 2, 3]] * 5)
        focused = model(objects=objs, qa=qa).answer_logits
        qa.focus = torch.tensor([[1, 0, 3, 2]] * 5)
        swapped = model(objects=objs, qa=qa).answer_logits
    assert focused.shape == none.shape
    assert not torch.allclose(focused, none) and not torch.allclose(focused, swapped)


def test_mentions_follow_the_question_order():
    from spatial_vlm_ros.inference.lm_inputs import focus_slots, mentioned

    descs = ["blue mug", "red mug", "wooden table"]
    assert mentioned("Is the red mug on the wooden table?", descs) == [1, 2]
    assert mentioned("What is the blue mug resting on?", descs) == [0]
    cats = ["mug", "mug", "table"]
    # A colour we named differently still finds the only table, but never guesses between two mugs.
    assert mentioned("Is the red mug on the gray table?", descs, cats) == [1, 2]
    assert mentioned("Is the green mug on the gray table?", descs, cats) == [2]
    # A category we named nothing as ("desk") goes to the object the detector found likeliest to be one,
    # the same colour first; categories we did name are never guessed.
    scores = [{"mug": 0.9}, {"mug": 0.9}, {"table": 0.7, "desk": 0.3}]
    unlikely = [*scores[:2], {"table": 0.7, "desk": 0.005}]  # under mentions.MIN_CATEGORY_SCORE
    assert mentioned("Is the red mug on the wooden desk?", descs, cats, scores) == [1, 2]
    assert mentioned("Is the green mug on the desk?", descs, cats, scores) == [2]
    assert mentioned("Is the red mug on the desk?", descs, cats, unlikely) == [1]
    assert focus_slots(torch.tensor([[0, 1], [1, 0], [1, 2], [2, 1]]).numpy(), 1, 2) == (1, 2, 2, 3)
    assert focus_slots(torch.zeros((0, 2)).numpy(), 0, -1) == (0, -1, -1, -1)


def test_cache_keyword_follows_the_installed_transformers():
    """transformers 5.2x renamed `past_key_values` to `cache`; passing the wrong one is swallowed by
    **kwargs and the object prefix silently vanishes (it did on a GPU box with 5.17)."""
    from spatial_vlm_ros.model.heads.language_head import cache_kwarg

    class Old(torch.nn.Module):
        def forward(self, inputs_embeds=None, past_key_values=None, **kwargs):
            return inputs_embeds

    class New(torch.nn.Module):
        def forward(self, inputs_embeds=None, cache=None, **kwargs):
            return inputs_embeds

    class Neither(torch.nn.Module):
        def forward(self, inputs_embeds=None, **kwargs):
            return inputs_embeds

    assert cache_kwarg(Old()) == "past_key_values" and cache_kwarg(New()) == "cache"
    with pytest.raises(TypeError, match="Neither"):
        cache_kwarg(Neither())
    model = SpatialVLM(SpatialVLMConfig(**TINY, use_roi_features=False))
    assert model.language_head._cache == cache_kwarg(model.language_head.lm.model)


def test_answers_depend_on_objects_outside_the_focus():
    """The objects and pairs reach the answer through the shared prefix, not only the focus copies."""
    model = SpatialVLM(SpatialVLMConfig(**TINY, use_roi_features=False, use_focus_tokens=False)).eval()
    _, _, objs, qa = inputs()
    with torch.no_grad():
        a = model(objects=objs, qa=qa).answer_logits
        objs.geometry = objs.geometry + 1.0
        b = model(objects=objs, qa=qa).answer_logits
    assert not torch.allclose(a, b, atol=1e-4)
