"""Class-agnostic region proposals for the student's region head: a selective-search-style set of
surfaces from depth and colour, at the working resolution of object_features.

FINDINGS.md measured that a pixels-to-boxes head does not learn on a CPU budget, while a classifier over
object-centric inputs does. So the geometry proposes regions (no learning, no class names) and the
model's region head names them or rejects them. Four kinds of region, all as masks:

* surfaces of similar colour and continuous depth, at several colour tolerances (objects split from
  what they touch when their colour differs, which depth alone cannot do);
* support tops: large horizontal planes above the floor (table, desk, shelf boards), which are cut
  out of the first kind so that an object standing on a table is not joined to it;
* things lying flat on the floor, found by their colour inside the floor band (a plate on the floor is
  level with it within the depth noise);
* the depth-only segments of class_agnostic.py (whole pieces of furniture with what stands on them).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .class_agnostic import SegmentationConfig, grid_components, neighbour_pairs, segment_surfaces
from .geometry import (
    PlaneFit,
    ScenePlanes,
    estimate_up,
    estimate_up_from_planes,
    find_scene_planes,
    fit_dominant_planes,
)
from .types import CameraIntrinsics

NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class ProposalConfig:
    # (chromaticity L1 step, log-intensity step) allowed between neighbours, one segmentation per level
    color_levels: tuple[tuple[float, float], ...] = ((0.05, 0.2), (0.1, 0.4), (0.2, 0.8))
    depth_step_m: float = 0.01  # plus `grazing_factor` pixel footprints, as in class_agnostic
    grazing_factor: float = 4.0
    support_distance_m: float = 0.006  # thinner than a plate, so plates stay objects
    support_median_px: int = 5  # a support top is what most of this window (3 or 5 px) is on; 0 = per pixel
    # Floor/wall band cut from the colour segments (plus 2 sigma of depth noise). Thinner than the 2.5 cm
    # the depth-only segments use, so a plate or a closed laptop lying on the floor is still proposed.
    floor_distance_m: float = 0.012
    support_min_cos: float = 0.95  # a support top faces up within ~18 degrees
    min_pixels: int = 20  # at the working resolution (320x240): about 0.03 % of the image
    max_fraction: float = 0.6
    duplicate_iou: float = 0.9  # boxes this similar are one proposal
    # Things lying flat on the floor (plates, closed laptops) sit inside the floor band, where depth cannot
    # separate them: pixels of a wider band whose colour is unlike the floor's median become proposals too.
    floor_band_m: float = 0.03  # 0 turns them off
    floor_odd_chroma: float = 0.08  # chromaticity L1 from the floor's median
    floor_odd_intensity: float = 0.5  # |log-intensity difference| from the floor's median
    floor_object_max_fraction: float = 0.05
    max_proposals: int = 64
    # Seed of the RANSAC plane fit. Which planes it finds moves answers by 2.6-4.1 points on val from one
    # seed to the next (results/seed_spread_val*.json), so smaller A/B differences are noise.
    plane_seed: int = 0

    def __post_init__(self):
        if self.support_median_px not in (0, 1, 3, 5):  # what OpenCV's median filter takes for float32
            raise ValueError(f"support_median_px must be 0, 1, 3 or 5, got {self.support_median_px}")


@dataclass
class Proposal:
    box: np.ndarray  # (4,) x0, y0, x1, y1 as fractions of the image
    mask: np.ndarray  # (h, w) bool at the working resolution


def region_proposals(rgb_small: np.ndarray, points_small: np.ndarray, intrinsics_small: CameraIntrinsics,
                     up: np.ndarray | None, cfg: ProposalConfig = ProposalConfig()) -> list[Proposal]:
    """rgb_small (h, w, 3) uint8 and points_small (h, w, 3) camera-frame metres with NaN holes, both at
    the working resolution (object_features.working_views); intrinsics of that resolution."""
    depth = points_small[..., 2]
    finite = np.isfinite(depth) & (depth > 0)
    planes = fit_dominant_planes(points_small, seed=cfg.plane_seed)
    up = estimate_up(points_small, up if up is not None else estimate_up_from_planes(points_small, planes=planes))
    scene = find_scene_planes(points_small, up, planes=planes)
    structure = scene.structure_mask(points_small, cfg.floor_distance_m)
    support = support_mask(points_small, planes, scene, up, cfg)

    masks: list[np.ndarray] = []
    objects = finite & ~structure & ~support
    depth_ok = _depth_edges(depth, intrinsics_small.fx, cfg)
    color = rgb_small.astype(np.float32) + 1.0
    total = (color[..., 0] + color[..., 1] + color[..., 2])[..., None]  # = .sum(-1), 4x faster
    chroma, intensity = color / total, np.log(total[..., 0])
    # colour steps between neighbours, computed once for every colour level
    steps = [(d, ok, *_colour_steps(chroma, intensity, *d)) for d, ok in depth_ok]
    for chroma_step, intensity_step in cfg.color_levels:
        edges = [(d, ok & (dc <= chroma_step) & (di <= intensity_step)) for d, ok, dc, di in steps]
        masks += _component_masks(grid_components(objects, edges), cfg.min_pixels, cfg.max_fraction)
    masks += _on_floor_masks(scene, points_small, chroma, intensity, steps, cfg)
    if support.any():
        edges = [((dy, dx), np.ones_like(ok)) for (dy, dx), ok in depth_ok]
        masks += _component_masks(grid_components(support, edges), 4 * cfg.min_pixels, cfg.max_fraction)
    seg = segment_surfaces(np.where(finite, depth, np.nan), intrinsics_small, up, SegmentationConfig(stride=1),
                           planes=scene, xyz=points_small)
    masks += [seg.labels == i for i in np.flatnonzero((seg.sizes >= 4 * cfg.min_pixels)
                                                       & (seg.sizes <= cfg.max_fraction * depth.size))]
    return _deduplicate(masks, cfg)


def support_mask(points: np.ndarray, planes: list[PlaneFit], scene: ScenePlanes, up: np.ndarray,
                 cfg: ProposalConfig) -> np.ndarray:
    """Pixels of the large horizontal planes above the floor (table, desk and shelf tops), from `points`
    (h, w, 3). A pixel belongs to a top when most of its `support_median_px` window is within
    `support_distance_m` of the plane (the median of the distance). Tested pixel by pixel, range noise
    (7.6 mm sigma at 1.5 m) left a top in specks: objects measured their gap to the table from the specks
    that were left, and a speckled top was a poor table to the region head. The vote keeps a plate,
    2 cm proud of the top, out. The median of the signed distance, with the same band, took in the
    bottoms of what stands on the top and was worse on the selection split (results/select_trials.json)."""
    support = np.zeros(points.shape[:2], bool)
    with np.errstate(invalid="ignore"):
        for p in planes:
            is_floor = scene.floor is not None and abs(p.offset - scene.floor.offset) < 0.05
            if p.normal @ up >= cfg.support_min_cos and not is_floor:
                d = np.abs(points @ p.normal + p.offset)
                if cfg.support_median_px > 1:  # NaN (no depth) counts as far from the plane
                    d = cv2.medianBlur(np.nan_to_num(d, nan=1.0).astype(np.float32), cfg.support_median_px)
                support |= d <= cfg.support_distance_m
    return support


def _colour_steps(chroma: np.ndarray, intensity: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """Chromaticity L1 and |log-intensity| differences between each pixel and its (dy, dx) neighbour."""
    ca, cb = neighbour_pairs(chroma, dy, dx)
    ia, ib = neighbour_pairs(intensity, dy, dx)
    d = np.abs(ca - cb)
    # the three channels added in the order .sum(-1) adds them (same floats), without a strided reduction
    return d[..., 0] + d[..., 1] + d[..., 2], np.abs(ia - ib)


def _on_floor_masks(scene: ScenePlanes, points: np.ndarray, chroma: np.ndarray, intensity: np.ndarray,
                    steps: list, cfg: ProposalConfig) -> list[np.ndarray]:
    """Segments of the floor band whose colour differs from the floor's (median over the band). `steps`:
    (offset, depth ok, chroma step, intensity step) per neighbour offset; depth is not asked."""
    if scene.floor is None or cfg.floor_band_m <= 0:
        return []
    band = ScenePlanes(scene.floor, []).structure_mask(points, cfg.floor_band_m)
    if np.count_nonzero(band) < 100:
        return []
    unlike = band & ((np.abs(chroma - np.median(chroma[band], 0)).sum(-1) > cfg.floor_odd_chroma)
                     | (np.abs(intensity - np.median(intensity[band])) > cfg.floor_odd_intensity))
    chroma_step, intensity_step = cfg.color_levels[1]
    edges = [(d, (dc <= chroma_step) & (di <= intensity_step)) for d, _, dc, di in steps]
    return _component_masks(grid_components(unlike, edges), cfg.min_pixels, cfg.floor_object_max_fraction)


def _depth_edges(depth: np.ndarray, fx: float, cfg: ProposalConfig) -> list[tuple[tuple[int, int], np.ndarray]]:
    out = []
    for dy, dx in NEIGHBOURS:
        a, b = neighbour_pairs(depth, dy, dx)
        with np.errstate(invalid="ignore"):
            out.append(((dy, dx), np.abs(a - b) <= cfg.depth_step_m + cfg.grazing_factor * np.fmin(a, b) / fx))
    return out


def _component_masks(comp: np.ndarray, min_pixels: int, max_fraction: float) -> list[np.ndarray]:
    counts = np.bincount(comp[comp >= 0])  # = np.unique(..., return_counts=True) without its sort
    ids = np.flatnonzero(counts)
    counts = counts[ids]
    keep = ids[(counts >= min_pixels) & (counts <= max_fraction * comp.size)]
    return [comp == i for i in keep]


def mask_at_size(mask: np.ndarray, w: int, h: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """`mask` (any size) at (h, w), nearest neighbour, read only inside `box` ((x0, y0, x1, y1) in pixels
    of the new size, + 1 px), where all of a detection's pixels lie: upsampling whole 640x480 masks to a
    1280x720 frame cost 11 ms for 8 detections, 55 ms at 4K."""
    mh, mw = mask.shape
    if (mh, mw) == (h, w):
        return mask
    out = np.zeros((h, w), bool)
    x0, y0 = max(0, int(np.floor(box[0])) - 1), max(0, int(np.floor(box[1])) - 1)
    x1, y1 = min(w, int(np.ceil(box[2])) + 1), min(h, int(np.ceil(box[3])) + 1)
    if x1 > x0 and y1 > y0:
        rows = np.arange(y0, y1) * mh // h
        cols = np.arange(x0, x1) * mw // w
        out[y0:y1, x0:x1] = mask[np.ix_(rows, cols)]
    return out


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Bounding box of a non-empty mask as fractions of the image (x1/y1 exclusive)."""
    h, w = mask.shape
    cols, rows = mask.any(0), mask.any(1)  # two reductions are much cheaper than np.nonzero
    x0, x1 = cols.argmax(), w - cols[::-1].argmax()
    y0, y1 = rows.argmax(), h - rows[::-1].argmax()
    return np.array([x0 / w, y0 / h, x1 / w, y1 / h])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4) -> (N, M)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-12)


def _deduplicate(masks: list[np.ndarray], cfg: ProposalConfig) -> list[Proposal]:
    """Largest first; a box that repeats an earlier one is dropped."""
    masks = sorted(masks, key=lambda m: -np.count_nonzero(m))
    kept: list[Proposal] = []
    for m in masks:
        box = mask_box(m)
        if kept and box_iou(box[None], np.stack([p.box for p in kept])).max() >= cfg.duplicate_iou:
            continue
        kept.append(Proposal(box, m))
        if len(kept) >= cfg.max_proposals:
            break
    return kept

