"""Answer accuracy with ground-truth object boxes (a fast training-time metric; the full evaluation
with detection runs through spatial_vlm_training/eval)."""
from __future__ import annotations

from collections import defaultdict
from typing import Optional

import numpy as np
import torch

from .batching import TrainingData


@torch.inference_mode()
def greedy_answers(model, tokenizer, object_tokens, object_mask, pair_tokens, pair_mask, batch_qa,
                   hidden_cot_k: Optional[int] = None) -> list[str]:
    cfg = model.config
    m = batch_qa.image_index.shape[0]
    answers: list[list[int]] = [[] for _ in range(m)]
    done = np.zeros(m, bool)
    for _ in range(cfg.max_answer_tokens):
        seqs = [[cfg.answer_token_id, *a] for a in answers]
        width = max(len(s) for s in seqs)
        batch_qa.answer_input_ids = torch.tensor([s + [cfg.pad_token_id] * (width - len(s)) for s in seqs],
                                                 device=batch_qa.image_index.device)
        batch_qa.answer_mask = torch.tensor([[True] * len(s) + [False] * (width - len(s)) for s in seqs],
                                            device=batch_qa.image_index.device)
        logits, _ = model.answer_logits(object_tokens, object_mask, pair_tokens, pair_mask, batch_qa, hidden_cot_k)
        nxt = logits[torch.arange(m), torch.tensor([len(a) for a in answers])].argmax(-1).tolist()
        for i, tok in enumerate(nxt):
            if done[i]:
                continue
            if tok == cfg.eos_token_id:
                done[i] = True
            else:
                answers[i].append(tok)
        if done.all():
            break
    return [tokenizer.decode(a, skip_special_tokens=True).strip() for a in answers]


@torch.inference_mode()
def qa_accuracy(model, data: TrainingData, batch_size: int = 16, hidden_cot_k: Optional[int] = None,
                images: Optional[bool] = None) -> dict[str, float]:
    """Greedy answers against the references, per question type. `images=False` skips the image
    heads (possible when the object tokens do not use RoI features)."""
    if images is None:
        images = model.config.use_roi_features
    device = next(model.parameters()).device
    correct: dict[str, list[bool]] = defaultdict(list)
    was_training = model.training
    model.eval()
    for start in range(0, len(data), batch_size):
        idx = np.arange(start, min(start + batch_size, len(data)))
        batch = data.batch(idx, images=images).to(device)
        if batch.qa.image_index.numel() == 0:
            continue
        out = model(batch.pixel_values, batch.depth, batch.objects, None) if images else model(objects=batch.objects)
        qa = batch.qa  # greedy decoding replaces the answer inputs step by step
        preds = greedy_answers(model, data.tokenizer, out.object_tokens, batch.objects.mask, out.pair_tokens,
                               batch.objects.pair_mask, qa, hidden_cot_k)
        truths = [q["answer"].lower().strip() for i in idx for q in data.features.qa[i]]
        for p, t, typ in zip(preds, truths, batch.qa_types, strict=False):
            correct[typ].append(p == t)
    model.train(was_training)
    res = {f"acc_{k}": round(float(np.mean(v)), 4) for k, v in sorted(correct.items())}
    allv = [x for v in correct.values() for x in v]
    res["acc_all"] = round(float(np.mean(allv)), 4) if allv else 0.0
    return res
