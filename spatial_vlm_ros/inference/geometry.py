"""Metric geometry of spatial relations: back-projection, surface gaps and the relation rules.

One definition of "near", "touching" and "on" for the whole project: the scene generator's ground
truth, the geometric oracle, the model's pairwise features and the node's cross-check all call the
functions here, so a threshold changes in one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.spatial import cKDTree

from .types import Box3D, CameraIntrinsics


@dataclass(frozen=True)
class RelationThresholds:
    contact_m: float = 0.01  # surface gap at or below which two objects touch
    no_contact_m: float = 0.03  # gap at or above which they clearly do not; (contact_m, no_contact_m) is ambiguous
    near_m: float = 0.25  # gap at or below which they are near
    far_m: float = 0.5  # gap at or above which they are far; (near_m, far_m) is ambiguous
    support_tolerance_m: float = 0.03  # how far the subject's bottom may sit below the object's top

    # Questions are only asked outside the ambiguous bands, so the decision boundary that
    # minimises errors on them is the band's midpoint.
    @property
    def near_decision_m(self) -> float:
        return (self.near_m + self.far_m) / 2

    @property
    def contact_decision_m(self) -> float:
        return (self.contact_m + self.no_contact_m) / 2


DEFAULT_THRESHOLDS = RelationThresholds()


def backproject(depth: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """(H, W) depth in metres -> (H, W, 3) points in the optical frame; invalid depth gives NaN."""
    h, w = depth.shape
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
    u = (np.arange(w, dtype=np.float32) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(h, dtype=np.float32) - intrinsics.cy) / intrinsics.fy
    return np.stack([z * u[None, :], z * v[:, None], z], axis=-1)


def depth_points(depth: np.ndarray, intrinsics: CameraIntrinsics) -> tuple[CameraIntrinsics, np.ndarray]:
    """Check a (H, W) depth image, rescale `intrinsics` to its size when they differ, and back-project.
    Returns the intrinsics that match the depth and the (H, W, 3) points."""
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    h, w = depth.shape
    if (intrinsics.width, intrinsics.height) != (w, h):
        intrinsics = intrinsics.scaled(w, h)
    return intrinsics, backproject(depth, intrinsics)


def project(points: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """(N, 3) camera points -> (N, 2) pixel coordinates (u, v)."""
    z = np.clip(points[:, 2], 1e-6, None)
    return np.stack([points[:, 0] * intrinsics.fx / z + intrinsics.cx, points[:, 1] * intrinsics.fy / z + intrinsics.cy], 1)


def valid_points(points: np.ndarray) -> np.ndarray:
    """Flatten to (N, 3) and drop non-finite rows."""
    p = points.reshape(-1, 3)
    return p[finite_rows(p)]


def finite_rows(p: np.ndarray) -> np.ndarray:
    """(N,) rows of p (N, 3) with all three coordinates finite (= np.isfinite(p).all(1), whose strided
    3-element reduction cost more than the tests)."""
    return np.isfinite(p[:, 0]) & np.isfinite(p[:, 1]) & np.isfinite(p[:, 2])


def subsample(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    if len(points) <= max_points:
        return points
    idx = np.random.default_rng(seed).choice(len(points), max_points, replace=False)
    return points[idx]


def surface_gap(points_a: np.ndarray, points_b: np.ndarray, max_points: int = 4000) -> float:
    """Closest distance between two surfaces sampled as point sets (metres); NaN if either is empty."""
    a = subsample(valid_points(points_a), max_points)
    b = subsample(valid_points(points_b), max_points, seed=1)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    return float(nearest_distances(a, b, 1).min())


def point_tree(points: np.ndarray) -> cKDTree:
    """A KD-tree of (N, 3) points for nearest-neighbour distances (sliding-midpoint splits: quicker to build
    than balanced ones, and the distances found are the same)."""
    return cKDTree(points, balanced_tree=False, compact_nodes=False)


def nearest_distances(a: np.ndarray, b: np.ndarray, smallest: int, tree: Optional[cKDTree] = None) -> np.ndarray:
    """(len(a),) distance from each point of a to its nearest point of b, exact for (at least) the
    `smallest` smallest; larger ones may come back as inf, which sorts after all of them.

    Callers read only the smallest distances (a gap, a low percentile), so the tree is searched within a
    radius known to hold them: the exact distances of the `smallest` points of a nearest b's bounding
    box bound them from above. The floats are those of a search without a radius; pair gaps took half
    the time (bench/README.md). `tree`: b's, when the caller keeps one."""
    if tree is None:
        tree = point_tree(b)
    if smallest >= len(a):
        return tree.query(a, k=1)[0]
    lo, hi = b.min(0), b.max(0)
    to_box = np.linalg.norm(np.maximum(np.maximum(lo - a, a - hi), 0.0), axis=1)
    radius = tree.query(a[np.argpartition(to_box, smallest - 1)[:smallest]], k=1)[0].max()
    # the nanometre keeps the bound's square above zero when the sets share points (radius 0)
    return tree.query(a, k=1, distance_upper_bound=float(radius) * (1 + 1e-6) + 1e-9)[0]


def estimate_up(points: np.ndarray, default: Optional[np.ndarray] = None) -> np.ndarray:
    """Gravity-up in the camera frame. Without better information a level camera is assumed:
    up = -y of the optical frame."""
    if default is not None:
        v = np.asarray(default, dtype=np.float64)
        n = np.linalg.norm(v)
        if n > 0 and np.isfinite(n):
            return v / n
    return np.array([0.0, -1.0, 0.0])


def height_profile(points: np.ndarray, up: np.ndarray) -> Optional[tuple[float, float, float]]:
    """(bottom, top, middle) of an object along `up`: the 2nd and 98th percentiles and the median of
    its points' heights (robust to stray pixels); None without points. What `rests_on` compares."""
    h = valid_points(points) @ up
    if len(h) == 0:
        return None
    bottom, top = np.percentile(h, [2, 98])
    return float(bottom), float(top), float(np.median(h))


def profile_rests_on(subject: Optional[tuple[float, float, float]], obj: Optional[tuple[float, float, float]],
                     tol_m: float = 0.03) -> bool:
    """`rests_on` from two `height_profile`s (computed once per object when many pairs share it)."""
    if subject is None or obj is None:
        return False
    return bool(subject[0] >= obj[1] - tol_m and subject[2] > obj[2])


def rests_on(points_subject: np.ndarray, points_object: np.ndarray, up: np.ndarray, tol_m: float = 0.03) -> bool:
    """True when the subject sits above the object: its lowest surface is at or above the object's
    highest surface (within `tol_m`) and its centre is higher along `up`."""
    return profile_rests_on(height_profile(points_subject, up), height_profile(points_object, up), tol_m)


def gap_probability(gap_m: float, threshold_m: float, sigma_m: float) -> float:
    """P(true gap <= threshold) under Gaussian measurement noise of `sigma_m` on the gap."""
    if not math.isfinite(gap_m):
        return 0.5
    sigma = max(sigma_m, 1e-4)
    return 0.5 * (1.0 + math.erf((threshold_m - gap_m) / (sigma * math.sqrt(2.0))))


def depth_noise_sigma(distance_m: float, base_m: float = 0.002, per_m2: float = 0.0025) -> float:
    """Structured-light / ToF style depth noise that grows with range squared."""
    return base_m + per_m2 * distance_m**2


@dataclass
class PairGeometry:
    """Metric facts about one ordered pair of objects."""

    gap_m: float
    subject_above: bool
    sigma_m: float

    def near_prob(self, t: RelationThresholds = DEFAULT_THRESHOLDS) -> float:
        return gap_probability(self.gap_m, t.near_decision_m, self.sigma_m)

    def contact_prob(self, t: RelationThresholds = DEFAULT_THRESHOLDS) -> float:
        return gap_probability(self.gap_m, t.contact_decision_m, self.sigma_m)

    def support_prob(self, t: RelationThresholds = DEFAULT_THRESHOLDS) -> float:
        return self.contact_prob(t) if self.subject_above else 0.0


def pair_geometry(points_subject: np.ndarray, points_object: np.ndarray, up: np.ndarray,
                  t: RelationThresholds = DEFAULT_THRESHOLDS) -> PairGeometry:
    gap = surface_gap(points_subject, points_object)
    a = valid_points(points_subject)
    rng = float(np.median(np.linalg.norm(a, axis=1))) if len(a) else 2.0
    return PairGeometry(gap, rests_on(points_subject, points_object, up, t.support_tolerance_m), depth_noise_sigma(rng))


def label_gap(gap_m: float, t: RelationThresholds = DEFAULT_THRESHOLDS) -> dict[str, Optional[bool]]:
    """Ground-truth style labels from an exact gap: None inside the ambiguous bands."""
    near: Optional[bool] = True if gap_m <= t.near_m else (False if gap_m >= t.far_m else None)
    contact: Optional[bool] = True if gap_m <= t.contact_m else (False if gap_m >= t.no_contact_m else None)
    return {"near": near, "touching": contact}


# --- oriented boxes and the dominant plane (real frames) ------------------------------------------
def box_heights(box: Box3D, up: np.ndarray) -> tuple[float, float]:
    """(bottom, top) of a box along `up`."""
    h = box.corners() @ np.asarray(up, dtype=np.float64)
    return float(h.min()), float(h.max())


def horizontal_basis(up: np.ndarray) -> np.ndarray:
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = np.cross(up, helper)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(up, e1)], axis=1)  # (3, 2)


def footprint_overlap(box_a: Box3D, box_b: Box3D, up: np.ndarray, samples: int = 7) -> float:
    """Fraction of A's ground-plane footprint that lies inside B's footprint (both projected along up)."""
    from scipy.spatial import Delaunay

    basis = horizontal_basis(up)
    fa, fb = box_a.corners() @ basis, box_b.corners() @ basis
    hull_b = Delaunay(fb)
    lo, hi = fa.min(axis=0), fa.max(axis=0)
    # Sample A's footprint on a grid restricted to A's own convex hull.
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], samples), np.linspace(lo[1], hi[1], samples))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    inside_a = Delaunay(fa).find_simplex(grid) >= 0
    if not inside_a.any():
        return 0.0
    return float((hull_b.find_simplex(grid[inside_a]) >= 0).mean())


def support_gap(box_subject: Box3D, box_object: Box3D, up: np.ndarray, min_overlap: float = 0.3) -> Optional[float]:
    """Subject bottom minus object top along `up` (negative = interpenetrating), or None when the subject's
    footprint does not sit over the object's or the subject is not the higher box."""
    bottom_s, top_s = box_heights(box_subject, up)
    bottom_o, top_o = box_heights(box_object, up)
    if (bottom_s + top_s) <= (bottom_o + top_o) or footprint_overlap(box_subject, box_object, up) < min_overlap:
        return None
    return bottom_s - top_o


def box_surface_points(box: Box3D, spacing_m: float = 0.02) -> np.ndarray:
    """Points on the six faces of a box, about `spacing_m` apart."""
    size = np.asarray(box.size, dtype=np.float64)
    pts = []
    for axis in range(3):
        others = [i for i in range(3) if i != axis]
        n0 = max(2, int(math.ceil(size[others[0]] / spacing_m)) + 1)
        n1 = max(2, int(math.ceil(size[others[1]] / spacing_m)) + 1)
        g0, g1 = np.meshgrid(np.linspace(-0.5, 0.5, n0), np.linspace(-0.5, 0.5, n1))
        for sign in (-0.5, 0.5):
            local = np.zeros((g0.size, 3))
            local[:, axis] = sign
            local[:, others[0]] = g0.ravel()
            local[:, others[1]] = g1.ravel()
            pts.append(local * size)
    local_all = np.concatenate(pts)
    return local_all @ np.asarray(box.rotation).T + np.asarray(box.center)


def points_in_box(points: np.ndarray, box: Box3D, margin_m: float = 0.0) -> np.ndarray:
    """Boolean mask of the (N, 3) points inside the (optionally grown) box."""
    local = (np.asarray(points) - np.asarray(box.center)) @ np.asarray(box.rotation)
    return np.all(np.abs(local) <= np.asarray(box.size) / 2 + margin_m, axis=1)


def oriented_box_gap(box_a: Box3D, box_b: Box3D, spacing_m: float = 0.02) -> float:
    """Closest distance between two oriented boxes (0 when they intersect), to about `spacing_m`."""
    pa, pb = box_surface_points(box_a, spacing_m), box_surface_points(box_b, spacing_m)
    if points_in_box(pa, box_b).any() or points_in_box(pb, box_a).any():
        return 0.0
    return surface_gap(pa, pb, max_points=20000)


@dataclass
class PlaneFit:
    normal: np.ndarray  # unit normal, oriented towards the camera side of the plane
    offset: float  # plane: normal . p + offset = 0
    inlier_fraction: float


def fit_dominant_planes(points: np.ndarray, max_planes: int = 6, distance_m: float = 0.02, min_fraction: float = 0.02,
                        voxel_m: float = 0.04, seed: int = 0, iterations: int = 150) -> list[PlaneFit]:
    """Large planes (floor, walls, table tops) by sequential RANSAC on a voxel-downsampled cloud (Open3D),
    each refit by least squares to its inliers. The same points and seed always give the same planes."""
    import open3d as o3d

    pts = valid_points(points)
    if len(pts) < 100:
        return []
    cloud = np.array(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
                     .voxel_down_sample(voxel_m).points)
    total = len(cloud)
    rng = np.random.default_rng(seed)
    planes: list[PlaneFit] = []
    for _ in range(max_planes):
        if len(cloud) < 50:
            break
        n, d, inliers = ransac_plane(cloud, distance_m, iterations, rng)
        frac = int(inliers.sum()) / total
        if frac < min_fraction:
            break
        if d < 0:  # the camera (origin) is on the positive side: n . 0 + d > 0
            n, d = -n, -d
        planes.append(PlaneFit(n, d, frac))
        cloud = cloud[~inliers]
    return planes


def ransac_plane(cloud: np.ndarray, distance_m: float, iterations: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, float, np.ndarray]:
    """(unit normal, offset, inlier mask) of the plane with most points within `distance_m` among
    `iterations` planes through 3 random points, refit by least squares to those inliers (as Open3D's
    segment_plane does). Written out because Open3D's segment_plane is not repeatable: two calls on the
    same points with the same seed gave different planes in 4 of 25 val frames, with OMP_NUM_THREADS=1
    too, and so the same frame gave different answers."""
    pick = rng.integers(0, len(cloud), size=(iterations, 3))
    a, b, c = cloud[pick[:, 0]], cloud[pick[:, 1]], cloud[pick[:, 2]]
    normals = np.cross(b - a, c - a)
    length = np.linalg.norm(normals, axis=1)
    ok = length > 1e-12
    if not ok.any():
        return np.array([0.0, 0.0, 1.0]), 0.0, np.zeros(len(cloud), bool)
    normals, a = normals[ok] / length[ok, None], a[ok]
    offsets = -(normals * a).sum(1)
    # Scored in float32 (the 2 cm band is far above its rounding), in chunks to bound memory.
    cloud32, normals32, offsets32 = cloud.astype(np.float32), normals.T.astype(np.float32), offsets.astype(np.float32)
    counts = np.zeros(len(normals), np.int64)
    for start in range(0, len(cloud), 16384):
        counts += (np.abs(cloud32[start:start + 16384] @ normals32 + offsets32) <= distance_m).sum(0)
    best = int(np.argmax(counts))
    inliers = np.abs(cloud @ normals[best] + offsets[best]) <= distance_m
    centre = cloud[inliers].mean(0)
    normal = np.linalg.svd(cloud[inliers] - centre, full_matrices=False)[2][-1]
    offset = -float(normal @ centre)
    return normal, offset, np.abs(cloud @ normal + offset) <= distance_m


def estimate_up_from_planes(points: np.ndarray, prior: Optional[np.ndarray] = None, max_tilt_deg: float = 40.0,
                            planes: Optional[list[PlaneFit]] = None, min_fraction: float = 0.05) -> Optional[np.ndarray]:
    """Gravity up from the floor (or another large horizontal plane): the dominant plane whose normal is
    within `max_tilt_deg` of the prior up (a level camera: -y). None when no such plane is visible."""
    prior_up = estimate_up(points, prior)
    best: Optional[PlaneFit] = None
    candidates = fit_dominant_planes(points) if planes is None else planes
    for plane in (p for p in candidates if p.inlier_fraction >= min_fraction):
        n = plane.normal if plane.normal @ prior_up >= 0 else -plane.normal
        tilt = math.degrees(math.acos(float(np.clip(n @ prior_up, -1.0, 1.0))))
        # The floor is the lowest horizontal plane: the camera looks down on it (camera on its +normal side).
        if tilt <= max_tilt_deg and plane.normal @ n > 0 and (best is None or plane.inlier_fraction > best.inlier_fraction):
            best = PlaneFit(n, plane.offset, plane.inlier_fraction)
    return None if best is None else best.normal


@dataclass
class ScenePlanes:
    """The room's structure: the floor (lowest large horizontal plane) and large vertical planes (walls)."""

    floor: Optional[PlaneFit]
    walls: list[PlaneFit]

    def structure_mask(self, points: np.ndarray, distance_m: float = 0.025, noise_sigmas: float = 2.0) -> np.ndarray:
        """Bool mask over `points` (any leading shape, last dim 3): on the floor or a wall, within
        `distance_m` or `noise_sigmas` depth-noise sigmas at the point's range (far floor is noisier). NaN -> False."""
        mask = np.zeros(points.shape[:-1], dtype=bool)
        with np.errstate(invalid="ignore"):
            x, y, z = points[..., 0], points[..., 1], points[..., 2]
            rng = np.sqrt(x * x + y * y + z * z)  # = np.linalg.norm(points, axis=-1), adding in its order
            tol = np.maximum(distance_m, noise_sigmas * depth_noise_sigma(rng))
            for plane in ([self.floor] if self.floor is not None else []) + self.walls:
                mask |= np.abs(points @ plane.normal + plane.offset) <= tol
        return mask


def find_scene_planes(points: np.ndarray, up: np.ndarray, max_tilt_deg: float = 15.0, min_fraction: float = 0.02,
                      max_behind_fraction: float = 0.03, planes: Optional[list[PlaneFit]] = None,
                      slab_m: float = 0.06) -> ScenePlanes:
    """Floor and walls among the dominant planes. Horizontal planes within `slab_m` of a better-supported
    one are slabs of that surface, not surfaces of their own.

    Structure is what nothing stands behind: a horizontal plane is the floor, and a vertical plane a
    wall, only when (almost) no measured point lies more than 5 cm (or 3 depth-noise sigmas) beyond it.
    A bed top, table top or dresser front always has its own body and the room behind it, so it is never
    cut out."""
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    cos_tol = math.cos(math.radians(max_tilt_deg))
    sin_tol = math.sin(math.radians(max_tilt_deg))
    pts = subsample(valid_points(points), 20000, seed=2)
    # "Behind" means beyond the depth noise too: a far floor's own points scatter 3 sigma ~ 12 cm at 4 m.
    beyond = -np.maximum(0.05, 3.0 * depth_noise_sigma(np.linalg.norm(pts, axis=1)))
    floors: list[PlaneFit] = []
    walls: list[PlaneFit] = []
    candidates = fit_dominant_planes(points, min_fraction=min_fraction) if planes is None else planes
    for plane in (p for p in candidates if p.inlier_fraction >= min_fraction):
        behind = float(np.mean(pts @ plane.normal + plane.offset < beyond)) if len(pts) else 1.0
        if behind > max_behind_fraction:
            continue
        facing_up = float(plane.normal @ up)
        if facing_up >= cos_tol:  # offset = camera height above this plane
            floors.append(plane)
        elif abs(facing_up) <= sin_tol:
            walls.append(plane)
    return ScenePlanes(_lowest_surface(floors, slab_m), walls)


def _lowest_surface(horizontal: list[PlaneFit], slab_m: float) -> Optional[PlaneFit]:
    """The lowest horizontal surface, as the best-supported of the parallel RANSAC slabs cut from it.

    Why: a 2 cm RANSAC slab is thinner than a far floor's depth noise, so sequential RANSAC cuts one floor
    into several parallel planes a few cm apart. Taking the lowest of them put the floor up to 4 cm
    too low and moved it from one RANSAC seed to the next (results/seed_spread_val_e41cc2b.json; the A/B
    is in results/val_trials.json, fifth_session)."""
    groups: list[list[PlaneFit]] = []
    for plane in sorted(horizontal, key=lambda p: -p.inlier_fraction):
        for g in groups:
            if abs(plane.offset - g[0].offset) <= slab_m:
                g.append(plane)
                break
        else:
            groups.append([plane])
    if not groups:
        return None
    return max(groups, key=lambda g: max(p.offset for p in g))[0]


@dataclass
class SupportGeometry:
    """Is the subject standing on the object? Measured on visible surfaces only."""

    vertical_gap_m: float  # subject bottom minus object top along up (negative: the clouds overlap in height)
    lateral_overlap: float  # share of the subject's side-to-side extent above the object's
    depth_ok: bool  # subject not in front of the object nor far behind its visible front
    subject_higher: bool
    sigma_m: float

    def probability(self, t: RelationThresholds = DEFAULT_THRESHOLDS, max_penetration_m: float = 0.06) -> float:
        """P(the bottom rests on the top): the gap lies in [-penetration, contact decision] under noise.
        Penetration is allowed because a support's visible cloud often includes the base of what stands
        on it (the pixels where they meet) and annotated boxes interpenetrate by a few cm."""
        if not (self.subject_higher and self.depth_ok and self.lateral_overlap >= 0.3) or not math.isfinite(self.vertical_gap_m):
            return 0.0
        s = max(self.sigma_m, 1e-4) * math.sqrt(2.0)
        hi = 0.5 * (1.0 + math.erf((t.contact_decision_m - self.vertical_gap_m) / s))
        lo = 0.5 * (1.0 + math.erf((-max_penetration_m - self.vertical_gap_m) / s))
        return max(0.0, hi - lo)


def robust_extreme(values: np.ndarray, lowest: bool, k: int = 5) -> float:
    """The k-th lowest (or highest) value: the true extreme of a cleaned cloud, minus a few stray points.
    A percentile would skip a lamp's small base, the very part that touches the support."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    k = min(k, len(v)) - 1
    return float(v[k] if lowest else v[-1 - k])


def support_geometry(points_subject: np.ndarray, points_object: np.ndarray, up: np.ndarray,
                     max_hidden_depth_m: float = 0.6, subject_bottom_m: Optional[float] = None) -> SupportGeometry:
    """Vertical gap and horizontal overlap of two visible point clouds.

    The camera sees a support's front and top, so its depth extent is unreliable: overlap is measured
    side to side (across the view), and along the view the subject may sit up to `max_hidden_depth_m`
    behind the object's visible front. `subject_bottom_m` overrides the subject's measured bottom height
    (e.g. from its 2D box when its lowest part has no depth)."""
    a, b = valid_points(points_subject), valid_points(points_object)
    if len(a) == 0 or len(b) == 0:
        return SupportGeometry(math.nan, 0.0, False, False, 0.05)
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    lateral = np.array([1.0, 0.0, 0.0]) - up[0] * up  # the camera's x axis, levelled
    lateral /= max(np.linalg.norm(lateral), 1e-9)
    forward = np.cross(lateral, up)
    if forward[2] < 0:
        forward = -forward
    ha, hb = a @ up, b @ up
    la, lb = np.percentile(a @ lateral, [5, 95]), np.percentile(b @ lateral, [5, 95])
    overlap = max(0.0, min(la[1], lb[1]) - max(la[0], lb[0])) / max(la[1] - la[0], 0.02)
    fa, fb = np.median(a @ forward), np.percentile(b @ forward, [5, 95])
    depth_ok = bool(fb[0] - 0.1 <= fa <= fb[1] + max_hidden_depth_m)
    rng = float(np.median(np.linalg.norm(a, axis=1)))
    bottom = robust_extreme(ha, True) if subject_bottom_m is None else subject_bottom_m
    top = local_top(b, hb, (a @ lateral, a @ forward), (lateral, forward), bottom, max_hidden_depth_m)
    if top is None:  # nothing of the object under the subject: compare with its overall top
        top, higher = robust_extreme(hb, False), bool(np.median(ha) > np.median(hb))
    else:
        higher = bool(np.median(ha) > top)
    return SupportGeometry(vertical_gap_m=bottom - top, lateral_overlap=float(min(1.0, overlap)), depth_ok=depth_ok,
                           subject_higher=higher, sigma_m=0.5 * depth_noise_sigma(rng) + 0.005)


def local_top(points_object: np.ndarray, heights_object: np.ndarray, subject_coords: tuple[np.ndarray, np.ndarray],
              axes: tuple[np.ndarray, np.ndarray], subject_bottom: float, max_hidden_depth_m: float,
              reach_m: float = 0.06, min_points: int = 10, min_clearance_m: float = 0.05) -> Optional[float]:
    """Height of the object's surface under the subject: the highest object points within the subject's
    side-to-side extent (and near it along the view) that are not above the subject's bottom + `reach_m`.
    A shelf's lower board, not its top, is what a mug on that board stands on. None when the object has
    no such surface (or only its lowest edge, `min_clearance_m` above its bottom: that is the floor's job)."""
    lat_s, fwd_s = subject_coords
    lat_o, fwd_o = points_object @ axes[0], points_object @ axes[1]
    lo, hi = np.percentile(lat_s, [5, 95])
    f_lo, f_hi = np.percentile(fwd_s, [5, 95])
    under = ((lat_o >= lo - 0.02) & (lat_o <= hi + 0.02) & (fwd_o >= f_lo - 0.1) & (fwd_o <= f_hi + max_hidden_depth_m)
             & (heights_object <= subject_bottom + reach_m))
    if under.sum() < min_points:
        return None
    top = robust_extreme(heights_object[under], False)
    if top < robust_extreme(heights_object, True) + min_clearance_m:
        return None
    return top


def robust_surface_gap(points_a: np.ndarray, points_b: np.ndarray, min_support: int = 10,
                       support_fraction: float = 0.005, max_points: int = 4000) -> float:
    """Surface gap that a few stray points cannot close: the distance at which at least `min_support`
    points (or `support_fraction` of the smaller cloud) of each cloud have a partner. Two touching
    objects meet along a line of many points; a mask that bled by a few pixels does not."""
    a = subsample(valid_points(points_a), max_points)
    b = subsample(valid_points(points_b), max_points, seed=1)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    k = max(min_support, int(support_fraction * min(len(a), len(b))))
    d_ab = np.sort(cKDTree(b).query(a, k=1)[0])
    d_ba = np.sort(cKDTree(a).query(b, k=1)[0])
    return float(max(d_ab[min(k, len(d_ab)) - 1], d_ba[min(k, len(d_ba)) - 1]))
