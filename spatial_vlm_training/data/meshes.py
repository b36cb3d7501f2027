"""Triangle meshes of the scene's objects and furniture, built from open3d primitives.

Every mesh is in its own local frame: z up, resting on z = 0, centred on the xy origin. Objects that
can carry others expose flat `SupportTop`s (local rectangles) the layout stacks onto.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

OBJECT_CATEGORIES = ("mug", "bottle", "book", "box", "ball", "can", "bowl", "laptop", "plate")
FURNITURE_CATEGORIES = ("table", "desk", "shelf")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35), "green": (40, 150, 60), "blue": (35, 70, 190), "yellow": (225, 200, 40),
    "orange": (235, 120, 25), "purple": (120, 50, 150), "white": (225, 225, 220), "black": (35, 35, 38),
    "gray": (128, 128, 132), "brown": (120, 75, 40), "pink": (230, 120, 170),
}
FURNITURE_COLORS = ("brown", "white", "black", "gray")
LAPTOP_COLORS = ("gray", "black", "white")


@dataclass
class SupportTop:
    """A flat, upward-facing rectangle of a mesh other objects may rest on (local frame)."""

    z: float
    center_xy: tuple[float, float]
    half_xy: tuple[float, float]
    clearance: float = 10.0  # free height above the surface (shelf boards have a board above)


@dataclass
class Mesh:
    vertices: np.ndarray  # (N, 3) float64, local frame
    triangles: np.ndarray  # (M, 3) int32
    tops: list[SupportTop] = field(default_factory=list)

    @property
    def lower(self) -> np.ndarray:
        return self.vertices.min(axis=0)

    @property
    def upper(self) -> np.ndarray:
        return self.vertices.max(axis=0)

    @property
    def radius_xy(self) -> float:
        return float(np.linalg.norm(self.vertices[:, :2], axis=1).max())


def _arrays(m: o3d.geometry.TriangleMesh) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(m.vertices, dtype=np.float64), np.asarray(m.triangles, dtype=np.int32)


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    verts, tris, offset = [], [], 0
    for v, t in parts:
        verts.append(v)
        tris.append(t + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(tris).astype(np.int32)


def box(sx: float, sy: float, sz: float, at: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box whose bottom face is centred at `at`."""
    v, t = _arrays(o3d.geometry.TriangleMesh.create_box(sx, sy, sz))
    return v - np.array([sx / 2, sy / 2, 0.0]) + np.asarray(at), t


def frustum(r_bottom: float, r_top: float, height: float, z0: float = 0.0, segments: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Closed truncated cone (a cylinder when the radii agree) standing on z0."""
    a = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.cos(a), np.sin(a)], 1)
    bottom = np.column_stack([ring * r_bottom, np.full(segments, z0)])
    top = np.column_stack([ring * r_top, np.full(segments, z0 + height)])
    verts = np.vstack([bottom, top, [[0, 0, z0]], [[0, 0, z0 + height]]])
    cb, ct = 2 * segments, 2 * segments + 1
    tris = []
    for i in range(segments):
        j = (i + 1) % segments
        tris += [[i, j, segments + j], [i, segments + j, segments + i], [cb, j, i], [ct, segments + i, segments + j]]
    return verts, np.asarray(tris, dtype=np.int32)


def sphere(radius: float) -> tuple[np.ndarray, np.ndarray]:
    v, t = _arrays(o3d.geometry.TriangleMesh.create_sphere(radius, resolution=12))
    return v + np.array([0.0, 0.0, radius]), t


def torus_handle(radius: float, tube: float, x: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """A mug handle: a torus in the xz plane centred at (x, 0, z)."""
    v, t = _arrays(o3d.geometry.TriangleMesh.create_torus(radius, tube, radial_resolution=12, tubular_resolution=6))
    v = v[:, [0, 2, 1]]  # rotate the ring from the xy into the xz plane
    return v + np.array([x, 0.0, z]), t[:, [0, 2, 1]]


def make_object(category: str, rng: np.random.Generator) -> Mesh:
    u = rng.uniform
    if category == "mug":
        r, h = u(0.035, 0.045), u(0.08, 0.105)
        body = frustum(r, r, h)
        handle = torus_handle(h * 0.28, 0.007, r + h * 0.12, h * 0.5)
        return Mesh(*_merge([body, handle]))
    if category == "bottle":
        r, h = u(0.03, 0.04), u(0.15, 0.22)
        neck_r = u(0.011, 0.015)
        parts = [frustum(r, r, h), frustum(r, neck_r, 0.04, z0=h), frustum(neck_r, neck_r, u(0.03, 0.05), z0=h + 0.04)]
        return Mesh(*_merge(parts))
    if category == "book":
        sx, sy, sz = u(0.15, 0.22), u(0.2, 0.28), u(0.02, 0.05)
        return Mesh(*box(sx, sy, sz), tops=[SupportTop(sz, (0.0, 0.0), (sx / 2, sy / 2))])
    if category == "box":
        sx, sy, sz = u(0.1, 0.3), u(0.1, 0.25), u(0.06, 0.2)
        return Mesh(*box(sx, sy, sz), tops=[SupportTop(sz, (0.0, 0.0), (sx / 2, sy / 2))])
    if category == "ball":
        return Mesh(*sphere(u(0.035, 0.11)))
    if category == "can":
        r = u(0.032, 0.035)
        return Mesh(*frustum(r, r, u(0.115, 0.125)))
    if category == "bowl":
        r = u(0.07, 0.1)
        return Mesh(*frustum(r * 0.55, r, u(0.05, 0.07)))
    if category == "laptop":
        sx, sy, base_h = u(0.3, 0.36), u(0.2, 0.25), 0.02
        base = box(sx, sy, base_h)
        # The screen hinges on the back edge (+y), opened 100-120 degrees from the base.
        angle = np.deg2rad(u(100, 120))
        sv, st = box(sx, 0.008, sy)
        sv = sv - np.array([0.0, 0.0, 0.0])
        tilt = angle - np.pi / 2  # lean backwards from vertical
        rot = np.array([[1, 0, 0], [0, np.cos(tilt), np.sin(tilt)], [0, -np.sin(tilt), np.cos(tilt)]])
        sv = sv @ rot.T + np.array([0.0, sy / 2, base_h])
        return Mesh(*_merge([base, (sv, st)]))
    if category == "plate":
        r = u(0.1, 0.13)
        h = 0.02
        return Mesh(*frustum(r * 0.65, r, h), tops=[SupportTop(h, (0.0, 0.0), (r * 0.6, r * 0.6))])
    raise ValueError(f"unknown object category {category!r}")


def make_furniture(category: str, rng: np.random.Generator) -> Mesh:
    u = rng.uniform
    if category == "table":
        sx, sy, height, t = u(0.8, 1.4), u(0.6, 0.9), u(0.7, 0.78), 0.03
        leg = 0.05
        parts = [box(sx, sy, t, (0.0, 0.0, height - t))]
        for lx in (-1, 1):
            for ly in (-1, 1):
                parts.append(box(leg, leg, height - t, (lx * (sx / 2 - leg), ly * (sy / 2 - leg), 0.0)))
        return Mesh(*_merge(parts), tops=[SupportTop(height, (0.0, 0.0), (sx / 2, sy / 2))])
    if category == "desk":
        sx, sy, height, t = u(1.0, 1.4), u(0.55, 0.75), u(0.72, 0.76), 0.03
        panel = 0.03
        parts = [box(sx, sy, t, (0.0, 0.0, height - t))]
        for lx in (-1, 1):
            parts.append(box(panel, sy, height - t, (lx * (sx / 2 - panel / 2), 0.0, 0.0)))
        parts.append(box(sx - 2 * panel, 0.02, 0.4, (0.0, sy / 2 - 0.02, height - t - 0.4)))  # modesty panel
        return Mesh(*_merge(parts), tops=[SupportTop(height, (0.0, 0.0), (sx / 2, sy / 2))])
    if category == "shelf":
        sx, sy, t = u(0.7, 1.0), u(0.3, 0.4), 0.025
        levels = int(rng.integers(2, 4))
        spacing = u(0.32, 0.4)
        height = levels * spacing + t
        parts, tops = [], []
        for lx in (-1, 1):
            parts.append(box(t, sy, height, (lx * (sx / 2 - t / 2), 0.0, 0.0)))
        parts.append(box(sx, 0.015, height, (0.0, sy / 2 - 0.0075, 0.0)))  # back panel at +y; the open side is -y
        inner_x, inner_y = sx / 2 - t, sy / 2 - 0.015
        for k in range(levels + 1):
            z = k * spacing
            parts.append(box(2 * inner_x, 2 * inner_y, t, (0.0, -0.0075, z)))
            clearance = spacing - t if k < levels else 10.0
            tops.append(SupportTop(z + t, (0.0, -0.0075), (inner_x, inner_y), clearance))
        return Mesh(*_merge(parts), tops=tops)
    raise ValueError(f"unknown furniture category {category!r}")
