"""Camera intrinsics and look-at poses for rendering a layout."""
from __future__ import annotations

import numpy as np

from spatial_vlm_ros.inference.types import CameraIntrinsics

WORLD_UP = np.array([0.0, 0.0, 1.0])


def sample_intrinsics(rng: np.random.Generator, width: int, height: int) -> CameraIntrinsics:
    """Focal lengths for a 55-75 degree horizontal field of view, principal point near the centre."""
    hfov = np.deg2rad(rng.uniform(55, 75))
    fx = width / 2 / np.tan(hfov / 2)
    fy = fx * rng.uniform(0.99, 1.01)
    cx = width / 2 + rng.uniform(-0.02, 0.02) * width
    cy = height / 2 + rng.uniform(-0.02, 0.02) * height
    return CameraIntrinsics(float(fx), float(fy), float(cx), float(cy), int(width), int(height))


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """4x4 world-from-camera for an optical frame (x right, y down, z forward) looking at target."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, WORLD_UP)
    if np.linalg.norm(right) < 1e-6:  # looking straight down: any right vector will do
        right = np.array([1.0, 0.0, 0.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = np.cos(roll), np.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def orbit_pose(target: np.ndarray, distance: float, azimuth: float, elevation: float, roll: float = 0.0) -> np.ndarray:
    offset = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return look_at(target + distance * offset, target, roll)


def framing_distance(radius: float, intrinsics: CameraIntrinsics) -> float:
    """Distance at which a sphere of `radius` fills the narrower field of view."""
    half_fov = min(np.arctan(intrinsics.width / 2 / intrinsics.fx), np.arctan(intrinsics.height / 2 / intrinsics.fy))
    return float(radius / np.sin(half_fov))


def camera_up(pose: np.ndarray) -> np.ndarray:
    """Gravity-up expressed in the camera frame."""
    return pose[:3, :3].T @ WORLD_UP
