"""Source frame -> model input tensors (resized, normalised RGB and metric depth with 0 = hole)."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from spatial_vlm_ros.model import IMAGE_MEAN, IMAGE_STD

from .types import RGBDFrame


def check_frame(frame: RGBDFrame) -> None:
    """One clear line for inputs the model cannot read."""
    rgb = frame.rgb
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 array, got {getattr(rgb, 'shape', type(rgb))}")
    if frame.depth is not None and (not isinstance(frame.depth, np.ndarray) or frame.depth.shape != rgb.shape[:2]):
        raise ValueError(f"depth must be (H, W) = {rgb.shape[:2]} metres, got {getattr(frame.depth, 'shape', None)}")
    if not frame.intrinsics.is_valid():
        raise ValueError(f"invalid camera intrinsics {frame.intrinsics}")


def rgb_tensor(rgb: np.ndarray, width: int, height: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, height, width) float normalised."""
    small = cv2.resize(np.ascontiguousarray(rgb[..., :3]), (width, height), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(small.astype(np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(3, 1, 1)
    return (x - mean) / std


def depth_tensor(depth: np.ndarray, width: int, height: int) -> torch.Tensor:
    """(H, W) metres with NaN/0 holes -> (1, height, width), nearest-neighbour so holes stay holes."""
    d = np.nan_to_num(np.asarray(depth, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    d[d < 0] = 0
    small = cv2.resize(d, (width, height), interpolation=cv2.INTER_NEAREST)
    return torch.from_numpy(small)[None]
