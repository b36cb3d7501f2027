"""sensor_msgs <-> numpy without cv_bridge or sensor_msgs_py (neither is installable from PyPI).

Every decoder validates the message first and raises ConversionError with a one-line reason, so the
node can count and report bad input instead of crashing. Encoders fill `data` from `tobytes()`:
assigning an ndarray to a message field costs ~50 ms per image, bytes cost ~0.05 ms.
"""
from __future__ import annotations

import math

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from ..inference.types import CameraIntrinsics


class ConversionError(ValueError):
    """A message that cannot be turned into an array; the message says why in one line."""


# encoding -> (channels, numpy dtype)
COLOR_ENCODINGS = {"rgb8": (3, np.uint8), "bgr8": (3, np.uint8), "rgba8": (4, np.uint8), "bgra8": (4, np.uint8),
                   "mono8": (1, np.uint8)}
DEPTH_ENCODINGS = {"16UC1": (1, np.uint16), "mono16": (1, np.uint16), "32FC1": (1, np.float32)}

_POINTFIELD_DTYPES = {PointField.INT8: np.int8, PointField.UINT8: np.uint8, PointField.INT16: np.int16,
                      PointField.UINT16: np.uint16, PointField.INT32: np.int32, PointField.UINT32: np.uint32,
                      PointField.FLOAT32: np.float32, PointField.FLOAT64: np.float64}


def _image_array(msg: Image, table: dict[str, tuple[int, type]], kind: str) -> tuple[np.ndarray, str]:
    enc = msg.encoding
    if enc not in table:
        raise ConversionError(f"unsupported {kind} encoding '{enc}' (expected one of {', '.join(table)})")
    channels, dtype = table[enc]
    h, w = int(msg.height), int(msg.width)
    if h <= 0 or w <= 0:
        raise ConversionError(f"{kind} image has size {w}x{h}")
    item = np.dtype(dtype).itemsize
    row_bytes = w * channels * item
    step = int(msg.step)
    if step < row_bytes:
        raise ConversionError(f"{kind} image step {step} < width*channels*bytes {row_bytes}")
    data = msg.data
    if len(data) < step * (h - 1) + row_bytes:
        raise ConversionError(f"{kind} image data has {len(data)} bytes, expected {step * h} for {w}x{h} {enc}")
    buf = np.frombuffer(data, dtype=np.uint8)
    rows = np.lib.stride_tricks.as_strided(buf, shape=(h, row_bytes), strides=(step, 1))
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    arr = rows.copy().view(dt).reshape(h, w, channels)
    return arr.astype(dtype, copy=False), enc


def image_to_rgb(msg: Image) -> np.ndarray:
    """Colour Image -> (H, W, 3) uint8 RGB."""
    arr, enc = _image_array(msg, COLOR_ENCODINGS, "color")
    if enc == "mono8":
        return np.repeat(arr, 3, axis=2)
    if enc in ("bgr8", "bgra8"):
        arr = arr[..., 2::-1]
    return np.ascontiguousarray(arr[..., :3])


def image_to_depth_m(msg: Image) -> np.ndarray:
    """Depth Image (16UC1 mm or 32FC1 m) -> (H, W) float32 metres; 0, NaN, inf and negatives become NaN."""
    arr, enc = _image_array(msg, DEPTH_ENCODINGS, "depth")
    depth = arr[..., 0].astype(np.float32)
    if enc in ("16UC1", "mono16"):
        depth *= 0.001
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def rgb_to_image(rgb: np.ndarray, header=None, encoding: str = "rgb8") -> Image:
    """(H, W, 3) uint8 RGB -> Image in `encoding` (rgb8, bgr8, rgba8, bgra8 or mono8)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ConversionError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    if encoding in ("bgr8", "bgra8"):
        rgb = rgb[..., ::-1]
    if encoding in ("rgba8", "bgra8"):
        rgb = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    elif encoding == "mono8":
        rgb = rgb.mean(axis=2, keepdims=True).astype(np.uint8)
    elif encoding not in ("rgb8", "bgr8"):
        raise ConversionError(f"cannot encode colour as '{encoding}'")
    return _make_image(np.ascontiguousarray(rgb), encoding, header)


def depth_to_image(depth_m: np.ndarray, header=None, encoding: str = "32FC1") -> Image:
    """(H, W) metres -> 32FC1 (metres, NaN kept) or 16UC1 (millimetres, invalid = 0)."""
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ConversionError(f"expected an (H, W) depth array, got shape {depth.shape}")
    if encoding == "32FC1":
        arr = depth
    elif encoding == "16UC1":
        mm = np.where(np.isfinite(depth) & (depth > 0), np.round(depth * 1000.0), 0)
        arr = np.clip(mm, 0, 65535).astype(np.uint16)
    else:
        raise ConversionError(f"cannot encode depth as '{encoding}'")
    return _make_image(np.ascontiguousarray(arr)[..., None], encoding, header)


def _make_image(arr: np.ndarray, encoding: str, header) -> Image:
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1] * arr.shape[2] * arr.itemsize)
    msg.data = arr.tobytes()
    return msg


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """CameraInfo -> intrinsics; zero/NaN focal lengths or sizes raise ConversionError."""
    k = [float(v) for v in msg.k]
    intr = CameraIntrinsics(fx=k[0], fy=k[4], cx=k[2], cy=k[5], width=int(msg.width), height=int(msg.height))
    if not intr.is_valid() or not all(math.isfinite(v) for v in (intr.cx, intr.cy)):
        raise ConversionError(f"invalid camera intrinsics fx={intr.fx} fy={intr.fy} size={intr.width}x{intr.height}")
    return intr


def intrinsics_to_camera_info(intr: CameraIntrinsics, header=None) -> CameraInfo:
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(intr.width), int(intr.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def pointcloud2_to_xyz(msg: PointCloud2, with_rgb: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
    """PointCloud2 (xyz or xyzrgb, organised or not) -> (N, 3) float32 finite points.

    With `with_rgb` also returns (N, 3) uint8 colours from a packed `rgb`/`rgba` field (None if absent)."""
    fields = {f.name: f for f in msg.fields}
    missing = [n for n in ("x", "y", "z") if n not in fields]
    if missing:
        raise ConversionError(f"point cloud has no {'/'.join(missing)} field (fields: {', '.join(fields) or 'none'})")
    n = int(msg.width) * int(msg.height)
    step = int(msg.point_step)
    if n == 0:
        empty = np.zeros((0, 3), np.float32)
        return (empty, None) if with_rgb else empty
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z", "rgb", "rgba"):
        f = fields.get(name)
        if f is None:
            continue
        if f.datatype not in _POINTFIELD_DTYPES:
            raise ConversionError(f"point cloud field '{name}' has unknown datatype {f.datatype}")
        dt = np.dtype(_POINTFIELD_DTYPES[f.datatype]).newbyteorder(order)
        if f.offset + dt.itemsize > step:
            raise ConversionError(f"point cloud field '{name}' at offset {f.offset} exceeds point_step {step}")
        names.append(name)
        formats.append(dt)
        offsets.append(int(f.offset))
    row_step = int(msg.row_step) if msg.row_step else step * int(msg.width)
    if row_step < step * int(msg.width):
        raise ConversionError(f"point cloud row_step {row_step} < point_step*width {step * int(msg.width)}")
    needed = row_step * (int(msg.height) - 1) + step * int(msg.width)
    if len(msg.data) < needed:
        raise ConversionError(f"point cloud data has {len(msg.data)} bytes, expected {needed}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    rows = np.lib.stride_tricks.as_strided(buf, shape=(int(msg.height), step * int(msg.width)), strides=(row_step, 1))
    rec = np.ascontiguousarray(rows).view(np.dtype({"names": names, "formats": formats, "offsets": offsets,
                                                    "itemsize": step})).reshape(-1)
    xyz = np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)
    keep = np.isfinite(xyz).all(axis=1)
    xyz = xyz[keep]
    if not with_rgb:
        return xyz
    colour_name = "rgb" if "rgb" in names else ("rgba" if "rgba" in names else None)
    if colour_name is None:
        return xyz, None
    packed = np.ascontiguousarray(rec[colour_name][keep]).view(np.uint32) if rec[colour_name].dtype.itemsize == 4 else None
    if packed is None:
        return xyz, None
    colours = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    return xyz, colours


def xyz_to_pointcloud2(points: np.ndarray, header=None, rgb: np.ndarray | None = None,
                       organised_hw: tuple[int, int] | None = None) -> PointCloud2:
    """(N, 3) metres (+ optional (N, 3) uint8 colours) -> PointCloud2 with float32 x, y, z (+ packed rgb)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyz")]
    if rgb is not None:
        c = np.asarray(rgb, dtype=np.uint32).reshape(-1, 3)
        if len(c) != len(pts):
            raise ConversionError(f"{len(c)} colours for {len(pts)} points")
        packed = ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).astype(np.uint32).view(np.float32)
        data = np.concatenate([pts, packed[:, None]], axis=1)
        fields.append(PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1))
    else:
        data = pts
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    h, w = organised_hw if organised_hw is not None else (1, len(pts))
    if h * w != len(pts):
        raise ConversionError(f"organised size {h}x{w} does not match {len(pts)} points")
    msg.height, msg.width = int(h), int(w)
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = 4 * data.shape[1]
    msg.row_step = msg.point_step * int(w)
    msg.is_dense = bool(np.isfinite(pts).all())
    msg.data = np.ascontiguousarray(data, dtype=np.float32).tobytes()
    return msg
