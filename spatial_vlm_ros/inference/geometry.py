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

from .types import CameraIntrinsics


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


def project(points: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """(N, 3) camera points -> (N, 2) pixel coordinates (u, v)."""
    z = np.clip(points[:, 2], 1e-6, None)
    return np.stack([points[:, 0] * intrinsics.fx / z + intrinsics.cx, points[:, 1] * intrinsics.fy / z + intrinsics.cy], 1)


def valid_points(points: np.ndarray) -> np.ndarray:
    """Flatten to (N, 3) and drop non-finite rows."""
    p = points.reshape(-1, 3)
    return p[np.isfinite(p).all(axis=1)]


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
    dist, _ = cKDTree(b).query(a, k=1)
    return float(dist.min())


def estimate_up(points: np.ndarray, default: Optional[np.ndarray] = None) -> np.ndarray:
    """Gravity-up in the camera frame. Without better information a level camera is assumed:
    up = -y of the optical frame."""
    if default is not None:
        v = np.asarray(default, dtype=np.float64)
        n = np.linalg.norm(v)
        if n > 0 and np.isfinite(n):
            return v / n
    return np.array([0.0, -1.0, 0.0])


def rests_on(points_subject: np.ndarray, points_object: np.ndarray, up: np.ndarray, tol_m: float = 0.03) -> bool:
    """True when the subject sits above the object: its lowest surface is at or above the object's
    highest surface (within `tol_m`) and its centre is higher along `up`."""
    a, b = valid_points(points_subject), valid_points(points_object)
    if len(a) == 0 or len(b) == 0:
        return False
    ha, hb = a @ up, b @ up
    bottom_a, top_b = np.percentile(ha, 2), np.percentile(hb, 98)
    return bool(bottom_a >= top_b - tol_m and np.median(ha) > np.median(hb))


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
