"""The three teacher implementations and the precomputed format they share."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spatial_vlm_training.distill.teachers import EmbeddedTeacher, HFVLMTeacher, PrecomputedTeacher, load_teacher

TINY_YAML = "config/train_tiny_test.yaml"


@pytest.fixture(scope="module")
def split(generated_split):
    return generated_split("train", 777, 3)


@pytest.fixture(scope="module")
def embedded_dir(split, tmp_path_factory, repo_root):
    from spatial_vlm_training.distill.config import TrainConfig
    from spatial_vlm_training.distill.trainer import train

    out = tmp_path_factory.mktemp("teacher_model")
    train(TrainConfig.from_yaml(repo_root / TINY_YAML, {"max_steps": 2}), split, out, progress=False)
    return out


def test_embedded_teacher_dump_and_student_targets(split, embedded_dir, tmp_path, repo_root):
    teacher = load_teacher(embedded_dir)
    assert isinstance(teacher, EmbeddedTeacher)
    dump = teacher.dump(split, tmp_path / "outputs", top_k=4)
    pre = load_teacher(dump)
    assert isinstance(pre, PrecomputedTeacher) and pre.tokenizer is not None
    first = json.loads((dump / "answers.jsonl").read_text().splitlines()[0])
    assert len(first["top_logprobs"][0]) == 4 and first["top_logprobs"][-1]
    assert len(pre.depth) == 3 and len(pre.detections) == 3

    from spatial_vlm_training.distill.batching import TrainingData
    from spatial_vlm_training.distill.cache import load_features, load_images
    from spatial_vlm_training.distill.config import TrainConfig
    from spatial_vlm_training.distill.trainer import build_model_and_data

    cfg = TrainConfig.from_yaml(repo_root / TINY_YAML)
    model, tok, _ = build_model_and_data(cfg, split, pre.tokenizer)
    feats = load_features(split, model.config.max_objects)
    images = load_images(split, model.config.image_width, model.config.image_height, feats.categories)
    data = TrainingData(feats, images, tok, model.config, pre)
    batch = data.batch(np.arange(3))
    t = batch.teacher
    assert t.answer_has_soft.all() and t.answer_topk_ids.shape[-1] == 4
    assert t.depth.shape == batch.gt_depth.shape and (t.depth > 0).any()
    assert t.heatmap.shape == batch.detection.heatmap.shape


def test_precomputed_teacher_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="teacher_meta.json"):
        PrecomputedTeacher(tmp_path)
    (tmp_path / "teacher_meta.json").write_text('{"format": "svlm-teacher-1", "teacher": "x"}')
    (tmp_path / "answers.jsonl").write_text('{"sample_id": "a", "question": "q"}\n{broken\n')
    with pytest.raises(ValueError, match="answers.jsonl:2"):
        PrecomputedTeacher(tmp_path)
    (tmp_path / "teacher_meta.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="teacher_meta.json.*format"):
        PrecomputedTeacher(tmp_path)


def tiny_llava(path):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from spatial_vlm_ros.model.tokenizer import train_tokenizer

    tok = train_tokenizer(["is the red mug near the blue book ? yes no user assistant answer in a few words ."])
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0,
                       bos_token_id=2, eos_token_id=3)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=28, patch_size=14)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_hf_vlm_teacher_sequence_level_outputs(split, tmp_path):
    teacher = load_teacher(tiny_llava(tmp_path / "llava"))
    assert isinstance(teacher, HFVLMTeacher)
    text, steps = teacher.answer(np.zeros((48, 64, 3), np.uint8), "Is the red mug near the blue book?",
                                 max_new_tokens=3, top_k=3)
    assert isinstance(text, str) and len(steps) >= 1 and len(steps[0]) == 3
    dump = teacher.dump(split, tmp_path / "outputs", limit=1, max_new_tokens=2, top_k=2)
    pre = PrecomputedTeacher(dump)
    assert pre.tokenizer is None and len(pre.answers) > 0  # other vocabulary: sequence-level targets
