"""Objects from depth alone: remove the room's structure (floor, walls), then split what is left into
connected surfaces. No detector and no class names: each surface big enough is an "object".

The segmentation is also what the 2D-box lifting uses to tell an object from the occluder in front of
it (lifting.py): a surface that continues far outside a box is not that box's object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .geometry import (
    ScenePlanes,
    depth_points,
    estimate_up,
    estimate_up_from_planes,
    find_scene_planes,
    fit_dominant_planes,
)
from .types import CameraIntrinsics, Detection, RGBDFrame


@dataclass(frozen=True)
class SegmentationConfig:
    stride: int = 2  # segment at 1/stride resolution; labels are upsampled (nearest)
    bridge_px: int = 2  # neighbours up to this many (strided) pixels apart connect, so depth holes do not split objects
    base_jump_m: float = 0.015  # depth step always allowed between neighbours (sensor noise)
    grazing_factor: float = 4.0  # plus this many times the pixel footprint (surfaces seen at up to ~76 deg)
    structure_distance_m: float = 0.025


@dataclass
class Segmentation:
    labels: np.ndarray  # (H, W) int32, -1 = no depth / structure, else segment index
    sizes: np.ndarray  # (n_segments,) pixel counts at full resolution
    planes: ScenePlanes
    up: np.ndarray


def segment_surfaces(depth: np.ndarray, intrinsics: CameraIntrinsics, up: Optional[np.ndarray] = None,
                     cfg: SegmentationConfig = SegmentationConfig(), planes: Optional[ScenePlanes] = None,
                     xyz: Optional[np.ndarray] = None) -> Segmentation:
    """Connected surfaces of a depth image after floor/wall removal (4- and 8-neighbour graph with
    depth-jump thresholds that grow with range). `xyz`: the caller's back-projection of `depth`, if it
    has one already."""
    if xyz is None:
        intrinsics, xyz = depth_points(depth, intrinsics)
    h, w = depth.shape
    if planes is None:
        fitted = fit_dominant_planes(xyz)
        up = estimate_up(xyz, up if up is not None else estimate_up_from_planes(xyz, planes=fitted))
        planes = find_scene_planes(xyz, up, planes=fitted)
    up = estimate_up(xyz, up)
    free = np.isfinite(depth) & (depth > 0) & ~planes.structure_mask(xyz, cfg.structure_distance_m)
    s = cfg.stride
    z = np.where(free, depth, np.nan)[::s, ::s]
    edges = []
    offsets = [(0, d) for d in range(1, cfg.bridge_px + 1)] + [(d, 0) for d in range(1, cfg.bridge_px + 1)] + [(1, 1), (1, -1)]
    pixel_m_per_z = s / intrinsics.fx
    for dy, dx in offsets:
        a, b = neighbour_pairs(z, dy, dx)
        with np.errstate(invalid="ignore"):
            near = np.minimum(a, b)
            allowed = cfg.base_jump_m + cfg.grazing_factor * near * pixel_m_per_z * max(abs(dx), abs(dy))
            edges.append(((dy, dx), np.abs(a - b) <= allowed))
    comp = grid_components(np.isfinite(z), edges)
    # Compact the component ids and bring them back to full resolution.
    valid_ids, small = compact_labels(comp)
    full = np.repeat(np.repeat(small, s, axis=0), s, axis=1)[:h, :w]
    full[~free] = -1
    sizes = np.bincount(full[full >= 0], minlength=len(valid_ids))
    return Segmentation(full, sizes, planes, up)


def compact_labels(comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Component ids (-1 = none) -> (the ids present, ascending; comp renumbered 0..n-1 in that order as
    int32, -1 kept). What np.unique(..., return_inverse=True) gives, without its sort: ids are small ints."""
    labelled = comp >= 0
    ids = comp[labelled]
    present = np.zeros(int(ids.max()) + 1 if ids.size else 0, bool)
    present[ids] = True
    out = np.full(comp.shape, -1, dtype=np.int32)
    out[labelled] = (np.cumsum(present) - 1)[ids]
    return np.flatnonzero(present), out


def neighbour_pairs(image: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """The two views of `image` whose elements are neighbours at offset (dy >= 0, dx)."""
    h, w = image.shape[:2]
    x0, x1 = max(0, -dx), w - max(0, dx)
    return image[: h - dy, x0:x1], image[dy:, x0 + dx: x1 + dx]


def grid_components(valid: np.ndarray, edges: list[tuple[tuple[int, int], np.ndarray]]) -> np.ndarray:
    """Connected components of a pixel graph: `edges` holds, per offset (dy, dx), which neighbour pairs
    (as laid out by `neighbour_pairs`) connect. -> (H, W) component ids, -1 where not `valid`."""
    h, w = valid.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols = [], []
    for (dy, dx), ok in edges:
        va, vb = neighbour_pairs(valid, dy, dx)
        ia, ib = neighbour_pairs(idx, dy, dx)
        keep = ok & va & vb
        rows.append(ia[keep])
        cols.append(ib[keep])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(h * w, h * w))
    _, comp = connected_components(graph, directed=False)
    comp = comp.reshape(h, w)
    comp[~valid] = -1
    return comp


@dataclass
class AgnosticObject:
    segment: int
    mask: np.ndarray  # (H, W) bool
    box2d: tuple[float, float, float, float]
    n_pixels: int


def find_objects(frame: RGBDFrame, min_pixels: int = 400, max_fraction: float = 0.6,
                 cfg: SegmentationConfig = SegmentationConfig()) -> list[AgnosticObject]:
    """Surfaces that are object-sized: at least `min_pixels`, at most `max_fraction` of the image
    (bigger ones are leftover structure such as a ceiling or a wall the plane fit missed)."""
    if frame.depth is None:
        raise ValueError("the class-agnostic detector needs a depth image")
    w, h = frame.size
    depth = np.asarray(frame.depth, dtype=np.float32)
    if depth.shape != (h, w):  # boxes and masks are in colour pixels
        depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
    seg = segment_surfaces(depth, frame.intrinsics.scaled(w, h), frame.up, cfg)
    found = []
    for sid in np.flatnonzero((seg.sizes >= min_pixels) & (seg.sizes <= max_fraction * h * w)):
        mask = seg.labels == sid
        ys, xs = np.nonzero(mask)
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        found.append(AgnosticObject(int(sid), mask, box, int(seg.sizes[sid])))
    found.sort(key=lambda o: -o.n_pixels)
    return found


def agnostic_detections(frame: RGBDFrame, **kwargs) -> list[Detection]:
    """`find_objects` as detections labelled "object" (score = 1, mask attached)."""
    dets = []
    for i, o in enumerate(find_objects(frame, **kwargs)):
        dets.append(Detection(id=f"object_{i}", label="object", score=1.0, box2d=o.box2d, mask=o.mask,
                              description=f"object {i}"))
    return dets
