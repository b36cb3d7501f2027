"""A torch Dataset over an svlm-scenes-1 split: images and ground truth per frame, optionally resized.

Generic on purpose: it returns tensors and the plain ground-truth records; the model's own
collate/tensorisation (model engineer) turns them into batches.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .resize import resize_frame_arrays, resized_intrinsics
from .sample import SceneObject, SceneSample, SplitFormatError, read_meta


class SceneDataset(Dataset):
    """Map-style dataset streaming `samples.jsonl` by byte offset (only the index is held in memory).

    Each item is a dict:
      id, scene: str, int
      rgb: uint8 (3, H, W); depth: float32 (H, W) sensor metres, NaN = hole
      gt_depth: float32 (H, W) exact metres (NaN = nothing hit); instance: int64 (H, W), 0 = background
      intrinsics: CameraIntrinsics of the returned arrays; K: float32 (3, 3); up: float32 (3,)
      objects, relations, qa: the sample's records (box2d scaled to the returned size); description: str
    `size=(width, height)` resizes every image and keeps intrinsics and 2D boxes consistent.
    """

    def __init__(self, split_dir: Path | str, size: Optional[tuple[int, int]] = None, limit: Optional[int] = None,
                 with_gt: bool = True):
        self.root = Path(split_dir)
        self.meta = read_meta(self.root)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.with_gt = with_gt
        self._path = self.root / "samples.jsonl"
        if not self._path.is_file():
            raise SplitFormatError(f"{self._path}: missing")
        self._offsets: list[int] = []
        with self._path.open("rb") as f:
            pos = 0
            for line in f:
                if line.strip():
                    self._offsets.append(pos)
                pos += len(line)
                if limit is not None and len(self._offsets) >= limit:
                    break

    def __len__(self) -> int:
        return len(self._offsets)

    def sample(self, index: int) -> SceneSample:
        with self._path.open("rb") as f:
            f.seek(self._offsets[index])
            line = f.readline()
        try:
            return SceneSample.from_json(json.loads(line), self.root)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SplitFormatError(f"{self._path}: corrupt sample #{index} ({type(exc).__name__})") from exc

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.sample(index)
        rgb, depth, k = s.load_rgb(), s.load_depth(), s.intrinsics
        gt_depth, instance = s.load_gt() if self.with_gt else (None, None)
        objects = s.objects
        if self.size is not None and self.size != (k.width, k.height):
            w, h = self.size
            sx, sy = w / k.width, h / k.height
            rgb, depth = resize_frame_arrays(rgb, depth, w, h)
            if gt_depth is not None:
                gt_depth = cv2.resize(gt_depth, (w, h), interpolation=cv2.INTER_NEAREST)
                instance = cv2.resize(instance, (w, h), interpolation=cv2.INTER_NEAREST)
            k = resized_intrinsics(k, w, h)
            objects = [_scale_box(o, sx, sy) for o in objects]
        item: dict[str, Any] = {
            "id": s.id,
            "scene": s.scene,
            "rgb": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
            "depth": torch.from_numpy(depth),
            "intrinsics": k,
            "K": torch.tensor(k.matrix, dtype=torch.float32),
            "up": torch.tensor(np.asarray(s.up), dtype=torch.float32),
            "objects": objects,
            "relations": s.relations,
            "qa": s.qa,
            "description": s.description,
        }
        if gt_depth is not None:
            item["gt_depth"] = torch.from_numpy(gt_depth)
            item["instance"] = torch.from_numpy(instance.astype(np.int64))
        return item


def _scale_box(o: SceneObject, sx: float, sy: float) -> SceneObject:
    x0, y0, x1, y1 = o.box2d
    return replace(o, box2d=(x0 * sx, y0 * sy, x1 * sx, y1 * sy))
