"""Synchronised messages -> one validated RGBDFrame, and the engine's input-size round trip.

Bad input raises InputError with a `kind` (the diagnostics counter) and a one-line reason. Depth
that is not aligned to the colour image (other size or other frame_id) is rejected, never resampled
silently: a depth image from another optical centre would put every object in the wrong place.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from ..inference.region_proposals import mask_at_size
from ..inference.types import CameraIntrinsics, RGBDFrame, SceneResult
from .conversions import ConversionError, camera_info_to_intrinsics, image_to_depth_m, image_to_rgb, pointcloud2_to_xyz
from .fusion import cloud_to_depth

MAX_CLOUD_POINTS = 2_000_000  # a larger cloud is strided down: the cross-check needs ~1 point per pixel


class InputError(ValueError):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def assemble_frame(color_msg, info_msg, depth_msg=None, cloud_msg=None, default_frame_id: str = "") -> RGBDFrame:
    try:
        rgb = image_to_rgb(color_msg)
    except ConversionError as exc:
        raise InputError("bad_color", str(exc)) from exc
    h, w = rgb.shape[:2]
    try:
        intr = camera_info_to_intrinsics(info_msg)
    except ConversionError as exc:
        raise InputError("bad_camera_info", str(exc)) from exc
    if (intr.width, intr.height) != (w, h):
        raise InputError("bad_camera_info", f"camera_info is for {intr.width}x{intr.height} but the colour image is {w}x{h}")
    frame_id = color_msg.header.frame_id or default_frame_id
    depth = points = None
    if depth_msg is not None:
        try:
            depth = image_to_depth_m(depth_msg)
        except ConversionError as exc:
            raise InputError("bad_depth", str(exc)) from exc
        if depth.shape != (h, w):
            raise InputError("misaligned_depth", f"depth is {depth.shape[1]}x{depth.shape[0]} but colour is {w}x{h}; "
                             "publish depth aligned to colour (e.g. aligned_depth_to_color)")
        if depth_msg.header.frame_id and color_msg.header.frame_id and depth_msg.header.frame_id != color_msg.header.frame_id:
            raise InputError("misaligned_depth", f"depth frame '{depth_msg.header.frame_id}' is not the colour frame "
                             f"'{color_msg.header.frame_id}'; publish depth aligned to colour")
        if not np.isfinite(depth).any():
            depth = None  # all NaN/zero/inf: no measurement; the model predicts depth instead
    if cloud_msg is not None:
        try:
            points = pointcloud2_to_xyz(cloud_msg)
        except ConversionError as exc:
            raise InputError("bad_cloud", str(exc)) from exc
        if cloud_msg.header.frame_id and color_msg.header.frame_id and cloud_msg.header.frame_id != color_msg.header.frame_id:
            raise InputError("misaligned_cloud", f"cloud frame '{cloud_msg.header.frame_id}' is not the colour frame "
                             f"'{color_msg.header.frame_id}' (no TF here: publish the cloud in the colour optical frame)")
        if len(points) > MAX_CLOUD_POINTS:
            points = points[:: int(np.ceil(len(points) / MAX_CLOUD_POINTS))]
        if len(points) == 0:
            points = None
    if depth is None and points is not None:
        # The engine measures its geometry (proposals, gaps) on depth where it was measured; a cloud in the
        # colour optical frame is such a measurement, seen as an image. Without it the student saw only
        # its own predicted depth in input.mode=points.
        projected = cloud_to_depth(points, intr)
        if np.isfinite(projected).any():
            depth = projected
    return RGBDFrame(rgb=rgb, intrinsics=intr, depth=depth, points=points,
                     stamp_ns=stamp_to_ns(color_msg.header.stamp), frame_id=frame_id)


def resize_frame(frame: RGBDFrame, width: int, height: int) -> RGBDFrame:
    """The frame at the engine's input size (intrinsics scaled; depth resized with nearest, no mixing)."""
    if width <= 0 or (width, height) == frame.size:
        return frame
    rgb = cv2.resize(frame.rgb, (width, height), interpolation=cv2.INTER_AREA)
    depth = None if frame.depth is None else cv2.resize(frame.depth, (width, height), interpolation=cv2.INTER_NEAREST)
    return replace(frame, rgb=rgb, depth=depth, intrinsics=frame.intrinsics.scaled(width, height))


def restore_scene(scene: SceneResult, source: CameraIntrinsics, used: CameraIntrinsics) -> SceneResult:
    """Map a scene computed at the engine's input size back to source pixels (3D boxes are metric: unchanged)."""
    if (source.width, source.height) == (used.width, used.height):
        return scene
    sx, sy = source.width / used.width, source.height / used.height
    for d in scene.detections:
        x0, y0, x1, y1 = d.box2d
        d.box2d = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
        if d.mask is not None:
            d.mask = mask_at_size(d.mask, source.width, source.height, d.box2d)
    size = (source.width, source.height)
    if scene.depth is not None:
        scene.depth = cv2.resize(scene.depth.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)
    if scene.depth_confidence is not None:
        scene.depth_confidence = cv2.resize(scene.depth_confidence.astype(np.float32), size,
                                            interpolation=cv2.INTER_NEAREST)
    return scene
