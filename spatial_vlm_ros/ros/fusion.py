"""Metric cross-check of the model's relations against measured depth or a point cloud, and fusion.

For every relation the surface gap between the two objects' measured points is computed with the
project's one geometry definition (inference/geometry.py) and published in `distance_m`. The
model's probability and the geometric one are then combined by a rule chosen by parameter:

- `model`    - keep the model's answer (the gap is still reported), the node's default: on the student's
               frames the metric support judgement is the weaker evidence, and fusing it in lowered the
               service's contact + support accuracy from 77.0 to 68.4 % on the selection split
               (scripts/measure_service_answers.py);
- `geometry` - the metric answer wherever both objects have measured points;
- `mean`     - average of the two probabilities;
- `log_odds` - sum of log-odds (independent evidence).

No ROS here: the node calls `cross_check` on its inference thread.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..inference.geometry import (
    DEFAULT_THRESHOLDS,
    PairGeometry,
    RelationThresholds,
    backproject,
    depth_noise_sigma,
    estimate_up,
    height_profile,
    profile_rests_on,
    subsample,
    surface_gap,
    valid_points,
)
from ..inference.types import Box3D, CameraIntrinsics, Detection, Relation, RelationType, RGBDFrame, SceneResult

FUSION_RULES = ("model", "geometry", "mean", "log_odds")
DEFAULT_FUSION_RULE = "model"  # the node's fusion.rule default (see the module docstring)
MAX_POINTS_PER_OBJECT = 1500  # enough for cm-level gaps; keeps a 12-object frame in tens of ms
MAX_CHECK_WIDTH = 640  # larger depth images are strided down first: a 4K cloud adds no accuracy here


@dataclass
class DepthPoints:
    """Organised points (H', W', 3) of a possibly strided depth image and the stride used."""

    points: np.ndarray
    stride: int
    source: str  # measured | cloud | predicted
    fx: float  # focal length of the source image, pixels


def organised_points(frame: RGBDFrame, predicted_depth: np.ndarray | None = None) -> DepthPoints | None:
    """Measured depth first, then the point cloud projected into the image, then predicted depth."""
    intr = frame.intrinsics
    stride = max(1, math.ceil(intr.width / MAX_CHECK_WIDTH))
    if frame.depth is not None and frame.depth.shape == (intr.height, intr.width):
        return DepthPoints(_strided_backproject(frame.depth, intr, stride), stride, "measured", intr.fx)
    if frame.points is not None and len(frame.points):
        return DepthPoints(_strided_backproject(cloud_to_depth(frame.points, intr), intr, stride), stride, "cloud", intr.fx)
    if predicted_depth is not None and predicted_depth.shape == (intr.height, intr.width):
        return DepthPoints(_strided_backproject(predicted_depth, intr, stride), stride, "predicted", intr.fx)
    return None


def _strided_backproject(depth: np.ndarray, intr: CameraIntrinsics, stride: int) -> np.ndarray:
    d = depth[::stride, ::stride]
    # Pixel i of the strided image is pixel i*stride of the source: scale fx and cx by the same factor.
    scaled = CameraIntrinsics(intr.fx / stride, intr.fy / stride, intr.cx / stride, intr.cy / stride,
                              d.shape[1], d.shape[0])
    return backproject(d.astype(np.float32), scaled)


def cloud_to_depth(points: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    """Z-buffer an (N, 3) optical-frame cloud into an (H, W) depth image (NaN where empty)."""
    depth = np.full((intr.height, intr.width), np.inf, np.float32)
    p = points[np.isfinite(points).all(axis=1) & (points[:, 2] > 0)]
    if len(p):
        u = np.round(p[:, 0] * intr.fx / p[:, 2] + intr.cx).astype(np.int64)
        v = np.round(p[:, 1] * intr.fy / p[:, 2] + intr.cy).astype(np.int64)
        ok = (u >= 0) & (u < intr.width) & (v >= 0) & (v < intr.height)
        np.minimum.at(depth, (v[ok], u[ok]), p[ok, 2].astype(np.float32))
    depth[~np.isfinite(depth)] = np.nan
    return depth


def object_points(det: Detection, dp: DepthPoints) -> np.ndarray:
    """(M, 3) measured points of one object: its mask, or its 2D box minus background.

    Box pooling picks up the table or floor behind an object, so without a mask only points near
    the depth of the box centre are kept (band scaled to the object's metric width)."""
    h, w = dp.points.shape[:2]
    s = dp.stride
    x0, y0, x1, y1 = (int(math.floor(det.box2d[0] / s)), int(math.floor(det.box2d[1] / s)),
                      int(math.ceil(det.box2d[2] / s)), int(math.ceil(det.box2d[3] / s)))
    x0, x1 = max(0, min(w, x0)), max(0, min(w, x1))
    y0, y1 = max(0, min(h, y0)), max(0, min(h, y1))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 3), np.float32)
    crop = dp.points[y0:y1, x0:x1]
    if det.mask is not None and det.mask.shape[0] >= y1 * s and det.mask.shape[1] >= x1 * s:
        m = det.mask[::s, ::s][y0:y1, x0:x1]
        pts = crop[m]
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts):
            return pts
    if det.box3d is not None:
        pts = crop.reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        local = (pts - np.asarray(det.box3d.center)) @ np.asarray(det.box3d.rotation)
        inside = np.all(np.abs(local) <= np.asarray(det.box3d.size) / 2 * 1.1 + 0.01, axis=1)
        if inside.sum() >= 3:
            return pts[inside]
    ch, cw = crop.shape[:2]
    core = crop[ch // 4: max(ch // 4 + 1, 3 * ch // 4), cw // 4: max(cw // 4 + 1, 3 * cw // 4), 2]
    core = core[np.isfinite(core)]
    pts = crop.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(core) == 0 or len(pts) == 0:
        return pts
    z_ref = float(np.median(core))
    width_m = (x1 - x0) * s * z_ref / dp.fx
    band = max(0.05, 0.75 * width_m)
    return pts[np.abs(pts[:, 2] - z_ref) <= band]


def lift_box(points: np.ndarray) -> Box3D | None:
    """Axis-aligned box over the 2nd-98th percentiles of an object's points (robust to stray pixels)."""
    if len(points) < 3:
        return None
    lo, hi = np.percentile(points, 2, axis=0), np.percentile(points, 98, axis=0)
    return Box3D(center=(lo + hi) / 2, size=np.maximum(hi - lo, 1e-3))


def positive_probability(rel: Relation) -> float:
    """P(the type's positive predicate holds): near / touching / on."""
    p = rel.confidence if rel.holds else 1.0 - rel.confidence
    if rel.type == RelationType.PROXIMITY and rel.predicate == "far":
        p = 1.0 - p
    return float(min(1.0, max(0.0, p)))


def with_probability(rel: Relation, p_positive: float, source: str, gap_m: float) -> Relation:
    p = float(min(1.0, max(0.0, p_positive)))
    if rel.type == RelationType.PROXIMITY:
        predicate, holds = ("near", True) if p >= 0.5 else ("far", True)
    else:
        predicate, holds = rel.predicate, p >= 0.5
    return replace(rel, predicate=predicate, holds=holds, confidence=max(p, 1.0 - p), source=source, distance_m=gap_m)


def fuse(p_model: float, p_geometry: float, rule: str) -> float:
    if rule == "model":
        return p_model
    if rule == "geometry":
        return p_geometry
    if rule == "mean":
        return 0.5 * (p_model + p_geometry)
    if rule == "log_odds":
        eps = 1e-4
        lo = sum(math.log(max(eps, p) / max(eps, 1.0 - p)) for p in (p_model, p_geometry))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, lo))))
    raise ValueError(f"unknown fusion rule '{rule}' (choose from {', '.join(FUSION_RULES)})")


@dataclass
class CrossCheck:
    relations: list[Relation]
    depth_source: str  # measured | cloud | predicted | none
    checked: int  # relations with a finite metric gap


def cross_check(scene: SceneResult, frame: RGBDFrame, rule: str = DEFAULT_FUSION_RULE,
                thresholds: RelationThresholds = DEFAULT_THRESHOLDS) -> CrossCheck:
    """Add the metric gap to every relation and fuse; also fills missing 3D boxes from measured points."""
    if rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule '{rule}' (choose from {', '.join(FUSION_RULES)})")
    dp = organised_points(frame, scene.depth)
    if dp is None:
        return CrossCheck(list(scene.relations), "none", 0)
    by_id = {d.id: d for d in scene.detections}
    pts = {d.id: object_points(d, dp) for d in scene.detections}
    for d in scene.detections:
        if d.box3d is None:
            d.box3d = lift_box(pts[d.id])
    up = estimate_up(np.zeros((0, 3)), frame.up)
    # Several relation types share one pair: subsample once per object and measure each pair once.
    pts = {k: subsample(valid_points(v), MAX_POINTS_PER_OBJECT) for k, v in pts.items()}
    heights = {k: height_profile(v, up) for k, v in pts.items()}
    ranges = {k: float(np.median(np.linalg.norm(v, axis=1))) if len(v) else 2.0 for k, v in pts.items()}
    gaps: dict[frozenset[str], float] = {}
    out, checked = [], 0
    for rel in scene.relations:
        if rel.subject_id not in by_id or rel.object_id not in by_id:
            out.append(rel)
            continue
        if rel.source == "geometry" and math.isfinite(rel.distance_m):
            out.append(rel)  # already a metric answer (geometric engine) with its own, better-lifted gap
            checked += 1
            continue
        a, b = pts[rel.subject_id], pts[rel.object_id]
        key = frozenset((rel.subject_id, rel.object_id))
        if key not in gaps:
            gaps[key] = surface_gap(a, b, max_points=MAX_POINTS_PER_OBJECT)
        above = profile_rests_on(heights[rel.subject_id], heights[rel.object_id], thresholds.support_tolerance_m)
        geo = PairGeometry(gaps[key], above, depth_noise_sigma(ranges[rel.subject_id]))
        if rel.source == "geometry":
            out.append(replace(rel, distance_m=geo.gap_m))
            checked += int(math.isfinite(geo.gap_m))
            continue
        if not math.isfinite(geo.gap_m):
            out.append(replace(rel, distance_m=math.nan))
            continue
        checked += 1
        p_geo = {RelationType.PROXIMITY: geo.near_prob, RelationType.CONTACT: geo.contact_prob,
                 RelationType.SUPPORT: geo.support_prob}[RelationType(rel.type)](thresholds)
        p_model = positive_probability(rel)
        if rule == "model":
            source, p = rel.source, p_model
        else:
            source, p = ("geometry" if rule == "geometry" else "fused"), fuse(p_model, p_geo, rule)
        out.append(with_probability(rel, p, source, geo.gap_m))
    return CrossCheck(out, dp.source, checked)
