"""ScanNet 2D-frames layout -> svlm-scenes-1 samples.

Layout of one scene (ScanNet's SensReader export / scannet_frames_25k):
    color/<i>.jpg, depth/<i>.png (uint16 mm), pose/<i>.txt (4x4 camera-to-world, world z up),
    intrinsic/intrinsic_color.txt and intrinsic_depth.txt (4x4), instance-filt/<i>.png,
    label-filt/<i>.png (label ids; names from scannetv2-labels.combined.tsv next to the scene or above it,
    else NYU40 ids).
Everything is brought to the depth resolution. Per instance: points back-projected from depth
under the (eroded) mask, a gravity-aligned 3D box from robust extents, and gaps between the
visible surfaces, so relations/QA come from the same rules and templates as the generator's.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.geometry import (
    DEFAULT_THRESHOLDS,
    backproject,
    rests_on,
    surface_gap,
    valid_points,
)
from spatial_vlm_ros.inference.types import Box3D, CameraIntrinsics

from .frames import FrameImages
from .qa import build_description, build_qa, build_relations
from .sample import FLOOR, FORMAT_VERSION, SceneObject, SceneSample, SplitMeta, encode_npz, encode_png

NYU40 = ("wall floor cabinet bed chair sofa table door window bookshelf picture counter blinds desk shelves "
         "curtain dresser pillow mirror floor_mat clothes ceiling books refrigerator television paper towel "
         "shower_curtain box whiteboard person night_stand toilet sink lamp bathtub bag otherstructure "
         "otherfurniture otherprop").split()
STRUCTURE = {"wall", "floor", "ceiling", "door", "window", "otherstructure", "blinds", "curtain", "unlabeled", ""}
SYNONYMS = {"cup": "mug", "coffee mug": "mug", "books": "book", "bookshelf": "shelf", "shelves": "shelf",
            "water bottle": "bottle", "soda can": "can", "basketball": "ball", "soccer ball": "ball"}
# Reference colours for naming an object's mean colour (RGB).
NAMED = {"red": (180, 40, 40), "green": (50, 140, 60), "blue": (40, 70, 170), "yellow": (210, 190, 60),
         "orange": (220, 120, 40), "purple": (110, 60, 140), "white": (220, 220, 215), "black": (30, 30, 30),
         "gray": (125, 125, 125), "brown": (115, 80, 50), "pink": (220, 130, 160)}
MIN_PIXELS = 150
UNKNOWN_SUPPORT = "unknown"
FLOOR_CONTACT_M = 0.05  # an object whose bottom is this close to the floor stands on it


def read_matrix(path: Path) -> np.ndarray:
    try:
        m = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a 4x4 matrix ({exc})") from exc
    if m.shape != (4, 4):
        raise ValueError(f"{path}: expected a 4x4 matrix, got {m.shape}")
    return m


def load_label_names(scene_dir: Path) -> dict[int, str]:
    for folder in (scene_dir, *scene_dir.parents[:2]):
        tsv = folder / "scannetv2-labels.combined.tsv"
        if tsv.is_file():
            with tsv.open() as f:
                rows = csv.DictReader(f, delimiter="\t")
                return {int(r["id"]): (r.get("category") or r.get("nyu40class") or "").strip().lower() for r in rows}
    return {i + 1: name for i, name in enumerate(NYU40)}


def color_name(rgb_pixels: np.ndarray) -> str:
    mean = np.median(rgb_pixels.reshape(-1, 3), axis=0)
    names = list(NAMED)
    ref = np.array([NAMED[n] for n in names], dtype=np.float64)
    return names[int(np.argmin(np.linalg.norm(ref - mean, axis=1)))]


def gravity_box(points: np.ndarray, up: np.ndarray) -> Box3D:
    """Box with one axis along gravity, the others along the horizontal principal axes; 2-98 % extents."""
    up = up / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = np.cross(up, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    flat = points @ np.stack([e1, e2], 1)
    flat -= flat.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov(flat.T) + 1e-12 * np.eye(2))
    major = vecs[:, -1]
    a1 = major[0] * e1 + major[1] * e2
    a2 = np.cross(up, a1)
    axes = np.stack([a1, a2, up], 1)  # columns
    local = points @ axes
    lo, hi = np.percentile(local, 2, axis=0), np.percentile(local, 98, axis=0)
    return Box3D(axes @ ((lo + hi) / 2), np.maximum(hi - lo, 1e-3), axes)


class ScanNetScene:
    def __init__(self, scene_dir: Path | str):
        self.dir = Path(scene_dir)
        for sub in ("color", "depth", "pose", "intrinsic", "instance-filt", "label-filt"):
            if not (self.dir / sub).is_dir():
                raise FileNotFoundError(f"{self.dir / sub}: missing (not a ScanNet 2D-frames scene)")
        self.frames = sorted((p.stem for p in (self.dir / "color").iterdir() if p.suffix in (".jpg", ".png")),
                             key=lambda s: int(re.sub(r"\D", "", s) or 0))
        self.labels = load_label_names(self.dir)
        k_depth = self.dir / "intrinsic" / "intrinsic_depth.txt"
        self.k_depth = read_matrix(k_depth if k_depth.is_file() else self.dir / "intrinsic" / "intrinsic_color.txt")

    def _read(self, sub: str, stem: str, flags: int) -> np.ndarray:
        for ext in (".png", ".jpg"):
            p = self.dir / sub / f"{stem}{ext}"
            if p.is_file():
                img = cv2.imread(str(p), flags)
                if img is None:
                    raise ValueError(f"{p}: corrupt or unreadable image")
                return img
        raise FileNotFoundError(f"{self.dir / sub / stem}.*: missing")

    def frame(self, stem: str, sample_id: str, scene_index: int, rng: np.random.Generator,
              per_type: int = 3) -> Optional[tuple[SceneSample, FrameImages]]:
        raw_depth = self._read("depth", stem, cv2.IMREAD_UNCHANGED)
        h, w = raw_depth.shape[:2]
        depth = raw_depth.astype(np.float32) / 1000.0
        depth[raw_depth == 0] = np.nan
        bgr = self._read("color", stem, cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        inst = cv2.resize(self._read("instance-filt", stem, cv2.IMREAD_UNCHANGED), (w, h), interpolation=cv2.INTER_NEAREST)
        label = cv2.resize(self._read("label-filt", stem, cv2.IMREAD_UNCHANGED), (w, h), interpolation=cv2.INTER_NEAREST)
        pose = read_matrix(self.dir / "pose" / f"{stem}.txt")
        if not np.isfinite(pose).all():
            return None  # ScanNet marks frames with lost tracking by -inf poses
        k = CameraIntrinsics.from_matrix(self.k_depth[:3, :3], w, h)
        up = pose[:3, :3].T @ np.array([0.0, 0.0, 1.0])
        points = backproject(depth, k)

        floor_ids = [i for i, n in self.labels.items() if n == "floor"]
        floor_pts = valid_points(points[np.isin(label, floor_ids)]) if floor_ids else np.zeros((0, 3))
        floor_h = float(np.percentile(floor_pts @ up, 50)) if len(floor_pts) > 50 else None

        candidates = []
        kernel = np.ones((3, 3), np.uint8)
        d0 = np.nan_to_num(depth, nan=0.0)
        spread = cv2.dilate(d0, kernel) - cv2.erode(np.where(np.isnan(depth), 1e3, depth).astype(np.float32), kernel)
        smooth = spread < 0.04 * np.maximum(d0, 0.5)
        for inst_id in np.unique(inst):
            if inst_id == 0:
                continue
            mask = inst == inst_id
            labels_in = label[mask]
            category = self.labels.get(int(np.bincount(labels_in.ravel()).argmax()), "")
            category = SYNONYMS.get(category, category).replace(" ", "_")
            if category in STRUCTURE or mask.sum() < MIN_PIXELS:
                continue
            # Pixels on depth discontinuities mix foreground and background: keep them out of the cloud.
            pts = valid_points(points[mask & smooth])
            if len(pts) < 30:
                continue
            zlo, zhi = np.percentile(pts[:, 2], [5, 95])
            pts = pts[(pts[:, 2] > zlo - 0.1) & (pts[:, 2] < zhi + 0.1)]
            ys, xs = np.nonzero(mask)
            candidates.append((int(inst_id), category, color_name(rgb[mask]), mask, pts,
                               (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))))
        if len(candidates) < 2:
            return None

        names = [f"{c[2]} {c[1].replace('_', ' ')}" for c in candidates]
        askable, objects, pts_by_id = set(), [], {}
        instance = np.zeros((h, w), dtype=np.uint8)
        for n, (inst_id, category, color, mask, pts, box2d) in enumerate(candidates[:255], 1):
            oid = f"obj{inst_id}"
            desc = names[n - 1] if names.count(names[n - 1]) == 1 else f"{names[n - 1]} {names[:n].count(names[n - 1])}"
            if names.count(names[n - 1]) == 1:
                askable.add(oid)
            instance[mask] = n
            pts_by_id[oid] = pts
            objects.append(SceneObject(oid, category, color, desc, n, box2d, int(mask.sum()), gravity_box(pts, up)))

        gaps = {}

        def cached_gap(a: str, b: str) -> float:
            key = (min(a, b), max(a, b))
            if key not in gaps:
                gaps[key] = surface_gap(pts_by_id[a], pts_by_id[b])
            return gaps[key]

        relations = build_relations([o.id for o in objects], cached_gap,
                                    lambda a, b: cached_gap(a, b) <= DEFAULT_THRESHOLDS.contact_m and
                                    rests_on(pts_by_id[a], pts_by_id[b], up))
        supporters = {o.id: [r.object for r in relations if r.subject == o.id and r.on] for o in objects}
        for o in objects:
            bottom = float(np.percentile(pts_by_id[o.id] @ up, 2))
            if floor_h is not None and bottom - floor_h <= FLOOR_CONTACT_M:
                o.resting_on = FLOOR
            elif supporters[o.id]:
                o.resting_on = min(supporters[o.id], key=lambda s: cached_gap(o.id, s))
            else:
                o.resting_on = UNKNOWN_SUPPORT  # not visible: no support question is asked
        qa = build_qa(objects, relations, rng, per_type=per_type, askable=askable)
        stem_id = sample_id.split("_")[-1]
        sample = SceneSample(sample_id, scene_index, f"frames/{stem_id}_rgb.png", f"frames/{stem_id}_depth.png",
                             f"frames/{stem_id}_gt.npz", k, up, pose, objects, relations, qa,
                             build_description(objects, relations))
        return sample, FrameImages(rgb, np.nan_to_num(depth * 1000, nan=0).round().astype(np.uint16), depth, instance)

    def samples(self, split: str = "scannet", scene_index: int = 0, every: int = 1, seed: int = 0,
                start_index: int = 0) -> Iterator[tuple[SceneSample, FrameImages]]:
        rng = np.random.default_rng(seed)
        n = start_index
        for stem in self.frames[::every]:
            out = self.frame(stem, f"{split}_{n:06d}", scene_index, rng)
            if out is not None:
                n += 1
                yield out


def convert_scannet(scene_dirs: list[Path], out: Path, every: int = 1, seed: int = 0, split: str = "scannet") -> int:
    """Write ScanNet scenes as one svlm-scenes-1 split (gt depth = the sensor depth: no exact depth exists)."""
    (out / "frames").mkdir(parents=True, exist_ok=True)
    n = 0
    categories: set[str] = set()
    with (out / "samples.jsonl").open("w") as f:
        for scene_index, scene_dir in enumerate(scene_dirs):
            scene = ScanNetScene(scene_dir)
            for sample, images in tqdm(scene.samples(split, scene_index, every, seed, n), desc=scene_dir.name,
                                       total=len(scene.frames[::every]), unit="frame"):
                (out / sample.rgb).write_bytes(encode_png(images.rgb))
                (out / sample.depth).write_bytes(encode_png(images.sensor_depth_mm))
                (out / sample.gt).write_bytes(encode_npz({"depth": images.depth, "instance": images.instance}))
                f.write(sample.to_line() + "\n")
                categories.update(o.category for o in sample.objects)
                n += 1
    meta = SplitMeta(FORMAT_VERSION, split, seed, len(scene_dirs), n, sorted(categories), list(NAMED),
                     asdict(DEFAULT_THRESHOLDS),
                     {"generator": "scannet", "sources": [str(p) for p in scene_dirs]})
    (out / "meta.json").write_text(json.dumps(meta.to_json(), indent=1) + "\n")
    return n
