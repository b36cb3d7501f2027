"""(a) The embedded teacher: a larger SpatialVLM trained on ground truth (`spatial-vlm train`)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from spatial_vlm_ros.inference.detection_decode import decode_centernet
from spatial_vlm_ros.inference.engine import load_model
from spatial_vlm_ros.model.tokenizer import save_tokenizer

from ..batching import TrainingData, load_mentions
from ..cache import load_features, load_images
from .precomputed import TEACHER_FORMAT


class EmbeddedTeacher:
    def __init__(self, path: Path | str, device: str = "cpu"):
        self.path = Path(path)
        self.model, self.tokenizer = load_model(self.path)
        self.device = torch.device("cuda" if device.startswith("cuda") and torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        n = sum(p.numel() for p in self.model.parameters())
        self.source = f"embedded SpatialVLM teacher ({n / 1e6:.2f} M parameters, {self.path})"

    @torch.inference_mode()
    def dump(self, split_dir: Path | str, out_dir: Path | str, student_tokenizer=None, batch_size: int = 16,
             top_k: int = 8, limit: int = 0, score_threshold: float = 0.3, dense_limit: int = 0,
             proposal_share: float = 0.0, answers_only: bool = False) -> Path:
        """Answers (teacher-forced on the reference answer, top-k token log-probabilities at every
        answer position) for every frame, on the features the student will train on
        (`proposal_share`); depth at half the teacher's input size and decoded detections for the first
        `dense_limit` frames (0 = all), the expensive part on a CPU, unless `answers_only`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg = self.model.config
        feats = load_features(split_dir, cfg.max_objects, limit, desc="teacher", proposal_share=proposal_share)
        answers_only = answers_only and not cfg.use_roi_features
        images = None if answers_only else load_images(split_dir, cfg.image_width, cfg.image_height, feats.categories,
                                                       limit, desc="teacher")
        data = TrainingData(feats, images, self.tokenizer, cfg, mentions=load_mentions(split_dir))
        ids_all, depth_all = [], []
        with (out / "answers.jsonl").open("w") as fa, (out / "detections.jsonl").open("w") as fd:
            for start in tqdm(range(0, len(data), batch_size), desc="teacher outputs", unit="batch"):
                idx = np.arange(start, min(start + batch_size, len(data)))
                with_dense = not answers_only and (dense_limit <= 0 or start < dense_limit)
                batch = data.batch(idx, images=with_dense or cfg.use_roi_features).to(self.device)
                dense = self.model(batch.pixel_values, batch.depth) if with_dense else None
                if batch.qa.image_index.numel() == 0:
                    top = None
                else:
                    lang = self.model(batch.pixel_values if cfg.use_roi_features else None,
                                      batch.depth if cfg.use_roi_features else None, batch.objects, batch.qa)
                    top = lang.answer_logits.float().log_softmax(-1).topk(min(top_k, lang.answer_logits.shape[-1]), dim=-1)
                labels = batch.qa.answer_labels
                row = 0
                for b, i in enumerate(idx):
                    sid = feats.ids[i]
                    for q in feats.qa[i]:
                        n_pos = int((labels[row] != -100).sum())
                        steps = [[[self.tokenizer.convert_ids_to_tokens(int(t)), round(float(v), 4)]
                                  for t, v in zip(top.indices[row, p], top.values[row, p], strict=False)] for p in range(n_pos)]
                        fa.write(json.dumps({"sample_id": sid, "question": q["question"], "answer": q["answer"],
                                             "top_logprobs": steps}) + "\n")
                        row += 1
                    if dense is None:
                        continue
                    boxes = decode_centernet(dense.heatmap[b].cpu(), dense.box_size[b].cpu(), dense.box_offset[b].cpu(),
                                             dense.center_depth[b].cpu(), score_threshold, cfg.max_objects)
                    fd.write(json.dumps({"sample_id": sid, "detections": [
                        {"category": cfg.categories[x.category], "box": [round(float(v), 4) for v in x.box],
                         "score": round(x.score, 4)} for x in boxes]}) + "\n")
                    d = dense.depth[b, 0].float().cpu().numpy()
                    depth_all.append(cv2.resize(d, (cfg.image_width // 2, cfg.image_height // 2),
                                                interpolation=cv2.INTER_AREA).astype(np.float16))
                    ids_all.append(sid)
        if depth_all:
            np.savez(out / "depth.npz", ids=np.array(ids_all), depth=np.stack(depth_all))
        save_tokenizer(self.tokenizer, out)  # same vocabulary: the student can match token distributions
        (out / "teacher_meta.json").write_text(json.dumps({"format": TEACHER_FORMAT, "teacher": self.source,
                                                           "top_k": top_k, "split": str(split_dir)}, indent=1))
        return out
