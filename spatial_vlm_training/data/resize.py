"""Resizing frames with consistent intrinsics, and a sample as the RGBDFrame a sensor would give (no torch)."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from spatial_vlm_ros.inference.types import CameraIntrinsics, RGBDFrame

from .sample import SceneSample


def resized_intrinsics(k: CameraIntrinsics, width: int, height: int) -> CameraIntrinsics:
    """Intrinsics after cv2.resize to (width, height). Pixel centres sit at integer coordinates, so
    the principal point maps as (c + 0.5) * s - 0.5."""
    sx, sy = width / k.width, height / k.height
    return CameraIntrinsics(k.fx * sx, k.fy * sy, (k.cx + 0.5) * sx - 0.5, (k.cy + 0.5) * sy - 0.5, width, height)


def resize_frame_arrays(rgb: np.ndarray, depth: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB with area/linear filtering; depth with nearest neighbour so holes and edges never blend."""
    interp = cv2.INTER_AREA if width < rgb.shape[1] else cv2.INTER_LINEAR
    return (cv2.resize(rgb, (width, height), interpolation=interp),
            cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST))


def frame_from_sample(sample: SceneSample, size: Optional[tuple[int, int]] = None) -> RGBDFrame:
    """What a sensor would deliver for this sample: RGB, sensor depth (NaN holes), intrinsics, up."""
    rgb, depth, k = sample.load_rgb(), sample.load_depth(), sample.intrinsics
    if size is not None and tuple(size) != (k.width, k.height):
        rgb, depth = resize_frame_arrays(rgb, depth, *size)
        k = resized_intrinsics(k, *size)
    return RGBDFrame(rgb=rgb, intrinsics=k, depth=depth, up=np.asarray(sample.up, dtype=np.float64),
                     frame_id=sample.id)
