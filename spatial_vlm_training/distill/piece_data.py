"""Training pairs for the piece head: every touching pair of a model's own detections on a split,
described by spatial_vlm_ros.inference.piece_pairs and labelled "one object" when the ground-truth
instance map gives both the same majority instance.

The detections come from the model's engine with the piece head off, so the head learns the fragment
habits of that model's own region head."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spatial_vlm_ros.inference.engine import SpatialVLMEngine
from spatial_vlm_ros.inference.object_features import WORK_SIZE
from spatial_vlm_ros.inference.piece_pairs import PIECE_PAIR_DIM, pair_table
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import SceneSample

from .own_detections import map_frames


@dataclass
class PiecePairs:
    features: np.ndarray  # (N, PIECE_PAIR_DIM) float32
    same: np.ndarray  # (N,) bool: one object
    frame: np.ndarray  # (N,) int64 frame index in the split

    def __len__(self) -> int:
        return len(self.same)


def majority_instance(instance: np.ndarray, mask: np.ndarray) -> int:
    """The ground-truth instance most of the mask's pixels belong to (0 = none)."""
    values = instance[mask]
    values = values[values > 0]
    return int(np.bincount(values).argmax()) if len(values) else 0


def frame_pairs(engine: SpatialVLMEngine, sample: SceneSample) -> tuple[np.ndarray, np.ndarray]:
    frame = frame_from_sample(sample)
    regions = engine.regions_of(engine.infer(frame))
    if regions is None:
        return np.zeros((0, PIECE_PAIR_DIM), np.float32), np.zeros(0, bool)
    _, instance = sample.load_gt()
    instance = cv2.resize(instance, WORK_SIZE, interpolation=cv2.INTER_NEAREST)
    pairs, feats = pair_table(regions.kept_masks, regions.kept_boxes, regions.kept_objects, regions.views[1][..., 2])
    owner = [majority_instance(instance, m) for m in regions.kept_masks]
    return feats, np.asarray([owner[i] == owner[j] > 0 for i, j in pairs], bool)


def _no_piece_head(engine: SpatialVLMEngine) -> None:
    engine.drop_pieces = False


def collect_pairs(model_dir: Path | str, split_dir: Path | str, limit: int = 0, desc: str = "") -> PiecePairs:
    results = map_frames(model_dir, split_dir, limit, _no_piece_head, frame_pairs,
                         f"piece pairs {desc or Path(split_dir).name}")
    return PiecePairs(np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]),
                      np.concatenate([np.full(len(r[1]), i, np.int64) for i, r in enumerate(results)]))
