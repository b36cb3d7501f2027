"""Tensors for the language head: object/pair slots per image and tokenised questions/answers.
Shared by the engine and the training batches so both build the LM input the same way."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from spatial_vlm_ros.model import ObjectInputs, QAInputs

from .mentions import Candidate, resolve

MAX_QUESTION_TOKENS = 32


def single_object_inputs(boxes: np.ndarray, category_scores: np.ndarray, color: np.ndarray, geometry: np.ndarray,
                         pair_index: np.ndarray, pair_features: np.ndarray) -> dict[str, np.ndarray]:
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4), "category_scores": np.asarray(category_scores, np.float32),
            "color_features": np.asarray(color, np.float32), "geometry": np.asarray(geometry, np.float32),
            "pair_index": np.asarray(pair_index, np.int64).reshape(-1, 2),
            "pair_features": np.asarray(pair_features, np.float32)}


def collate_objects(items: Sequence[dict[str, np.ndarray]], n_categories: int) -> ObjectInputs:
    """Pad per-image object and pair arrays into one ObjectInputs (at least one slot each)."""
    b = len(items)
    n = max(1, max(len(it["boxes"]) for it in items))
    p = max(1, max(len(it["pair_index"]) for it in items))
    geo_dim = items[0]["geometry"].shape[-1] if items[0]["geometry"].ndim == 2 else 11
    col_dim = items[0]["color_features"].shape[-1] if items[0]["color_features"].ndim == 2 else 7
    pf_dim = items[0]["pair_features"].shape[-1] if items[0]["pair_features"].ndim == 2 else 12
    out = ObjectInputs(
        boxes=torch.zeros(b, n, 4), category_scores=torch.zeros(b, n, n_categories),
        color_features=torch.zeros(b, n, col_dim), geometry=torch.zeros(b, n, geo_dim),
        mask=torch.zeros(b, n, dtype=torch.bool), pair_index=torch.zeros(b, p, 2, dtype=torch.long),
        pair_features=torch.zeros(b, p, pf_dim), pair_mask=torch.zeros(b, p, dtype=torch.bool),
    )
    for i, it in enumerate(items):
        k, q = len(it["boxes"]), len(it["pair_index"])
        if k:
            out.boxes[i, :k] = torch.from_numpy(it["boxes"])
            out.category_scores[i, :k] = torch.from_numpy(it["category_scores"])
            out.color_features[i, :k] = torch.from_numpy(it["color_features"])
            out.geometry[i, :k] = torch.from_numpy(it["geometry"])
            out.mask[i, :k] = True
        if q:
            out.pair_index[i, :q] = torch.from_numpy(it["pair_index"])
            out.pair_features[i, :q] = torch.from_numpy(it["pair_features"])
            out.pair_mask[i, :q] = True
    return out


def pad_ids(seqs: Sequence[Sequence[int]], pad: int, fill_label: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max((len(s) for s in seqs), default=1))
    ids = torch.full((len(seqs), width), pad if fill_label is None else fill_label, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.bool)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
            mask[i, : len(s)] = True
    return ids, mask


def question_ids(tokenizer, questions: Sequence[str]) -> list[list[int]]:
    return [tokenizer(q, add_special_tokens=False)["input_ids"][:MAX_QUESTION_TOKENS] for q in questions]


def answer_ids(tokenizer, answers: Sequence[str], max_tokens: int) -> list[list[int]]:
    return [tokenizer(a, add_special_tokens=False)["input_ids"][: max_tokens - 1] for a in answers]


def focus_slots(pair_index: np.ndarray, subject: int, obj: int) -> tuple[int, int, int, int]:
    """(subject slot, object slot, pair slot of (s, o), pair slot of (o, s)); -1 where unknown."""
    pairs = {tuple(p): k for k, p in enumerate(np.asarray(pair_index).reshape(-1, 2).tolist())}
    return (subject, obj, pairs.get((subject, obj), -1) if subject >= 0 and obj >= 0 else -1,
            pairs.get((obj, subject), -1) if subject >= 0 and obj >= 0 else -1)


def build_qa(image_index: Sequence[int], q_ids: Sequence[Sequence[int]], a_ids: Sequence[Sequence[int]] | None,
             pad_id: int, answer_token_id: int, eos_id: int,
             focus: Sequence[tuple[int, int, int, int]] | None = None) -> QAInputs:
    """Teacher forcing layout: input [ANS] a1 .. aL, labels a1 .. aL [EOS]. Without answers: input [ANS]."""
    qi, qm = pad_ids(q_ids, pad_id)
    m = len(q_ids)
    foc = torch.tensor([list(f) for f in focus], dtype=torch.long).reshape(m, 4) if focus is not None else None
    if a_ids is None:
        return QAInputs(torch.tensor(list(image_index), dtype=torch.long), qi, qm,
                        torch.full((m, 1), answer_token_id, dtype=torch.long), torch.ones(m, 1, dtype=torch.bool),
                        focus=foc)
    ai, am = pad_ids([[answer_token_id, *a] for a in a_ids], pad_id)
    labels, _ = pad_ids([[*a, eos_id] for a in a_ids], pad_id, fill_label=-100)
    return QAInputs(torch.tensor(list(image_index), dtype=torch.long), qi, qm, ai, am, labels, focus=foc)


def mentioned(question: str, descriptions: Sequence[str], categories: Sequence[str] = (),
              label_scores: Sequence[dict[str, float]] = (), color_scores: Sequence[dict[str, float]] = ()) -> list[int]:
    """Indices of the descriptions a question mentions, in order of appearance (`mentions.resolve`):
    whole descriptions first (longest wins), then "<colour> <category>" phrases by the detector's
    category and colour probabilities, one per object slot (`categories`, `label_scores`,
    `color_scores`: one entry per description, each optional)."""
    def at(seq, i, default):
        return seq[i] if i < len(seq) else default

    return resolve(question, [Candidate(d, at(categories, i, ""), d.split()[0] if d and categories else "",
                                        at(label_scores, i, {}), at(color_scores, i, {}))
                              for i, d in enumerate(descriptions)])
