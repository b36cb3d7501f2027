"""Training examples for the shade head: every detection of a model's own engine on a split whose
likeliest colour is a shade, described by spatial_vlm_ros.inference.shade_inputs and labelled with the
colour of the ground-truth object most of its pixels belong to.

The engine runs with its shade head off, so the head learns to correct that model's own language head.
Detections of no object, or of an object whose colour is not a shade, are kept with label -1: they
count in no accuracy and teach nothing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spatial_vlm_ros.inference.engine import SpatialVLMEngine
from spatial_vlm_ros.inference.object_features import WORK_SIZE
from spatial_vlm_ros.inference.shade_inputs import BRIGHTNESS_PERCENTILES, shade_features, shade_indices
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import SceneSample

from .own_detections import map_frames
from .piece_data import majority_instance


@dataclass
class ShadeExamples:
    features: np.ndarray  # (N, shades + brightness) float32
    label: np.ndarray  # (N,) int64 index into the shades, -1 = not a shade / no object

    def lm_choice(self, n_shades: int) -> np.ndarray:
        """(N,) the shade the language head chose: its likeliest, from the log-probabilities that lead
        each row of features (shade_inputs.shade_features)."""
        return self.features[:, :n_shades].argmax(1)

    def __len__(self) -> int:
        return len(self.label)


def frame_examples(engine: SpatialVLMEngine, sample: SceneSample) -> tuple[np.ndarray, np.ndarray]:
    cfg = engine.config
    shades = shade_indices(cfg.colors, cfg.shade_colors)
    scene = engine.infer(frame_from_sample(sample))
    regions = engine.regions_of(scene)
    if regions is None:
        return np.zeros((0, len(shades) + len(BRIGHTNESS_PERCENTILES)), np.float32), np.zeros(0, np.int64)
    probs = np.asarray([[d.color_scores[c] for c in cfg.colors] for d in scene.detections], np.float32)
    x, rows = shade_features(probs, regions.views[0], regions.kept_masks, shades)
    _, instance = sample.load_gt()
    instance = cv2.resize(instance, WORK_SIZE, interpolation=cv2.INTER_NEAREST)
    colour_of = {o.instance: o.color for o in sample.objects}
    labels = []
    for i in rows:
        colour = colour_of.get(majority_instance(instance, regions.kept_masks[i]))
        labels.append(cfg.shade_colors.index(colour) if colour in cfg.shade_colors else -1)
    return x, np.asarray(labels, np.int64)


def _no_shade_head(engine: SpatialVLMEngine) -> None:
    engine.model.shade_head = None  # the language head's own colours


def collect_shades(model_dir: Path | str, split_dir: Path | str, limit: int = 0, desc: str = "") -> ShadeExamples:
    results = map_frames(model_dir, split_dir, limit, _no_shade_head, frame_examples,
                         f"shade examples {desc or Path(split_dir).name}")
    return ShadeExamples(np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]))
