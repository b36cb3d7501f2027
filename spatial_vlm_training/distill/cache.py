"""Per-split preprocessing cache, so training epochs cost only the network.

Two files per split in `<split>/.model_cache/`:
- `features-v*.pkl`: resolution-independent object and pair features (the same functions the engine
  runs at inference, fed with ground-truth boxes and category maps plus jitter), QA text and
  detection targets;
- `images-v*-WxH.npz`: RGB, sensor depth, exact depth and the category map at one input size.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.object_features import WORK_SIZE, scene_features, working_views
from spatial_vlm_ros.inference.region_proposals import mask_box
from spatial_vlm_training.data.sample import SceneSample, iter_samples, read_meta

from .proposal_masks import proposal_masks

CACHE_VERSION = 3
CACHE_DIR = ".model_cache"


@dataclass
class SplitFeatures:
    ids: list[str]
    categories: list[str]
    colors: list[str]
    objects: list[dict]  # per frame: arrays for the object/pair slots and detection targets
    qa: list[list[dict]]  # per frame: question, answer, type, kind


@dataclass
class SplitImages:
    rgb: np.ndarray  # (N, H, W, 3) uint8
    depth: np.ndarray  # (N, H, W) float16 sensor metres, 0 = hole
    gt_depth: np.ndarray  # (N, H, W) float16 exact metres, 0 = no surface
    segmentation: np.ndarray  # (N, H, W) uint8, 0 = background, 1 + category index


def split_key(root: Path, limit: int) -> str:
    st = (root / "samples.jsonl").stat()
    return hashlib.sha1(f"{root.resolve()}|{st.st_size}|{st.st_mtime_ns}|{limit}".encode()).hexdigest()[:10]


def _category_lut(sample: SceneSample, categories: list[str]) -> np.ndarray:
    lut = np.full(256, -1, np.int64)
    for o in sample.objects:
        if o.category in categories:
            lut[o.instance] = categories.index(o.category)
    return lut


def _ordered_objects(sample: SceneSample, max_objects: int):
    """Objects named by questions first, so truncation never drops one a question needs."""
    asked = {q.subject for q in sample.qa} | {q.object for q in sample.qa if q.object}
    objs = sorted(sample.objects, key=lambda o: (o.id not in asked, -o.visible_px))
    return objs[:max_objects]


def frame_features(sample: SceneSample, categories: list[str], colors: list[str], max_objects: int, seed: int,
                   proposal_share: float = 0.0) -> tuple[dict, list[dict]]:
    """With probability `proposal_share` the frame's objects take the proposal masks the engine would
    find (proposal_masks.py) instead of jittered ground-truth masks."""
    rgb = sample.load_rgb()
    depth = sample.load_depth()
    _, instance = sample.load_gt()
    h, w = instance.shape
    rng = np.random.default_rng(seed)
    lut = _category_lut(sample, categories)
    instance_small = cv2.resize(instance, WORK_SIZE, interpolation=cv2.INTER_NEAREST)
    cat_small = lut[instance_small]
    objs = [o for o in _ordered_objects(sample, max_objects) if o.category in categories]
    boxes, jit_boxes, masks = [], [], []
    kernel = np.ones((3, 3), np.uint8)
    for o in objs:
        x0, y0, x1, y1 = o.box2d
        box = np.array([x0 / w, y0 / h, x1 / w, y1 / h], np.float32)
        bw, bh = box[2] - box[0], box[3] - box[1]
        # Detected boxes and category maps are never exact: train on the same kind of error.
        jit = box + rng.normal(0, 0.04, 4).astype(np.float32) * np.array([bw, bh, bw, bh], np.float32)
        jit = np.clip(np.array([min(jit[0], jit[2]), min(jit[1], jit[3]), max(jit[0], jit[2]), max(jit[1], jit[3])]), 0, 1)
        cm = (cat_small == categories.index(o.category)).astype(np.uint8)
        r = rng.random()
        if r < 0.25:
            cm = cv2.dilate(cm, kernel)
        elif r < 0.4:
            cm = cv2.erode(cm, kernel)
        c0, r0 = int(np.floor(jit[0] * WORK_SIZE[0])), int(np.floor(jit[1] * WORK_SIZE[1]))
        c1, r1 = max(int(np.ceil(jit[2] * WORK_SIZE[0])), c0 + 1), max(int(np.ceil(jit[3] * WORK_SIZE[1])), r0 + 1)
        m = np.zeros(cm.shape, bool)
        m[r0:r1, c0:c1] = True
        sel = m & cm.astype(bool)
        masks.append(sel if sel.sum() >= 4 else m)
        boxes.append(box)
        jit_boxes.append(jit.astype(np.float32))
    views = None
    if proposal_share > 0 and rng.random() < proposal_share:
        views = working_views(rgb, depth, sample.intrinsics)
        found = proposal_masks(*views, sample.intrinsics.scaled(*WORK_SIZE), sample.up,
                               [instance_small == o.instance for o in objs])
        for i, m in enumerate(found):
            if m is not None:
                masks[i], jit_boxes[i] = m, mask_box(m).astype(np.float32)
    feats = scene_features(rgb, depth, sample.intrinsics, sample.up, masks, seed=seed, views=views)
    obj = {
        "object_ids": [o.id for o in objs],
        "boxes": np.stack(boxes) if boxes else np.zeros((0, 4), np.float32),
        "jit_boxes": np.stack(jit_boxes) if jit_boxes else np.zeros((0, 4), np.float32),
        "category": np.array([categories.index(o.category) for o in objs], np.int64),
        "color": np.array([colors.index(o.color) if o.color in colors else -1 for o in objs], np.int64),
        "center_depth": np.array([float(o.box3d.center[2]) for o in objs], np.float32),
        "color_features": feats.color, "geometry": feats.geometry,
        "pair_index": feats.pair_index, "pair_features": feats.pair_features, "gap_m": feats.gap_m,
    }
    kept = set(obj["object_ids"])
    qa = [{"question": q.question, "answer": q.answer, "type": q.type, "kind": q.kind}
          for q in sample.qa if q.subject in kept and (q.object is None or q.object in kept)]
    return obj, qa


def frame_images(sample: SceneSample, categories: list[str], width: int, height: int):
    rgb = cv2.resize(sample.load_rgb(), (width, height), interpolation=cv2.INTER_AREA)
    depth = np.nan_to_num(sample.load_depth(), nan=0.0)
    gt_depth, instance = sample.load_gt()
    lut = _category_lut(sample, categories)
    seg = (lut[cv2.resize(instance, (width, height), interpolation=cv2.INTER_NEAREST)] + 1).astype(np.uint8)
    near = cv2.INTER_NEAREST
    return (rgb, cv2.resize(depth, (width, height), interpolation=near).astype(np.float16),
            cv2.resize(np.nan_to_num(gt_depth, nan=0.0), (width, height), interpolation=near).astype(np.float16), seg)


def _features_job(args):
    line, root, categories, colors, max_objects, seed, proposal_share = args
    return frame_features(line, categories, colors, max_objects, seed, proposal_share)


def _images_job(args):
    sample, categories, width, height = args
    return frame_images(sample, categories, width, height)


def worker_count() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def process_pool(**kwargs) -> ProcessPoolExecutor:
    """worker_count() processes, started by spawn. Forking a process that runs torch's and ROS's threads
    can copy a lock another thread holds: a `make test` hung there for good (a pool of the shade-head test,
    twelfth session), so the workers start clean and import what they need; jobs travel by name."""
    return ProcessPoolExecutor(worker_count(), mp_context=multiprocessing.get_context("spawn"), **kwargs)


def features_path(root: Path, max_objects: int, limit: int, proposal_share: float = 0.0) -> Path:
    """Where load_features keeps a split's features for these settings."""
    masks = f"-p{round(100 * proposal_share)}" if proposal_share > 0 else ""
    return root / CACHE_DIR / f"features-v{CACHE_VERSION}-{split_key(root, limit)}-n{max_objects}{masks}.pkl"


def load_features(split_dir: Path | str, max_objects: int = 12, limit: int = 0, desc: str = "",
                  proposal_share: float = 0.0) -> SplitFeatures:
    root = Path(split_dir)
    meta = read_meta(root)
    path = features_path(root, max_objects, limit, proposal_share)
    if path.is_file():
        with path.open("rb") as f:
            return pickle.load(f)
    samples = list(iter_samples(root, limit or None))
    cats, cols = list(meta.categories), list(meta.colors)
    jobs = [(s, root, cats, cols, max_objects, i, proposal_share) for i, s in enumerate(samples)]
    with process_pool() as pool:
        results = list(tqdm(pool.map(_features_job, jobs, chunksize=8), total=len(jobs),
                            desc=f"features {desc or root.name}", unit="frame"))
    out = SplitFeatures([s.id for s in samples], cats, cols, [r[0] for r in results], [r[1] for r in results])
    _atomic_pickle(out, path)
    return out


def load_images(split_dir: Path | str, width: int, height: int, categories: list[str], limit: int = 0,
                desc: str = "") -> SplitImages:
    root = Path(split_dir)
    read_meta(root)
    path = root / CACHE_DIR / f"images-v{CACHE_VERSION}-{split_key(root, limit)}-{width}x{height}.npz"
    if path.is_file():
        with np.load(path) as z:
            return SplitImages(z["rgb"], z["depth"], z["gt_depth"], z["segmentation"])
    samples = list(iter_samples(root, limit or None))
    jobs = [(s, categories, width, height) for s in samples]
    with process_pool() as pool:
        results = list(tqdm(pool.map(_images_job, jobs, chunksize=8), total=len(jobs),
                            desc=f"images {desc or root.name} {width}x{height}", unit="frame"))
    out = SplitImages(*(np.stack([r[i] for r in results]) for i in range(4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, rgb=out.rgb, depth=out.depth, gt_depth=out.gt_depth, segmentation=out.segmentation)
    tmp.replace(path)
    return out


def _atomic_pickle(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
