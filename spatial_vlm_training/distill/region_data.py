"""Training examples for the region head: each frame's class-agnostic proposals (labelled by box IoU
with the ground truth) plus the ground-truth masks themselves, as the crops and statistics of
spatial_vlm_ros.inference.region_inputs. Cached per split in `<split>/.model_cache/`."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.object_features import WORK_SIZE, gravity_basis, object_points, working_views
from spatial_vlm_ros.inference.region_inputs import region_inputs
from spatial_vlm_ros.inference.region_proposals import ProposalConfig, box_iou, region_proposals
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import SceneSample, iter_samples, read_meta

from .cache import CACHE_DIR, process_pool, split_key

REGION_CACHE_VERSION = 1
POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.3  # proposals between the two are ambiguous and left out
NEGATIVES_PER_POSITIVE = 2
DEPTH_MARGIN = 1.1  # the engine's depth limit lies this factor beyond the deepest training object


@dataclass
class RegionExamples:
    crops: np.ndarray  # (N, REGION_CHANNELS, S, S) float16
    scalars: np.ndarray  # (N, REGION_SCALAR_DIM) float32
    labels: np.ndarray  # (N,) int64, 0 = background, 1 + category index
    frame: np.ndarray  # (N,) int64 frame index in the split

    def __len__(self) -> int:
        return len(self.labels)


def frame_regions(sample: SceneSample, categories: list[str], crop: int, seed: int,
                  cfg: ProposalConfig = ProposalConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = frame_from_sample(sample)
    w, h = frame.size
    rgb_small, points_small = working_views(frame.rgb, frame.depth, frame.intrinsics)
    proposals = region_proposals(rgb_small, points_small, frame.intrinsics.scaled(*WORK_SIZE), frame.up, cfg)
    _, instance = sample.load_gt()
    instance = cv2.resize(instance, WORK_SIZE, interpolation=cv2.INTER_NEAREST)
    gt = [(o, instance == o.instance) for o in sample.objects if o.category in categories]
    gt = [(o, m) for o, m in gt if m.sum() >= 4]
    gt_boxes = np.array([np.asarray(o.box2d, float) / [w, h, w, h] for o, _ in gt]).reshape(-1, 4)
    masks = [m for _, m in gt]
    labels = [1 + categories.index(o.category) for o, _ in gt]
    negatives = []
    for p in proposals:
        ious = box_iou(p.box[None], gt_boxes)[0] if len(gt_boxes) else np.zeros(0)
        best = int(ious.argmax()) if len(ious) else -1
        if best >= 0 and ious[best] >= POSITIVE_IOU:
            masks.append(p.mask)
            labels.append(1 + categories.index(gt[best][0].category))
        elif best < 0 or ious[best] < NEGATIVE_IOU:
            negatives.append(p.mask)
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(negatives))[: max(4, NEGATIVES_PER_POSITIVE * len(labels))]
    masks += [negatives[i] for i in sorted(keep)]
    labels += [0] * len(keep)
    basis = gravity_basis(frame.up)
    objects = [object_points(rgb_small, points_small, m, basis) for m in masks]
    crops, scalars = region_inputs(rgb_small, points_small, masks, objects, crop)
    return crops.astype(np.float16), scalars, np.asarray(labels, np.int64)


def _job(args):
    sample, categories, crop, seed = args
    return frame_regions(sample, categories, crop, seed)


def max_trained_depth_m(split_dir: Path | str, limit: int = 0) -> float:
    """DEPTH_MARGIN times the deepest ground-truth object centre (camera z) of a split's frames: the
    depth beyond which the region head trained on them has seen only background (config.max_trained_depth_m)."""
    deepest = max((float(o.box3d.center[2]) for s in iter_samples(split_dir, limit or None) for o in s.objects),
                  default=0.0)
    if deepest <= 0:
        raise ValueError(f"{Path(split_dir) / 'samples.jsonl'}: no object in front of the camera")
    return round(DEPTH_MARGIN * deepest, 3)


def load_region_examples(split_dir: Path | str, crop: int, limit: int = 0, desc: str = "") -> RegionExamples:
    root = Path(split_dir)
    meta = read_meta(root)
    key = hashlib.sha1(repr(ProposalConfig()).encode()).hexdigest()[:6]
    path = root / CACHE_DIR / f"regions-v{REGION_CACHE_VERSION}-{split_key(root, limit)}-{crop}-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return RegionExamples(z["crops"], z["scalars"], z["labels"], z["frame"])
    samples = list(iter_samples(root, limit or None))
    jobs = [(s, list(meta.categories), crop, i) for i, s in enumerate(samples)]
    with process_pool() as pool:
        results = list(tqdm(pool.map(_job, jobs, chunksize=4), total=len(jobs),
                            desc=f"regions {desc or root.name}", unit="frame"))
    out = RegionExamples(np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]),
                         np.concatenate([r[2] for r in results]),
                         np.concatenate([np.full(len(r[2]), i, np.int64) for i, r in enumerate(results)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, crops=out.crops, scalars=out.scalars, labels=out.labels, frame=out.frame)
    tmp.replace(path)
    return out
