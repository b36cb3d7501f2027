"""Per-object and per-pair metric features, computed the same way at training time (from ground-truth
boxes and category maps) and at inference (from detected boxes and the predicted category map).

Everything runs at a fixed working resolution (320x240) so the statistics mean the same thing for
every camera. Heights are taken along gravity-up; points come from measured depth where it is valid,
else from the model's predicted depth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
from scipy.spatial import cKDTree

from .geometry import (
    DEFAULT_THRESHOLDS,
    RelationThresholds,
    backproject,
    estimate_up,
    finite_rows,
    nearest_distances,
    point_tree,
)
from .mask_morphology import box_slices
from .types import CameraIntrinsics

WORK_SIZE = (320, 240)  # width, height
OBJECT_GEOMETRY_DIM = 11
OBJECT_COLOR_DIM = 7
PAIR_FEATURE_DIM = 12
MAX_GAP_POINTS = 3000
FAR_GAP_M = 2.0  # stands in for the gap of a pair without points


@dataclass
class ObjectPoints:
    """Pixels and 3D points of one object at the working resolution."""

    points: np.ndarray  # (n, 3) camera frame, finite
    heights: np.ndarray  # (n,) along up
    horizontal: np.ndarray  # (n, 2) coordinates in the horizontal plane
    color: np.ndarray  # (OBJECT_COLOR_DIM,)
    geometry: np.ndarray  # (OBJECT_GEOMETRY_DIM,)
    n_pixels: int

    @property
    def median_depth_m(self) -> float:
        """Median camera-frame depth (z) of the points; NaN without points (object_points keeps it in geometry[8])."""
        return float(self.geometry[8]) if len(self.points) else math.nan

    @cached_property
    def bounds(self) -> np.ndarray:
        """(2, 3) per-axis minimum and maximum of the points (read by every pair of this object)."""
        return np.stack([self.points.min(0), self.points.max(0)])

    @cached_property
    def tree(self) -> cKDTree:
        """KD-tree of all the points, for the pairs that search them whole (built once per object)."""
        return point_tree(self.points)

    @cached_property
    def footprint_centre(self) -> np.ndarray:
        """Median of the horizontal coordinates (computed once, read by every pair)."""
        return np.median(self.horizontal, 0)

    @cached_property
    def footprint_extent(self) -> np.ndarray:
        """(2, 2) 5th and 95th percentiles of the horizontal coordinates."""
        return np.percentile(self.horizontal, [5, 95], axis=0)


@dataclass
class SceneFeatures:
    objects: list[ObjectPoints]
    geometry: np.ndarray  # (N, OBJECT_GEOMETRY_DIM) float32
    color: np.ndarray  # (N, OBJECT_COLOR_DIM) float32
    pair_index: np.ndarray  # (P, 2) int64, all ordered pairs
    pair_features: np.ndarray  # (P, PAIR_FEATURE_DIM) float32
    gap_m: np.ndarray  # (P,) surface gap of each pair (NaN without points)


def gravity_basis(up: np.ndarray | None) -> np.ndarray:
    """(3, 3) rows: horizontal axis 1, horizontal axis 2, up."""
    u = estimate_up(np.zeros((0, 3)), up)
    e1 = np.array([1.0, 0.0, 0.0]) - u[0] * u
    if np.linalg.norm(e1) < 1e-3:
        e1 = np.array([0.0, 0.0, 1.0]) - u[2] * u
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(u, e1), u])


def color_features(pixels: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 RGB -> mean RGB + saturation-weighted hue circle + mean saturation and value."""
    if len(pixels) == 0:
        return np.zeros(OBJECT_COLOR_DIM, np.float32)
    rgb = pixels.astype(np.float32) / 255.0
    hsv = cv2.cvtColor(pixels.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3) / 255.0
    angle = hsv[:, 0] * 2 * np.pi
    sat = hsv[:, 1]
    return np.array([*rgb.mean(0), (np.cos(angle) * sat).mean(), (np.sin(angle) * sat).mean(), sat.mean(),
                     hsv[:, 2].mean()], np.float32)


def object_points(rgb_small: np.ndarray, points_small: np.ndarray, mask: np.ndarray, basis: np.ndarray) -> ObjectPoints:
    """rgb_small (h, w, 3), points_small (h, w, 3) with NaN holes, mask (h, w) bool."""
    n_pix = np.count_nonzero(mask)
    box = box_slices(mask)
    if box is not None:  # the mask's bounding box holds the same pixels in the same order, and most masks are small
        rgb_small, points_small, mask = rgb_small[box], points_small[box], mask[box]
    col = color_features(rgb_small[mask])
    pts = points_small[mask]
    pts = pts[finite_rows(pts)]
    if len(pts) == 0:
        geo = np.zeros(OBJECT_GEOMETRY_DIM, np.float32)
        geo[-1] = 0.0
        return ObjectPoints(pts, np.zeros(0), np.zeros((0, 2)), col, geo, n_pix)
    local = pts @ basis.T
    axes = np.ascontiguousarray(local.T)  # the same statistics per axis, without strided partitions
    med = np.median(axes, 1)
    lo, hi = np.percentile(axes, [10, 90], axis=1)
    bottom, top = np.percentile(axes[2], [3, 97])
    geo = np.array([*med, *(hi - lo), bottom, top, np.median(np.ascontiguousarray(pts[:, 2])), math.log1p(len(pts)) / 10,
                    len(pts) / max(n_pix, 1)], np.float32)
    return ObjectPoints(pts.astype(np.float32), local[:, 2], local[:, :2], col, geo, n_pix)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


def pair_gap(a: ObjectPoints, b: ObjectPoints, rng: np.random.Generator) -> tuple[float, float]:
    """(closest distance, 1st-percentile distance) from a's points to b's. Only b's points near a's
    bounding box enter the tree, so large objects (tables) keep their full density where it matters."""
    if len(a.points) == 0 or len(b.points) == 0:
        return math.nan, math.nan
    pa, pb = a.points, b.points
    lo, hi = a.bounds[0] - 0.15, a.bounds[1] + 0.15
    near = pb
    if np.all(b.bounds[1] >= lo) and np.all(b.bounds[0] <= hi):  # else none of b's points is near a's box
        near = pb[((pb >= lo) & (pb <= hi)).all(1)]
        if len(near) == 0:
            near = pb
    if len(near) > MAX_GAP_POINTS:
        near = near[rng.choice(len(near), MAX_GAP_POINTS, replace=False)]
    if len(pa) > MAX_GAP_POINTS:
        pa = pa[rng.choice(len(pa), MAX_GAP_POINTS, replace=False)]
    # np.percentile(d, 1) reads sorted d at floor((n - 1) / 100) and the next one
    # b's own tree serves when all of b's points are searched (nothing filtered out, nothing subsampled)
    d = nearest_distances(pa, near, int((len(pa) - 1) * 0.01) + 2, b.tree if near is pb else None)
    return float(d.min()), float(np.percentile(d, 1))


def pair_features(a: ObjectPoints, b: ObjectPoints, rng: np.random.Generator,
                  t: RelationThresholds = DEFAULT_THRESHOLDS) -> tuple[np.ndarray, float]:
    gap, robust = pair_gap(a, b, rng)
    missing = not math.isfinite(gap)
    g = FAR_GAP_M if missing else gap
    r = FAR_GAP_M if missing else robust
    ga, gb = a.geometry, b.geometry
    below = float(ga[6] - gb[7])  # subject bottom minus object top: ~0 when it rests on it
    above = float(ga[7] - gb[6])
    centroid = float(np.linalg.norm(ga[:3] - gb[:3]))
    horizontal = float(np.linalg.norm(ga[:2] - gb[:2]))
    # Is the subject's footprint centre inside the object's horizontal extent?
    inside = 0.0
    if len(b.horizontal) and len(a.horizontal):
        c = a.footprint_centre
        lo, hi = b.footprint_extent
        inside = float(np.all(c >= lo) and np.all(c <= hi))
    feats = np.array([
        g, r, math.log(g + 0.005),
        _sigmoid((t.near_decision_m - g) / 0.03), _sigmoid((t.contact_decision_m - g) / 0.004),
        _sigmoid((t.contact_decision_m - r) / 0.004),
        below, above, centroid, horizontal, inside, float(missing),
    ], np.float32)
    return feats, gap


def scene_features(rgb: np.ndarray, depth: np.ndarray, intrinsics: CameraIntrinsics, up: np.ndarray | None,
                   masks_small: list[np.ndarray], seed: int = 0,
                   thresholds: RelationThresholds = DEFAULT_THRESHOLDS,
                   views: tuple[np.ndarray, np.ndarray] | None = None,
                   objects: list[ObjectPoints] | None = None) -> SceneFeatures:
    """rgb (H, W, 3) uint8 and depth (H, W) metres (NaN holes) of the source frame; masks at WORK_SIZE.
    `views` (working_views of the frame) and `objects` (object_points of the masks): when the caller
    has them already."""
    rgb_small, points_small = views if views is not None else working_views(rgb, depth, intrinsics)
    basis = gravity_basis(up)
    objs = objects if objects is not None else [object_points(rgb_small, points_small, m, basis) for m in masks_small]
    rng = np.random.default_rng(seed)
    n = len(objs)
    index, feats, gaps = [], [], []
    for i in range(n):
        for j in range(n):
            if i != j:
                f, g = pair_features(objs[i], objs[j], rng, thresholds)
                index.append((i, j))
                feats.append(f)
                gaps.append(g)
    return SceneFeatures(
        objs,
        np.stack([o.geometry for o in objs]).astype(np.float32) if n else np.zeros((0, OBJECT_GEOMETRY_DIM), np.float32),
        np.stack([o.color for o in objs]).astype(np.float32) if n else np.zeros((0, OBJECT_COLOR_DIM), np.float32),
        np.asarray(index, np.int64).reshape(-1, 2),
        np.stack(feats).astype(np.float32) if feats else np.zeros((0, PAIR_FEATURE_DIM), np.float32),
        np.asarray(gaps, np.float64),
    )


def working_views(rgb: np.ndarray, depth: np.ndarray, intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    w, h = WORK_SIZE
    rgb_small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    depth_small = cv2.resize(np.nan_to_num(depth, nan=0.0).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    depth_small[depth_small <= 0] = np.nan
    return rgb_small, backproject(depth_small, intrinsics.scaled(w, h))


def box_mask(box_frac: np.ndarray, category_map: np.ndarray | None = None, category: int | None = None) -> np.ndarray:
    """Pixels of the working grid inside a box (fractions of the image) and, when a category map is
    given, of that category; the whole box when the two do not overlap."""
    h, w = WORK_SIZE[1], WORK_SIZE[0]
    x0, y0, x1, y1 = box_frac
    c0, r0 = int(np.clip(np.floor(x0 * w), 0, w - 1)), int(np.clip(np.floor(y0 * h), 0, h - 1))
    c1, r1 = int(np.clip(np.ceil(x1 * w), c0 + 1, w)), int(np.clip(np.ceil(y1 * h), r0 + 1, h))
    mask = np.zeros((h, w), bool)
    mask[r0:r1, c0:c1] = True
    if category_map is not None and category is not None:
        sel = mask & (category_map == category)
        if sel.sum() >= 4:
            return sel
    return mask
