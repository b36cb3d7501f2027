"""Cached split -> training batches: input tensors, ground-truth targets and (optionally) teacher targets."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from spatial_vlm_ros.inference.lm_inputs import answer_ids, build_qa, collate_objects, focus_slots, question_ids
from spatial_vlm_ros.model import IMAGE_MEAN, IMAGE_STD, ObjectInputs, QAInputs

from .cache import SplitFeatures, SplitImages

CATEGORY_SMOOTHING = 0.1


@dataclass
class DetectionTargets:
    heatmap: torch.Tensor  # (B, C, h, w) gaussian peaks in [0, 1]
    index: torch.Tensor  # (K, 3) long: image, row, column of each object centre
    size: torch.Tensor  # (K, 2) fractions of the image
    offset: torch.Tensor  # (K, 2) in cells
    log_depth: torch.Tensor  # (K,)


@dataclass
class TeacherTargets:
    """Soft targets from a teacher, aligned with the batch."""

    answer_topk_ids: Optional[torch.Tensor] = None  # (M, La, k) long, -1 = none
    answer_topk_logprobs: Optional[torch.Tensor] = None  # (M, La, k)
    answer_has_soft: Optional[torch.Tensor] = None  # (M,) bool
    depth: Optional[torch.Tensor] = None  # (B, 1, H, W) metres, 0 = none
    heatmap: Optional[torch.Tensor] = None  # (B, C, h, w)


@dataclass
class Batch:
    """A perception part (images and dense/detection targets) and a language part (object/pair slots
    and questions). Either may be None; with RoI features both come from the same frames."""

    pixel_values: Optional[torch.Tensor] = None
    depth: Optional[torch.Tensor] = None  # measured depth input (zeros where dropped)
    gt_depth: Optional[torch.Tensor] = None  # (B, 1, H, W)
    segmentation: Optional[torch.Tensor] = None  # (B, H, W) long
    detection: Optional[DetectionTargets] = None
    objects: Optional[ObjectInputs] = None
    color_labels: Optional[torch.Tensor] = None  # (B, N) long, -1 = unknown / padding
    qa: Optional[QAInputs] = None
    qa_types: list[str] = field(default_factory=list)
    teacher: TeacherTargets = field(default_factory=TeacherTargets)
    qa_keys: list[tuple[str, str]] = field(default_factory=list)  # (frame id, question) of each QA row

    def to(self, device) -> Batch:
        def mv(x):
            if x is None:
                return None
            if isinstance(x, torch.Tensor):
                return x.to(device)
            if isinstance(x, (DetectionTargets, TeacherTargets)):
                return type(x)(*(mv(getattr(x, f)) for f in x.__dataclass_fields__))
            return x.to(device)
        return Batch(*(getattr(self, f) if f in ("qa_types", "qa_keys") else mv(getattr(self, f))
                       for f in self.__dataclass_fields__))


def load_mentions(split_dir) -> dict[tuple[str, str], tuple[str, Optional[str]]]:
    """(frame id, question) -> the ids of the objects it names, from the split's ground truth."""
    from spatial_vlm_training.data.sample import iter_samples

    return {(s.id, q.question): (q.subject, q.object) for s in iter_samples(split_dir) for q in s.qa}


class TrainingData:
    def __init__(self, features: SplitFeatures, images: Optional[SplitImages], tokenizer, model_config, teacher=None,
                 mentions: Optional[dict] = None):
        self.features, self.images, self.tokenizer, self.cfg = features, images, tokenizer, model_config
        self.mentions = mentions or {}  # (frame id, question) -> (subject id, object id or None)
        self.teacher = teacher  # PrecomputedTeacher aligned by sample id, or None
        self.n_cat = len(model_config.categories)
        # Categories of the data are mapped onto the model's list by name.
        self.cat_map = np.array([model_config.categories.index(c) if c in model_config.categories else -1
                                 for c in features.categories] + [-1])
        self.col_map = np.array([model_config.colors.index(c) if c in model_config.colors else -1
                                 for c in features.colors] + [-1])
        self.index_of = {sid: i for i, sid in enumerate(features.ids)}
        self.q_ids = [question_ids(tokenizer, [q["question"] for q in qa]) for qa in features.qa]
        self.a_ids = [answer_ids(tokenizer, [q["answer"] for q in qa], model_config.max_answer_tokens) for qa in features.qa]

    def __len__(self) -> int:
        return len(self.features.ids)

    def batch(self, indices, rng: Optional[np.random.Generator] = None, depth_dropout: float = 0.0,
              lang_indices=None, images: bool = True, max_questions: int = 0) -> Batch:
        """Perception part from `indices` (when `images`), language part from `lang_indices`
        (default: the same frames)."""
        batch = Batch()
        idx = np.asarray(indices)
        if images and len(idx):
            self._perception(batch, idx, rng, depth_dropout)
        lidx = idx if lang_indices is None else np.asarray(lang_indices)
        if len(lidx):
            self._language(batch, lidx, rng if max_questions > 0 else None, max_questions)
        if self.teacher is not None:
            self.teacher.fill(batch, [self.features.ids[i] for i in idx] if images else [],
                              [self.features.ids[i] for i in lidx], self)
        return batch

    def _perception(self, batch: Batch, idx: np.ndarray, rng, depth_dropout: float) -> None:
        im = self.images
        rgb = torch.from_numpy(im.rgb[idx]).float().div(255).permute(0, 3, 1, 2)
        batch.pixel_values = (rgb - torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
        depth = torch.from_numpy(im.depth[idx].astype(np.float32))[:, None]
        if rng is not None and depth_dropout > 0:
            drop = torch.from_numpy(rng.random(len(idx)) < depth_dropout)
            depth[drop] = 0.0
        batch.depth = depth
        batch.gt_depth = torch.from_numpy(im.gt_depth[idx].astype(np.float32))[:, None]
        seg_raw = im.segmentation[idx].astype(np.int64)
        seg_lut = np.concatenate([[0], self.cat_map[:-1] + 1]).clip(min=0)
        batch.segmentation = torch.from_numpy(seg_lut[np.clip(seg_raw, 0, len(seg_lut) - 1)])
        rows = []
        for b, i in enumerate(idx):
            o = self.features.objects[i]
            cats = self.cat_map[o["category"]] if len(o["category"]) else np.zeros(0, np.int64)
            rows += [(b, box, c, d) for box, c, d in zip(o["boxes"], cats, o["center_depth"], strict=False)]
        batch.detection = self.detection_targets(rows, len(idx))

    def _language(self, batch: Batch, idx: np.ndarray, rng=None, max_questions: int = 0) -> None:
        """Object/pair slots and questions of frames `idx`; with `rng`, at most `max_questions` random
        questions per frame (the LM's cost grows with questions, its signal saturates sooner)."""
        cfg = self.cfg
        items, colors, q_rows, a_rows, img_index, types, focus = [], [], [], [], [], [], []
        for b, i in enumerate(idx):
            o = self.features.objects[i]
            slot = {oid: k for k, oid in enumerate(o["object_ids"])}
            cats = self.cat_map[o["category"]] if len(o["category"]) else np.zeros(0, np.int64)
            onehot = np.full((len(cats), self.n_cat), CATEGORY_SMOOTHING / self.n_cat, np.float32)
            onehot[np.arange(len(cats)), cats] += 1 - CATEGORY_SMOOTHING
            items.append({"boxes": o["jit_boxes"], "category_scores": onehot, "color_features": o["color_features"],
                          "geometry": o["geometry"], "pair_index": o["pair_index"], "pair_features": o["pair_features"]})
            colors.append(self.col_map[o["color"]] if len(o["color"]) else np.zeros(0, np.int64))
            keep = range(len(self.q_ids[i]))
            if rng is not None and len(keep) > max_questions:
                keep = sorted(rng.choice(len(keep), max_questions, replace=False).tolist())
            for k in keep:
                q_rows.append(self.q_ids[i][k])
                a_rows.append(self.a_ids[i][k])
                img_index.append(b)
                types.append(self.features.qa[i][k]["type"])
                subj, obj = self.mentions.get((self.features.ids[i], self.features.qa[i][k]["question"]), (None, None))
                focus.append(focus_slots(o["pair_index"], slot.get(subj, -1), slot.get(obj, -1)))
            batch.qa_keys.extend((self.features.ids[i], self.features.qa[i][k]["question"]) for k in keep)
        batch.objects = collate_objects(items, self.n_cat)
        batch.color_labels = torch.full(batch.objects.mask.shape, -1, dtype=torch.long)
        for b, c in enumerate(colors):
            batch.color_labels[b, : len(c)] = torch.from_numpy(np.asarray(c, np.int64))
        batch.qa = build_qa(img_index, q_rows, a_rows, cfg.pad_token_id, cfg.answer_token_id, cfg.eos_token_id, focus)
        batch.qa_types = types

    def detection_grid(self) -> tuple[int, int]:
        s = self.cfg.detection_stride
        return self.cfg.image_height // s, self.cfg.image_width // s

    def detection_targets(self, rows, batch_size: int, scores=None) -> DetectionTargets:
        h, w = self.detection_grid()
        heat = np.zeros((batch_size, self.n_cat, h, w), np.float32)
        index, size, offset, logd = [], [], [], []
        ys, xs = np.mgrid[0:h, 0:w]
        for k, (b, box, c, d) in enumerate(rows):
            if c < 0:
                continue
            cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
            bw, bh = (box[2] - box[0]) * w, (box[3] - box[1]) * h
            col, row = min(int(cx), w - 1), min(int(cy), h - 1)
            sx, sy = max(bw / 6, 0.6), max(bh / 6, 0.6)
            g = np.exp(-((xs - col) ** 2) / (2 * sx**2) - ((ys - row) ** 2) / (2 * sy**2))
            peak = 1.0 if scores is None else float(scores[k])
            heat[b, c] = np.maximum(heat[b, c], g * peak)
            index.append((b, row, col))
            size.append((box[2] - box[0], box[3] - box[1]))
            offset.append((cx - col, cy - row))
            logd.append(np.log(max(float(d), 0.05)))
        return DetectionTargets(torch.from_numpy(heat), torch.tensor(index, dtype=torch.long).reshape(-1, 3),
                                torch.tensor(size, dtype=torch.float32).reshape(-1, 2),
                                torch.tensor(offset, dtype=torch.float32).reshape(-1, 2),
                                torch.tensor(logd, dtype=torch.float32).reshape(-1))
