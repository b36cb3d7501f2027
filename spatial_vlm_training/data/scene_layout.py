"""Random scene layouts: a floor, optional furniture and 2-8 objects placed with deliberate relations.

World frame: z up, the floor is z = 0, metres. Besides free placements the sampler builds the pairs
the questions need: stacked objects, side-by-side touching pairs (slid together until their
surfaces meet), near pairs (a few cm to ~20 cm apart) and, by spreading objects over the floor and
the furniture, far pairs. The labels are NOT taken from these intentions: ground_truth.py measures
every gap on the meshes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import open3d as o3d

from .meshes import (
    COLORS,
    FURNITURE_CATEGORIES,
    FURNITURE_COLORS,
    LAPTOP_COLORS,
    OBJECT_CATEGORIES,
    Mesh,
    make_furniture,
    make_object,
)
from .raycast import compute_distance
from .sample import FLOOR

FLOOR_HALF_M = 0.8  # objects on the floor stay within this square around the origin
STACKABLE = {"mug", "bottle", "book", "box", "ball", "can", "bowl", "plate"}


@dataclass
class PlacedObject:
    id: str
    category: str
    color: str
    mesh: Mesh
    yaw: float
    position: np.ndarray  # world position of the local origin (bottom centre)
    support: str  # id of the object it was put on, or "floor"
    intent: str = "free"  # free | stack | touch | near (how it was placed, for statistics only)
    partner: Optional[str] = None
    is_furniture: bool = False

    @property
    def rotation(self) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    @property
    def world_vertices(self) -> np.ndarray:
        return self.mesh.vertices @ self.rotation.T + self.position

    @property
    def description(self) -> str:
        return f"{self.color} {self.category}"

    def world_aabb(self) -> tuple[np.ndarray, np.ndarray]:
        v = self.world_vertices
        return v.min(axis=0), v.max(axis=0)


@dataclass
class Surface:
    owner: str  # object id or "floor"
    z: float
    center: np.ndarray  # world xy
    half: np.ndarray  # half extents along the owner's axes
    yaw: float
    clearance: float = 10.0

    def sample_xy(self, rng: np.random.Generator, margin: float) -> Optional[np.ndarray]:
        room = self.half - margin
        if (room <= 0).any():
            return None
        local = rng.uniform(-room, room)
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return self.center + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])

    def contains(self, xy: np.ndarray, margin: float) -> bool:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        d = xy - self.center
        local = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
        return bool((np.abs(local) <= self.half - margin).all())


@dataclass
class SceneLayout:
    objects: list[PlacedObject]  # furniture first
    floor_albedo: tuple[int, int, int]
    surfaces: list[Surface] = field(default_factory=list)

    def by_id(self, object_id: str) -> PlacedObject:
        return next(o for o in self.objects if o.id == object_id)


def _surfaces_of(obj: PlacedObject) -> list[Surface]:
    out = []
    for top in obj.mesh.tops:
        center_local = np.array([top.center_xy[0], top.center_xy[1], top.z])
        center_world = obj.rotation @ center_local + obj.position
        out.append(Surface(obj.id, float(center_world[2]), center_world[:2], np.asarray(top.half_xy), obj.yaw,
                           top.clearance))
    return out


class _DistanceOracle:
    """Exact point-to-mesh distances for sliding objects into contact."""

    def __init__(self, obj: PlacedObject):
        self.scene = o3d.t.geometry.RaycastingScene()
        v = obj.world_vertices.astype(np.float32)
        self.scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(obj.mesh.triangles.astype(np.uint32)))

    def distance(self, points: np.ndarray) -> float:
        d = compute_distance(self.scene, points)
        return float(d.min())


def _surface_points(mesh: Mesh, rng: np.random.Generator, n: int) -> np.ndarray:
    """Area-weighted random points on a mesh plus its vertices (local frame)."""
    v, t = mesh.vertices, mesh.triangles
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    idx = rng.choice(len(t), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    pts = (1 - s)[:, None] * a[idx] + (s * (1 - r2))[:, None] * b[idx] + (s * r2)[:, None] * c[idx]
    return np.vstack([pts, v])


class LayoutSampler:
    def __init__(self, rng: np.random.Generator, furniture_prob: float = 0.75):
        self.rng = rng
        self.furniture_prob = furniture_prob

    def sample(self) -> SceneLayout:
        """A layout with at least two small objects (a crowded draw can fail to place them; redraw then)."""
        for _ in range(50):
            layout = self._sample_once()
            if sum(not o.is_furniture for o in layout.objects) >= 2:
                return layout
        raise RuntimeError("could not place two objects in 50 layouts")

    def _sample_once(self) -> SceneLayout:
        rng = self.rng
        objects: list[PlacedObject] = []
        surfaces: list[Surface] = []
        floor = Surface(FLOOR, 0.0, np.zeros(2), np.array([FLOOR_HALF_M, FLOOR_HALF_M]), 0.0)
        if rng.random() < self.furniture_prob:
            cat = str(rng.choice(FURNITURE_CATEGORIES))
            furn = PlacedObject("obj0", cat, str(rng.choice(FURNITURE_COLORS)), make_furniture(cat, rng),
                                float(rng.uniform(-np.pi, np.pi)), np.zeros(3), FLOOR, is_furniture=True)
            objects.append(furn)
            surfaces += _surfaces_of(furn)
        n_small = int(rng.integers(2, 9))
        used = {(o.color, o.category) for o in objects}
        for _ in range(n_small):
            for _attempt in range(20):
                cat = str(rng.choice(OBJECT_CATEGORIES))
                color = str(rng.choice(LAPTOP_COLORS if cat == "laptop" else tuple(COLORS)))
                if (color, cat) not in used:
                    break
            else:
                continue
            obj_id = f"obj{len(objects)}"
            mesh = make_object(cat, rng)
            placed = self._place(obj_id, cat, color, mesh, objects, surfaces, floor)
            if placed is None:
                continue
            used.add((color, cat))
            objects.append(placed)
            surfaces += _surfaces_of(placed)
        albedo = tuple(int(v) for v in rng.integers(90, 200, size=3))
        return SceneLayout(objects, albedo, surfaces)  # type: ignore[arg-type]

    # --- placement ---------------------------------------------------------------------------
    def _place(self, obj_id: str, cat: str, color: str, mesh: Mesh, objects: list[PlacedObject],
               surfaces: list[Surface], floor: Surface) -> Optional[PlacedObject]:
        rng = self.rng
        smalls = [o for o in objects if not o.is_furniture]
        modes = ["free"]
        weights = [0.3]
        if smalls:
            modes += ["touch", "near"]
            weights += [0.3, 0.2]
            if cat in STACKABLE and any(s.owner != FLOOR and not self._is_furniture(s.owner, objects) for s in surfaces):
                modes.append("stack")
                weights.append(0.25)
        w = np.asarray(weights) / np.sum(weights)
        for _ in range(12):
            mode = str(rng.choice(modes, p=w))
            yaw = float(rng.uniform(-np.pi, np.pi))
            if mode == "stack":
                tops = [s for s in surfaces if not self._is_furniture(s.owner, objects)]
                placed = self._on_surface(obj_id, cat, color, mesh, yaw, tops[int(rng.integers(len(tops)))], objects,
                                          "stack", margin_frac=0.0)
            elif mode == "free":
                furniture_tops = [s for s in surfaces if self._is_furniture(s.owner, objects)]
                surf = furniture_tops[int(rng.integers(len(furniture_tops)))] if furniture_tops and rng.random() < 0.6 else floor
                placed = self._on_surface(obj_id, cat, color, mesh, yaw, surf, objects, "free", margin_frac=1.0)
            else:
                partner = smalls[int(rng.integers(len(smalls)))]
                placed = self._beside(obj_id, cat, color, mesh, yaw, partner, objects, surfaces, floor, mode)
            if placed is not None:
                return placed
        return None

    @staticmethod
    def _is_furniture(owner: str, objects: list[PlacedObject]) -> bool:
        return any(o.id == owner and o.is_furniture for o in objects)

    def _on_surface(self, obj_id, cat, color, mesh, yaw, surf: Surface, objects, intent, margin_frac) -> Optional[PlacedObject]:
        height = float(mesh.upper[2])
        if height > surf.clearance - 0.01:
            return None
        r = mesh.radius_xy
        # Stacked objects may overhang a little; free ones stay fully on their surface.
        margin = r * margin_frac + 0.01 if margin_frac > 0 else min(r * 0.3, float(surf.half.min()) * 0.5)
        xy = surf.sample_xy(self.rng, margin)
        if xy is None:
            return None
        obj = PlacedObject(obj_id, cat, color, mesh, yaw, np.array([xy[0], xy[1], surf.z]), surf.owner, intent,
                           surf.owner if intent == "stack" else None)
        ignore = {surf.owner}
        return obj if not self._collides(obj, objects, ignore) else None

    def _beside(self, obj_id, cat, color, mesh, yaw, partner: PlacedObject, objects, surfaces, floor, mode) -> Optional[PlacedObject]:
        """Slide the new object towards `partner` on the partner's support until the surfaces meet."""
        surf = floor if partner.support == FLOOR else next(
            (s for s in surfaces if s.owner == partner.support and abs(s.z - partner.position[2]) < 1e-6), None)
        if surf is None or mesh.upper[2] > surf.clearance - 0.01:
            return None
        angle = float(self.rng.uniform(-np.pi, np.pi))
        direction = np.array([np.cos(angle), np.sin(angle), 0.0])
        start = partner.position + direction * (partner.mesh.radius_xy + mesh.radius_xy + 0.05)
        start[2] = surf.z
        obj = PlacedObject(obj_id, cat, color, mesh, yaw, start, surf.owner, mode, partner.id)
        oracle = _DistanceOracle(partner)
        local_pts = _surface_points(mesh, self.rng, 600)
        rot = obj.rotation
        for _ in range(8):
            gap = oracle.distance(local_pts @ rot.T + obj.position)
            if gap < 0.0005:
                break
            # Moving by the gap never makes the surfaces cross (distance is 1-Lipschitz).
            obj.position = obj.position - direction * gap
        else:
            return None
        if mode == "near":
            obj.position = obj.position + direction * float(self.rng.uniform(0.04, 0.2))
        if not surf.contains(obj.position[:2], margin=mesh.radius_xy * 0.6):
            return None
        ignore = {surf.owner} | ({partner.id} if mode == "touch" else set())
        return obj if not self._collides(obj, objects, ignore) else None

    @staticmethod
    def _collides(obj: PlacedObject, objects: list[PlacedObject], ignore: set[str], margin: float = 0.004) -> bool:
        lo, hi = obj.world_aabb()
        if obj.support == FLOOR and (np.abs(lo[:2]) > FLOOR_HALF_M + 0.3).any():
            return True
        for other in objects:
            if other.id in ignore:
                continue
            olo, ohi = other.world_aabb()
            if (lo < ohi + margin).all() and (olo - margin < hi).all():
                return True
        return False
