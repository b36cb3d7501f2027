"""Teacher outputs read from disk - the format any teacher run writes, e.g. a 7B LLaVA-3D on a GPU
cluster, and the format the embedded and HF teachers here dump to.

A teacher folder holds:
- `teacher_meta.json`: {"format": "svlm-teacher-1", "teacher": "<name>", "top_k": k}
- `answers.jsonl`, one line per question: {"sample_id", "question", "answer",
  "top_logprobs": [[[token, logprob], ...] for each answer token, the end-of-answer included]}.
  `top_logprobs` may be empty (sequence-level distillation from the answer text only). Tokens are
  strings; when they are words of the student's vocabulary the student matches the distribution
  with a KL at temperature T, otherwise it learns the answer text.
- optional `depth.npz`: {"ids": (N,) str, "depth": (N, H, W) float16 metres, 0 = none}
- optional `detections.jsonl`: {"sample_id", "detections": [{"category", "box": [x0, y0, x1, y1]
  as fractions of the image, "score"}]}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from ..batching import Batch, TeacherTargets

TEACHER_FORMAT = "svlm-teacher-1"


class PrecomputedTeacher:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        meta_path = self.path / "teacher_meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: missing (not a precomputed teacher folder)")
        try:
            self.meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: corrupt JSON ({exc})") from exc
        if self.meta.get("format") != TEACHER_FORMAT:
            raise ValueError(f"{meta_path}: format {self.meta.get('format')!r}, expected {TEACHER_FORMAT!r}")
        self.source = str(self.meta.get("teacher", self.path.name))
        self.tokenizer = None
        if (self.path / "tokenizer" / "tokenizer.json").is_file():
            from spatial_vlm_ros.model.tokenizer import load_tokenizer

            self.tokenizer = load_tokenizer(self.path)
        self.answers: dict[tuple[str, str], dict] = {}
        ans = self.path / "answers.jsonl"
        if ans.is_file():
            with ans.open() as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        d = json.loads(line)
                        self.answers[(str(d["sample_id"]), str(d["question"]))] = d
                    except (json.JSONDecodeError, KeyError) as exc:
                        raise ValueError(f"{ans}:{lineno}: corrupt teacher answer ({exc})") from exc
        self.depth: dict[str, np.ndarray] = {}
        dp = self.path / "depth.npz"
        if dp.is_file():
            try:
                with np.load(dp) as z:
                    self.depth = {str(i): d for i, d in zip(z["ids"], z["depth"], strict=False)}
            except (OSError, KeyError, ValueError) as exc:
                raise ValueError(f"{dp}: corrupt teacher depth ({exc})") from exc
        self.detections: dict[str, list[dict]] = {}
        det = self.path / "detections.jsonl"
        if det.is_file():
            with det.open() as f:
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            d = json.loads(line)
                            self.detections[str(d["sample_id"])] = list(d["detections"])
                        except (json.JSONDecodeError, KeyError) as exc:
                            raise ValueError(f"{det}:{lineno}: corrupt teacher detections ({exc})") from exc

    def dump(self, split_dir, out_dir, student_tokenizer) -> Path:
        return self.path  # already on disk

    def fill(self, batch: Batch, image_ids: list[str], lang_ids: list[str], data) -> None:
        t = TeacherTargets()
        cfg = data.cfg
        if image_ids and self.depth:
            maps = [self._depth(i, cfg.image_width, cfg.image_height) for i in image_ids]
            t.depth = torch.from_numpy(np.stack(maps))[:, None]
        if image_ids and self.detections and batch.detection is not None:
            rows, scores = [], []
            for b, sid in enumerate(image_ids):
                for d in self.detections.get(sid, []):
                    if d.get("category") in cfg.categories:
                        rows.append((b, np.asarray(d["box"], np.float32), cfg.categories.index(d["category"]), 1.0))
                        scores.append(float(d.get("score", 1.0)))
            heat = data.detection_targets(rows, len(image_ids), scores).heatmap
            # Frames the teacher did not label keep the ground-truth peaks as their soft target.
            missing = torch.tensor([sid not in self.detections for sid in image_ids])
            heat[missing] = batch.detection.heatmap[missing]
            t.heatmap = heat
        if lang_ids and self.answers and batch.qa is not None:
            self._answers(t, batch, lang_ids, data)
        batch.teacher = t

    def _depth(self, sid: str, w: int, h: int) -> np.ndarray:
        d = self.depth.get(sid)
        if d is None:
            return np.zeros((h, w), np.float32)
        return cv2.resize(d.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)

    def _answers(self, t: TeacherTargets, batch: Batch, lang_ids: list[str], data) -> None:
        tok = data.tokenizer
        vocab = tok.get_vocab()
        eos = tok.eos_token
        labels = batch.qa.answer_labels
        m, la = labels.shape
        k = int(self.meta.get("top_k", 8))
        ids = torch.full((m, la, k), -1, dtype=torch.long)
        lps = torch.zeros((m, la, k))
        has = torch.zeros(m, dtype=torch.bool)
        for row, key in enumerate(batch.qa_keys):
            entry = self.answers.get(key)
            if entry is not None:
                has[row] = self._fill_row(entry, ids[row], lps[row], vocab, eos, tok)
        t.answer_topk_ids, t.answer_topk_logprobs, t.answer_has_soft = ids, lps, has

    @staticmethod
    def _fill_row(entry: dict, ids: torch.Tensor, lps: torch.Tensor, vocab: dict, eos: str, tok) -> bool:
        steps: Optional[list] = entry.get("top_logprobs") or None
        if steps is None:  # sequence-level: the teacher's answer text, as a one-hot distribution
            words = tok(entry.get("answer", ""), add_special_tokens=False)["input_ids"]
            steps = [[[tok.convert_ids_to_tokens(w), 0.0]] for w in words] + [[[eos, 0.0]]]
        any_soft = False
        for pos, cands in enumerate(steps[: ids.shape[0]]):
            j = 0
            for token, lp in cands:
                if j >= ids.shape[1]:
                    break
                tid = vocab.get(token, vocab.get(str(token).lower()))
                if tid is None:
                    continue
                ids[pos, j], lps[pos, j] = tid, float(lp)
                j += 1
                any_soft = True
        return any_soft
