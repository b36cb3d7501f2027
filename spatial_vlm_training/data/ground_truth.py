"""Exact metric relations of a layout, measured on the meshes (not taken from the layout's intent).

The surface gap of a pair is the smallest distance from densely sampled surface points of one mesh
to the exact triangles of the other, both ways (open3d RaycastingScene.compute_distance). Designed
contacts come out at ~0 mm because the layout slides or stacks surfaces onto each other exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from spatial_vlm_ros.inference.geometry import DEFAULT_THRESHOLDS, RelationThresholds, label_gap

from .raycast import compute_distance
from .sample import FLOOR
from .scene_layout import PlacedObject, SceneLayout, _surface_points

POINTS_PER_M2 = 40_000  # ~5 mm spacing: a sampled point-to-mesh gap overshoots a curved contact by < 0.1 mm
MIN_POINTS, MAX_POINTS = 600, 8000
BOTTOM_BAND_M = 0.005  # the "lowest points" of an object, for the resting-on test
ON_FRACTION = 0.3  # share of the lowest points that must touch the supporter
COARSE_POINTS = 300
DENSE_BELOW_M = 0.7  # pairs whose boxes are further apart keep the coarse gap: their labels are already certain


@dataclass
class SceneTruth:
    ids: list[str]
    gaps: np.ndarray  # (n, n) symmetric surface gaps in metres, 0 on the diagonal
    on: np.ndarray  # (n, n) bool, on[i, j]: object i rests on object j
    resting_on: dict[str, str]  # id -> supporter id or "floor"
    points: dict[str, np.ndarray]  # world surface samples per object (for tests and box checks)

    def gap(self, a: str, b: str) -> float:
        return float(self.gaps[self.ids.index(a), self.ids.index(b)])

    def labels(self, a: str, b: str, t: RelationThresholds = DEFAULT_THRESHOLDS) -> dict:
        i, j = self.ids.index(a), self.ids.index(b)
        out = dict(label_gap(float(self.gaps[i, j]), t))
        out["on"] = bool(self.on[i, j])
        return out


def _scene_of(obj: PlacedObject) -> o3d.t.geometry.RaycastingScene:
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(obj.world_vertices.astype(np.float32)),
                        o3d.core.Tensor(obj.mesh.triangles.astype(np.uint32)))
    return scene


def _area(obj: PlacedObject) -> float:
    v, t = obj.mesh.vertices, obj.mesh.triangles
    return float(0.5 * np.linalg.norm(np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]]), axis=1).sum())


def _aabb_gap(lo_a, hi_a, lo_b, hi_b) -> float:
    """Distance between two axis-aligned boxes: a lower bound of the surface gap."""
    d = np.maximum(0.0, np.maximum(lo_a - hi_b, lo_b - hi_a))
    return float(np.linalg.norm(d))


def _within(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, r: float) -> np.ndarray:
    return points[((points >= lo - r) & (points <= hi + r)).all(axis=1)]


def _min_distance(scene: o3d.t.geometry.RaycastingScene, points: np.ndarray) -> np.ndarray:
    if len(points) == 0:
        return np.full(1, np.inf)
    return compute_distance(scene, points)


def measure(layout: SceneLayout, rng: np.random.Generator, t: RelationThresholds = DEFAULT_THRESHOLDS) -> SceneTruth:
    objs = layout.objects
    n = len(objs)
    ids = [o.id for o in objs]
    points = {}
    for o in objs:
        k = int(np.clip(_area(o) * POINTS_PER_M2, MIN_POINTS, MAX_POINTS))
        points[o.id] = _surface_points(o.mesh, rng, k) @ o.rotation.T + o.position
    coarse = {k: v[:: max(1, len(v) // COARSE_POINTS)] for k, v in points.items()}
    scenes = [_scene_of(o) for o in objs]
    boxes = [(points[i].min(axis=0), points[i].max(axis=0)) for i in ids]
    lo = np.array([b[0][2] for b in boxes])
    # One distance query per target mesh: first coarse samples of every other object (an upper
    # bound of each gap), then only the dense points that can beat that bound.
    upper = np.full((n, n), np.inf)
    for j in range(n if n > 1 else 0):
        others = [i for i in range(n) if i != j]
        d = _min_distance(scenes[j], np.vstack([coarse[ids[i]] for i in others]))
        splits = np.cumsum([len(coarse[ids[i]]) for i in others])[:-1]
        for i, di in zip(others, np.split(d, splits), strict=True):
            upper[i, j] = di.min()
    bound = np.minimum(upper, upper.T)
    for j in range(n):
        chunks, owners = [], []
        for i in range(n):
            if i == j or _aabb_gap(*boxes[i], *boxes[j]) >= DENSE_BELOW_M:
                continue
            near_pts = _within(points[ids[i]], *boxes[j], float(bound[i, j]) + 0.002)
            if len(near_pts):
                chunks.append(near_pts)
                owners.append(np.full(len(near_pts), i))
        if chunks:
            d = _min_distance(scenes[j], np.vstack(chunks))
            owner = np.concatenate(owners)
            np.minimum.at(upper[:, j], owner, d)
    gaps = np.minimum(upper, upper.T)
    np.fill_diagonal(gaps, 0.0)
    on = np.zeros((n, n), dtype=bool)
    for i in range(n):
        if lo[i] <= t.contact_m:
            continue  # on the floor
        bottom_pts = points[ids[i]][points[ids[i]][:, 2] <= lo[i] + BOTTOM_BAND_M]
        for j in range(n):
            if i == j or gaps[i, j] > t.contact_m:
                continue
            touching = _min_distance(scenes[j], bottom_pts) <= t.contact_m
            # i rests on j when its lowest surface lies on j and j is not above it.
            on[i, j] = bool(touching.mean() >= ON_FRACTION and lo[i] > lo[j] + 1e-4)
    resting_on = {}
    for i, o in enumerate(objs):
        supporters = [ids[j] for j in range(n) if on[i, j]]
        if lo[i] <= t.contact_m:
            resting_on[o.id] = FLOOR
        elif supporters:
            # The supporter whose top is closest under the object's bottom carries it.
            resting_on[o.id] = min(supporters, key=lambda s: gaps[i, ids.index(s)])
        else:
            resting_on[o.id] = o.support
    return SceneTruth(ids, gaps, on, resting_on, points)
