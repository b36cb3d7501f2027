"""Lift 2D detections to 3D objects with aligned depth.

A 2D box holds the object plus whatever lies behind or under it (wall, floor, the table it stands
on), so its mean depth is useless at object edges. Each box is lifted in four steps:
1. the floor and walls are cut out and the rest of the depth image is split into connected surfaces
   (class_agnostic.py). The seed is the surface that owns most of the box's centre, does not run far
   outside the box and whose extent matches the box; surfaces inside the box that touch the seed in 3D
   join it, unless they are another box's seed or lie inside a smaller box;
2. pixels claimed by two objects go to the one whose uncontested surface is nearest in 3D;
3. in 3D, a horizontal plane at the bottom of the object's cloud (the support it stands on) is
   removed with open3d RANSAC, and open3d DBSCAN drops stray blobs;
4. a gravity-aligned oriented box: heights along `up`, a minimum-area rectangle in the ground plane.
Boxes cover the visible surface only (no amodal completion); callers compare them knowing that.
A detection that brings its own instance mask skips step 1.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
from scipy.ndimage import find_objects
from scipy.spatial import cKDTree

from .class_agnostic import SegmentationConfig, segment_surfaces
from .geometry import ScenePlanes, depth_noise_sigma, depth_points, horizontal_basis, ransac_plane
from .types import Box3D, CameraIntrinsics, Detection


@dataclass(frozen=True)
class LiftingConfig:
    min_points: int = 20  # fewer measured points than this: the object is not lifted
    inner_fraction: float = 0.5  # the box's central region that votes for the object's cluster
    support_plane_distance_m: float = 0.015  # RANSAC inlier distance of the support plane
    support_plane_min_fraction: float = 0.15  # the plane must hold this share of the object's points
    support_plane_max_tilt_deg: float = 20.0
    support_plane_low_fraction: float = 0.3  # ...and lie in the lowest 30 % of the object's height
    max_cluster_points: int = 4000  # DBSCAN input is voxel-downsampled to about this many points
    dbscan_min_points: int = 5
    box_percentiles: tuple[float, float] = (1.0, 99.0)  # trims flying pixels from the box extents
    segmentation: SegmentationConfig = SegmentationConfig()
    extent_power: float = 1.0  # weight of "the segment's extent matches the box" when choosing the seed
    nested_box_fraction: float = 0.8  # a box this much inside another wins the pixels they both claim
    support_ring_px: int = 8  # the support plane must continue this far outside the box...
    support_ring_fraction: float = 0.3  # ...on this share of the ring's measured pixels
    join_containment: float = 0.8  # a segment at least this much inside the box may join the object...
    join_min_pixels: int = 10
    join_distance_m: float = 0.15  # ...when it comes this close to it in 3D
    keep_cluster_fraction: float = 0.15  # DBSCAN clusters this big relative to the largest stay


@dataclass
class LiftedObject:
    detection_id: str
    mask: np.ndarray  # (H, W) bool, the pixels whose depth belongs to the object
    points: np.ndarray  # (N, 3) float32, camera optical frame
    box3d: Box3D  # gravity-aligned box around the visible surface
    range_m: float  # median distance from the camera
    depth_sigma_m: float  # depth noise at that range
    box_bottom_height_m: float = math.nan  # height along up of the 2D box's bottom edge at the object's depth

    def bottom_height(self, up: np.ndarray, k: int = 5) -> float:
        """Lowest point along up. Thin parts (a lamp's stem and base) often have no depth at range, so
        the 2D box's bottom edge, placed at the object's depth, bounds it from below too."""
        measured = float(np.sort(self.points @ up)[min(k, len(self.points)) - 1])
        return min(measured, self.box_bottom_height_m) if math.isfinite(self.box_bottom_height_m) else measured

    @property
    def n_points(self) -> int:
        return int(len(self.points))


def box_pixels(box2d: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel bounds (x0, y0, x1, y1), clipped to the image, exclusive upper bounds."""
    x0, y0, x1, y1 = box2d
    if not all(math.isfinite(v) for v in box2d):
        raise ValueError(f"box {box2d} has non-finite coordinates")
    xi0, yi0 = int(np.clip(math.floor(x0), 0, width)), int(np.clip(math.floor(y0), 0, height))
    xi1, yi1 = int(np.clip(math.ceil(x1), 0, width)), int(np.clip(math.ceil(y1), 0, height))
    return xi0, yi0, xi1, yi1


def seed_segment(labels: np.ndarray, sizes: np.ndarray, box: tuple[int, int, int, int],
                 inner_fraction: float = 0.5, extents: Optional[list] = None, extent_power: float = 1.0) -> Optional[int]:
    """The surface segment that owns most of the box's centre, discounted by how much of that segment
    lies outside the box: an occluder in front (a bed's footboard across a night stand's box) continues
    far outside the box and loses to the object itself. With `extents` (each segment's bounding slices,
    scipy.ndimage.find_objects) the score is also weighted by how well the segment's extent matches the
    box: a detector's box is tight around its object, so the surface under a desk loses to the desk.
    None when the box holds no depth."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return None
    crop = labels[y0:y1, x0:x1]
    h, w = crop.shape
    mh, mw = int(h * (1 - inner_fraction) / 2), int(w * (1 - inner_fraction) / 2)
    ids, counts = np.unique(crop[crop >= 0], return_counts=True)
    if len(ids) == 0:
        return None
    inner = crop[mh:h - mh, mw:w - mw]
    inner_ids, inner_counts = np.unique(inner[inner >= 0], return_counts=True)
    inner_count = dict(zip(inner_ids.tolist(), inner_counts.tolist(), strict=True))
    # The centre votes most; the whole box breaks ties for objects with holes in the middle (chairs).
    scores = np.array([(inner_count.get(int(i), 0) + 0.25 * c) * c / sizes[i] for i, c in zip(ids, counts, strict=True)])
    if extents is not None:
        scores *= np.array([_extent_iou(extents[int(i)], box) for i in ids]) ** extent_power
    return int(ids[int(np.argmax(scores))])


def _extent_iou(extent: Optional[tuple], box: tuple[int, int, int, int]) -> float:
    if extent is None:
        return 0.0
    ys, xs = extent
    seg = (xs.start, ys.start, xs.stop, ys.stop)
    ix = max(0, min(seg[2], box[2]) - max(seg[0], box[0]))
    iy = max(0, min(seg[3], box[3]) - max(seg[1], box[1]))
    inter = ix * iy
    union = (seg[2] - seg[0]) * (seg[3] - seg[1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return inter / union if union > 0 else 0.0


def grow_segment(labels: np.ndarray, sizes: np.ndarray, box: tuple[int, int, int, int], seed: Optional[int],
                 xyz: np.ndarray, cfg: LiftingConfig = LiftingConfig(), taken: Sequence[int] = (),
                 smaller_boxes: Sequence[tuple[int, int, int, int]] = ()) -> np.ndarray:
    """Bool mask (full image): the seed plus the segments that lie inside the box and touch it in 3D
    (a lamp's shade, stem and base are often separate surfaces). Other objects' seeds (`taken`) never
    join, nor do segments that lie inside a smaller box (a chair's base under a desk's box is the chair's)."""
    x0, y0, x1, y1 = box
    mask = np.zeros(labels.shape, dtype=bool)
    if seed is None:
        return mask
    crop = labels[y0:y1, x0:x1]
    ids, counts = np.unique(crop[crop >= 0], return_counts=True)
    containment = counts / sizes[ids]
    chosen = {seed}
    candidates = [int(i) for i, c, f in zip(ids, counts, containment, strict=True)
                  if f >= cfg.join_containment and c >= cfg.join_min_pixels and int(i) != seed and int(i) not in taken
                  and not any(_count_in_box(labels, int(i), b) >= cfg.join_containment * sizes[i] for b in smaller_boxes)]
    crop_xyz = xyz[y0:y1, x0:x1]
    rng = np.random.default_rng(0)
    grown = True
    while grown and candidates:
        grown = False
        body = crop_xyz[np.isin(crop, list(chosen))]
        body = body[rng.choice(len(body), min(len(body), 3000), replace=False)]
        tree = cKDTree(body)
        for sid in list(candidates):
            pts = crop_xyz[crop == sid]
            pts = pts[rng.choice(len(pts), min(len(pts), 200), replace=False)]
            if tree.query(pts, k=1)[0].min() <= cfg.join_distance_m:
                chosen.add(sid)
                candidates.remove(sid)
                grown = True
    mask[y0:y1, x0:x1] = np.isin(crop, list(chosen))
    return mask


def _count_in_box(labels: np.ndarray, segment: int, box: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = box
    return int((labels[y0:y1, x0:x1] == segment).sum())


def resolve_overlaps(masks: list[np.ndarray], boxes: list[tuple[int, int, int, int]], xyz: np.ndarray,
                     max_core_points: int = 3000, nested_fraction: float = 0.8) -> list[np.ndarray]:
    """Who owns a pixel that several objects claim.

    When the smallest claiming box lies (mostly) inside the others or stands on them, it wins: the object
    on top or in front (a laptop on a desk, a can on a plate), whose flat base is closer in 3D to the desk
    than to the rest of the laptop. Otherwise boxes only overlap at their edges (an ottoman's box dips
    into the bed's) and the pixel goes to the object whose uncontested pixels ("core") are nearest in 3D;
    an object with no uncontested pixel keeps its whole claim as core."""
    if len(masks) < 2:
        return masks
    claims = np.sum(masks, axis=0)
    cores = [m & (claims == 1) for m in masks]
    contested = claims > 1
    if not contested.any():
        return masks
    rows, cols = np.nonzero(contested)
    pts = xyz[rows, cols]
    finite = np.isfinite(pts).all(axis=1)
    best_dist = np.full(len(rows), np.inf)
    owner = np.full(len(rows), -1)
    for i, (mask, core) in enumerate(zip(masks, cores, strict=True)):
        claimed = mask[rows, cols]
        if not claimed.any():
            continue
        core_pts = xyz[core] if core.any() else xyz[mask]
        core_pts = core_pts[np.isfinite(core_pts).all(axis=1)]
        if len(core_pts) == 0:
            continue
        if len(core_pts) > max_core_points:
            core_pts = core_pts[np.random.default_rng(i).choice(len(core_pts), max_core_points, replace=False)]
        dist = np.full(len(rows), np.inf)
        sel = claimed & finite
        dist[sel], _ = cKDTree(core_pts).query(pts[sel], k=1)
        better = claimed & (dist < best_dist)
        best_dist[better] = dist[better]
        owner[better] = i
    areas = np.array([_area(b) for b in boxes])
    claim_matrix = np.stack([m[rows, cols] for m in masks], axis=1)  # (n_contested, n_objects)
    smallest = np.where(claim_matrix, areas[None, :], np.inf).argmin(axis=1)
    for i in np.unique(smallest):
        others = [j for j in range(len(masks)) if j != i]
        sel = smallest == i
        nested = np.ones(sel.sum(), dtype=bool)
        for j in others:
            if not _on_or_in(boxes[i], boxes[j], nested_fraction):
                nested &= ~claim_matrix[sel, j]  # a claimer the small box neither sits in nor stands on blocks the rule
        idx = np.flatnonzero(sel)[nested]
        owner[idx] = i
    out = [core.copy() for core in cores]
    for i in range(len(masks)):
        out[i][rows[owner == i], cols[owner == i]] = True
    return out


def _on_or_in(small: tuple[int, int, int, int], big: tuple[int, int, int, int], nested_fraction: float) -> bool:
    """The small box lies inside the big one, or stands on it: its bottom edge is within the big box's rows
    and most of its columns are over the big box (a can on a plate; not an ottoman in front of a bed)."""
    if _inside_fraction(small, big) >= nested_fraction:
        return True
    cols = max(0, min(small[2], big[2]) - max(small[0], big[0])) / max(small[2] - small[0], 1)
    return big[1] <= small[3] <= big[3] and cols >= 0.5


def _inside_fraction(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> float:
    """Share of the `inner` box's area that lies inside the `outer` box."""
    ix = max(0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    return ix * iy / max(_area(inner), 1)


def remove_support_plane(points: np.ndarray, up: np.ndarray, cfg: LiftingConfig = LiftingConfig(),
                         seed: int = 0, ring_points: Optional[np.ndarray] = None) -> np.ndarray:
    """Bool keep-mask without the horizontal plane the object stands on, if its cloud contains one.

    With `ring_points` (measured points just outside the object's box) the plane must also continue
    there: a table top runs on past a mug's box, while a plate's or a book's own flat top ends at its rim."""
    keep = np.ones(len(points), dtype=bool)
    if len(points) < 50:
        return keep
    rng = np.random.default_rng(seed)
    sample = points if len(points) <= 3000 else points[rng.choice(len(points), 3000, replace=False)]
    normal, offset, sample_inliers = ransac_plane(sample.astype(np.float64), cfg.support_plane_distance_m, 100, rng)
    if sample_inliers.sum() < cfg.support_plane_min_fraction * len(sample):
        return keep
    inliers = np.flatnonzero(np.abs(points @ normal + offset) <= cfg.support_plane_distance_m)
    tilt = math.degrees(math.acos(min(1.0, abs(float(normal @ up)))))
    heights = points @ up
    lo, hi = np.percentile(heights, [1, 99])
    plane_height = float(np.median(heights[inliers]))
    if tilt > cfg.support_plane_max_tilt_deg or plane_height > lo + cfg.support_plane_low_fraction * (hi - lo):
        return keep
    if ring_points is not None and len(ring_points):
        on_plane = np.abs(ring_points @ normal + offset) <= 2 * cfg.support_plane_distance_m
        if on_plane.mean() < cfg.support_ring_fraction:
            return keep
    keep[inliers] = False
    return keep


def main_cluster(points: np.ndarray, range_m: float, intrinsics: CameraIntrinsics,
                 cfg: LiftingConfig = LiftingConfig()) -> np.ndarray:
    """Bool keep-mask of the DBSCAN clusters that are not small stray blobs (flying pixels, bits of
    other surfaces); parts of one object such as a lamp's shade and stem both stay."""
    import open3d as o3d

    if len(points) < cfg.min_points:
        return np.ones(len(points), dtype=bool)
    pixel_m = range_m / intrinsics.fx
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    voxel = max(2 * pixel_m, 0.005)
    down = cloud.voxel_down_sample(voxel)
    while len(down.points) > cfg.max_cluster_points:
        voxel *= 1.5
        down = cloud.voxel_down_sample(voxel)
    # eps bridges a few missing pixels and the depth noise, but not a real gap between objects.
    eps = max(3.0 * voxel, 2.0 * depth_noise_sigma(range_m), 0.03)
    labels = np.asarray(down.cluster_dbscan(eps=eps, min_points=cfg.dbscan_min_points))
    if labels.max(initial=-1) < 0:
        return np.ones(len(points), dtype=bool)
    sizes = np.bincount(labels[labels >= 0])
    big = np.flatnonzero(sizes >= cfg.keep_cluster_fraction * sizes.max())
    kept = np.asarray(down.points)[np.isin(labels, big)]
    dist, _ = cKDTree(kept).query(points, k=1)
    return dist <= eps


def gravity_aligned_box(points: np.ndarray, up: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> Box3D:
    """Box with one axis along `up` and the other two from the minimum-area rectangle of the footprint."""
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    basis = horizontal_basis(up)
    heights = points @ up
    h_lo, h_hi = np.percentile(heights, percentiles)
    flat = points @ basis
    lo, hi = np.percentile(flat, percentiles, axis=0)
    trimmed = flat[np.all((flat >= lo) & (flat <= hi), axis=1)]
    if len(trimmed) < 3:
        trimmed = flat
    (cx, cy), (w, h), angle = cv2.minAreaRect(trimmed.astype(np.float32))
    a = math.radians(angle)
    axis_1 = basis @ np.array([math.cos(a), math.sin(a)])
    axis_2 = np.cross(up, axis_1)
    centre = basis @ np.array([cx, cy]) + up * (h_lo + h_hi) / 2
    rotation = np.stack([axis_1, axis_2, up], axis=1)
    return Box3D(center=centre, size=np.array([max(w, 1e-3), max(h, 1e-3), max(h_hi - h_lo, 1e-3)]), rotation=rotation)


def lift_detections(depth: np.ndarray, intrinsics: CameraIntrinsics, detections: list[Detection], up: np.ndarray,
                    cfg: LiftingConfig = LiftingConfig(), scene_planes: Optional[ScenePlanes] = None
                    ) -> list[Optional[LiftedObject]]:
    """One `LiftedObject` (or None when too few depth points survive) per detection, in order.

    `scene_planes` (floor, walls) are cut out of every box first; they are found here when not given."""
    intrinsics, xyz = depth_points(depth, intrinsics)
    h, w = depth.shape
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    seg = segment_surfaces(depth, intrinsics, up, cfg.segmentation, scene_planes, xyz=xyz)
    boxes = [box_pixels(d.box2d, w, h) for d in detections]
    # A detector's own instance mask is trusted (minus floor and walls); a bare box gets its segments.
    extents = find_objects(seg.labels + 1) if cfg.extent_power > 0 else None
    seeds = [None if d.mask is not None else seed_segment(seg.labels, seg.sizes, b, cfg.inner_fraction, extents,
                                                          cfg.extent_power)
             for d, b in zip(detections, boxes, strict=True)]
    masks = []
    for i, (d, b) in enumerate(zip(detections, boxes, strict=True)):
        if d.mask is not None and d.mask.shape == (h, w):
            masks.append(d.mask & (seg.labels >= 0))
        else:
            taken = [s for j, s in enumerate(seeds) if j != i and s is not None and s != seeds[i]]
            smaller = [o for o in boxes if _area(o) < _area(b)]
            masks.append(grow_segment(seg.labels, seg.sizes, b, seeds[i], xyz, cfg, taken, smaller))
    masks = resolve_overlaps(masks, boxes, xyz, nested_fraction=cfg.nested_box_fraction)
    lifted: list[Optional[LiftedObject]] = []
    for det, mask in zip(detections, masks, strict=True):
        lifted.append(_lift_one(det, mask, xyz, intrinsics, up, cfg))
    return lifted


def _ring_points(xyz: np.ndarray, box2d: tuple[float, float, float, float], width_px: int) -> np.ndarray:
    """Measured points in a band `width_px` wide around the box (inside the image)."""
    h, w = xyz.shape[:2]
    x0, y0, x1, y1 = box_pixels(box2d, w, h)
    X0, Y0, X1, Y1 = max(0, x0 - width_px), max(0, y0 - width_px), min(w, x1 + width_px), min(h, y1 + width_px)
    band = np.zeros((Y1 - Y0, X1 - X0), dtype=bool)
    band[:, :] = True
    band[y0 - Y0: y1 - Y0, x0 - X0: x1 - X0] = False
    pts = xyz[Y0:Y1, X0:X1][band]
    return pts[np.isfinite(pts).all(axis=1)]


def _area(box: tuple[int, int, int, int]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def _lift_one(det: Detection, mask: np.ndarray, xyz: np.ndarray, intrinsics: CameraIntrinsics, up: np.ndarray,
              cfg: LiftingConfig) -> Optional[LiftedObject]:
    rows, cols = np.nonzero(mask)
    pts = xyz[rows, cols]
    ok = np.isfinite(pts).all(axis=1)
    rows, cols, pts = rows[ok], cols[ok], pts[ok]
    if len(pts) < cfg.min_points:
        return None
    keep = remove_support_plane(pts, up, cfg, ring_points=_ring_points(xyz, det.box2d, cfg.support_ring_px))
    rows, cols, pts = rows[keep], cols[keep], pts[keep]
    if len(pts) < cfg.min_points:
        return None
    range_m = float(np.median(np.linalg.norm(pts, axis=1)))
    keep = main_cluster(pts, range_m, intrinsics, cfg)
    rows, cols, pts = rows[keep], cols[keep], pts[keep]
    if len(pts) < cfg.min_points:
        return None
    final = np.zeros_like(mask)
    final[rows, cols] = True
    range_m = float(np.median(np.linalg.norm(pts, axis=1)))
    box = gravity_aligned_box(pts, up, cfg.box_percentiles)
    z = float(np.median(pts[:, 2]))
    x0, _, x1, y1 = det.box2d
    edge = np.array([((x0 + x1) / 2 - intrinsics.cx) * z / intrinsics.fx, (y1 - 1 - intrinsics.cy) * z / intrinsics.fy, z])
    return LiftedObject(det.id, final, pts.astype(np.float32), box, range_m, depth_noise_sigma(range_m),
                        float(edge @ up))
