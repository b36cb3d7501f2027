"""Readers for the real RGB-D frames in ../shared/realdata (SUN RGB-D with 3D boxes, NYUv2, TUM).

Every reader returns `RealFrame`s in the project's conventions (types.py): metres, camera optical frame,
0-based pixel centres. SUN RGB-D's toolbox uses 1-based pixel centres (X = (col + 1 - cx) Z / fx), so its
principal point is shifted by one pixel here; then our back-projection of depth.png reproduces the
toolbox's point cloud exactly and the annotated 3D boxes sit on the measured points.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from spatial_vlm_ros.inference.geometry import oriented_box_gap, support_gap
from spatial_vlm_ros.inference.types import Box3D, CameraIntrinsics, Detection, RGBDFrame

# NYUv2 RGB camera (Metric3D / UniDepth demo frames, see their PROVENANCE.txt).
NYU_INTRINSICS = (518.8579, 519.46961, 325.58245, 253.73617)
# TUM fr3 registered depth (open3d_testdata PROVENANCE.txt: the frame looks like freiburg3).
TUM_FR3_INTRINSICS = (535.4, 539.2, 320.1, 247.6)


@dataclass
class AnnotatedObject:
    id: str  # "<classname>_<index>", unique within the frame
    category: str  # dataset class name, e.g. "night_stand"
    box2d: tuple[float, float, float, float]  # x0, y0, x1, y1 pixels
    box3d: Optional[Box3D] = None  # amodal box in the camera optical frame


@dataclass
class AnnotatedRelation:
    """A relation read off the annotated 3D boxes (not off depth)."""

    subject_id: str
    object_id: str
    predicate: str  # "on" (subject rests on object) | "touching"
    gap_m: float  # support gap (subject bottom - object top) for "on", box-to-box gap for "touching"


@dataclass
class RealFrame:
    name: str  # "sunrgbd/000001", "nyu/metric3d_00050", "tum/fr3"
    rgb: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 metres, NaN = no measurement
    intrinsics: CameraIntrinsics
    up: Optional[np.ndarray] = None  # gravity up in the camera frame when the dataset gives it
    objects: list[AnnotatedObject] = field(default_factory=list)
    depth_saturation_m: Optional[float] = None  # values at this range are clipped, not measured

    def to_rgbd_frame(self, stamp_ns: int = 0) -> RGBDFrame:
        return RGBDFrame(rgb=self.rgb, intrinsics=self.intrinsics, depth=self.depth, up=self.up,
                         stamp_ns=stamp_ns, frame_id=self.name)

    def annotated_detections(self) -> list[Detection]:
        """The annotated 2D boxes as detections (score 1), for `GeometryEngine(detector="annotations")`."""
        return [Detection(id=o.id, label=o.category.replace("_", " "), score=1.0, box2d=o.box2d,
                          description=o.category.replace("_", " ") if _unique(self.objects, o) else
                          f"{o.category.replace('_', ' ')} {o.id.rsplit('_', 1)[-1]}")
                for o in self.objects]

    def annotated_relations(self) -> list[AnnotatedRelation]:
        return relations_from_boxes(self.objects, self.up_or_level())

    def up_or_level(self) -> np.ndarray:
        return self.up if self.up is not None else np.array([0.0, -1.0, 0.0])

    def annotated_box_gaps(self) -> dict[frozenset[str], float]:
        """Gap between the annotated 3D boxes of every pair (0 when they intersect)."""
        boxed = [o for o in self.objects if o.box3d is not None]
        return {frozenset((a.id, b.id)): oriented_box_gap(a.box3d, b.box3d)
                for i, a in enumerate(boxed) for b in boxed[i + 1:]}


def _unique(objects: list[AnnotatedObject], o: AnnotatedObject) -> bool:
    return sum(1 for p in objects if p.category == o.category) == 1


# --- SUN RGB-D (mmdetection3d test frames) --------------------------------------------------------
def read_sunrgbd_frame(frame_dir: Path | str) -> RealFrame:
    d = Path(frame_dir)
    cam = _read_json(d / "camera.json")
    w, h = int(cam["width"]), int(cam["height"])
    # 1-based pixel centres in the SUN toolbox -> shift the principal point by one pixel.
    intr = CameraIntrinsics(float(cam["fx"]), float(cam["fy"]), float(cam["cx"]) - 1.0, float(cam["cy"]) - 1.0, w, h)
    rtilt = np.asarray(cam["Rtilt"], dtype=np.float64)
    up = upright_to_camera(rtilt, np.array([0.0, 0.0, 1.0]))
    rgb = read_rgb(d / "rgb.jpg")
    depth = read_depth_png(d / "depth.png", scale=float(cam.get("depth_png_scale", 1000.0)))
    boxes = _read_json(d / "boxes.json")
    objects = []
    counts: dict[str, int] = {}
    for o in boxes.get("objects", []):
        name = str(o["classname"])
        idx = counts.get(name, 0)
        counts[name] = idx + 1
        x, y, bw, bh = (float(v) for v in o["box2d_xywh"])
        box2d = (max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh))
        objects.append(AnnotatedObject(f"{name}_{idx}", name, box2d, box_from_corners(np.asarray(o["corners_camera"]))))
    return RealFrame(f"sunrgbd/{d.name}", rgb, depth, intr, up, objects, depth_saturation_m=8.0)


def upright_to_camera(rtilt: np.ndarray, v_upright: np.ndarray) -> np.ndarray:
    """SUN RGB-D: p_cam = flip(Rtilt^T p_up), flip (x, y, z) -> (x, -z, y)."""
    p = rtilt.T @ v_upright
    return np.array([p[0], -p[2], p[1]])


def box_from_corners(corners: np.ndarray) -> Box3D:
    """votenet corner order: 0-3 the top face, 4-7 the bottom face, i and i+4 vertically aligned."""
    c = np.asarray(corners, dtype=np.float64).reshape(8, 3)
    axis_a, axis_b, axis_h = c[1] - c[0], c[3] - c[0], c[0] - c[4]
    size = np.array([np.linalg.norm(axis_a), np.linalg.norm(axis_b), np.linalg.norm(axis_h)])
    rot = np.stack([axis_a, axis_b, axis_h], axis=1) / np.maximum(size, 1e-9)
    return Box3D(center=c.mean(axis=0), size=size, rotation=rot)


# --- NYUv2 and TUM ----------------------------------------------------------------------------------
def read_nyu_frames(nyu_dir: Path | str) -> list[RealFrame]:
    """The Metric3D (3) and UniDepth (1) NYUv2 demo frames: aligned depth in mm, NYU intrinsics."""
    d = Path(nyu_dir)
    frames = []
    for rgb_path in sorted(d.glob("metric3d_rgb_*.jpg")):
        idx = rgb_path.stem.rsplit("_", 1)[-1]
        frames.append(_pinhole_frame(f"nyu/metric3d_{idx}", rgb_path, d / f"metric3d_depth_{idx}.png", NYU_INTRINSICS,
                                     1000.0))
    if (d / "unidepth_rgb.png").is_file():
        k = np.load(d / "unidepth_intrinsics.npy")
        frames.append(_pinhole_frame("nyu/unidepth", d / "unidepth_rgb.png", d / "unidepth_depth.png",
                                     (k[0, 0], k[1, 1], k[0, 2], k[1, 2]), 1000.0, saturation_m=10.0))
    if not frames:
        raise FileNotFoundError(f"{d}: no NYUv2 frames (metric3d_rgb_*.jpg / unidepth_rgb.png)")
    return frames


def read_tum_frame(open3d_dir: Path | str) -> RealFrame:
    d = Path(open3d_dir)
    return _pinhole_frame("tum/fr3", d / "TUM_color.png", d / "TUM_depth_mm.png", TUM_FR3_INTRINSICS, 1000.0)


def _pinhole_frame(name: str, rgb_path: Path, depth_path: Path, k: tuple[float, ...], scale: float,
                   saturation_m: Optional[float] = None) -> RealFrame:
    rgb = read_rgb(rgb_path)
    depth = read_depth_png(depth_path, scale)
    h, w = depth.shape
    if rgb.shape[:2] != depth.shape:
        raise ValueError(f"{rgb_path}: size {rgb.shape[1]}x{rgb.shape[0]} differs from depth {w}x{h}")
    return RealFrame(name, rgb, depth, CameraIntrinsics(*(float(v) for v in k), w, h), depth_saturation_m=saturation_m)


# --- any folder -----------------------------------------------------------------------------------
def read_frames(path: Path | str) -> list[RealFrame]:
    """Frames of a realdata folder: the realdata root, sunrgbd_mmdet3d/, one SUN frame folder,
    nyuv2_metric3d_unidepth/ or open3d_testdata/."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if (p / "camera.json").is_file():
        return [read_sunrgbd_frame(p)]
    sun = sorted(c for c in p.iterdir() if (c / "camera.json").is_file()) if p.is_dir() else []
    if sun:
        return [read_sunrgbd_frame(c) for c in sun]
    if (p / "metric3d_rgb_00000.jpg").is_file() or (p / "unidepth_rgb.png").is_file():
        return read_nyu_frames(p)
    if (p / "TUM_color.png").is_file():
        return [read_tum_frame(p)]
    if (p / "sunrgbd_mmdet3d").is_dir():
        frames = read_frames(p / "sunrgbd_mmdet3d")
        if (p / "nyuv2_metric3d_unidepth").is_dir():
            frames += read_nyu_frames(p / "nyuv2_metric3d_unidepth")
        if (p / "open3d_testdata" / "TUM_color.png").is_file():
            frames.append(read_tum_frame(p / "open3d_testdata"))
        return frames
    raise ValueError(f"{p}: not a realdata folder (expected SUN RGB-D <id>/camera.json, NYUv2 or TUM frames)")


# --- annotated relations ----------------------------------------------------------------------------
def relations_from_boxes(objects: list[AnnotatedObject], up: np.ndarray, support_tolerance_m: float = 0.05,
                         contact_m: float = 0.01) -> list[AnnotatedRelation]:
    """Support ("on") and contact read off annotated 3D boxes. Annotated boxes interpenetrate by a few
    cm (lamp on night_stand: -2..-3 cm), so support takes a tolerance on the support gap either way."""
    rels = []
    boxed = [o for o in objects if o.box3d is not None]
    for a in boxed:
        for b in boxed:
            if a is b:
                continue
            sg = support_gap(a.box3d, b.box3d, up)
            if sg is not None and abs(sg) <= support_tolerance_m:
                rels.append(AnnotatedRelation(a.id, b.id, "on", sg))
            if a.id < b.id:
                gap = oriented_box_gap(a.box3d, b.box3d)
                if gap <= contact_m:
                    rels.append(AnnotatedRelation(a.id, b.id, "touching", gap))
    return rels


# --- file helpers -----------------------------------------------------------------------------------
def read_rgb(path: Path) -> np.ndarray:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: missing")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: corrupt or unreadable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_depth_png(path: Path, scale: float = 1000.0) -> np.ndarray:
    """uint16 depth PNG -> float32 metres with NaN where 0 (no measurement)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: missing")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2 or raw.dtype != np.uint16:
        raise ValueError(f"{path}: expected a single-channel uint16 depth PNG")
    depth = raw.astype(np.float32) / scale
    depth[raw == 0] = np.nan
    return depth


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt JSON ({exc})") from exc


def box_center_error(predicted: Box3D, annotated: Box3D) -> float:
    return float(np.linalg.norm(np.asarray(predicted.center) - np.asarray(annotated.center)))


def horizontal_center_error(predicted: Box3D, annotated: Box3D, up: np.ndarray) -> float:
    """Centre error in the ground plane, which ignores the amodal-height bias of a visible-surface box."""
    d = np.asarray(predicted.center) - np.asarray(annotated.center)
    d = d - (d @ up) * up
    return float(math.sqrt(float(d @ d)))


# --- RGB-D recordings (ROS 2 MCAP) ------------------------------------------------------------------
COLOR_ENCODINGS = {"rgb8": 0, "bgr8": 1, "rgba8": 2, "bgra8": 3}
DEPTH_ENCODINGS = {"16UC1": 0.001, "mono16": 0.001, "32FC1": 1.0}


def read_recording(path: Path | str, every: int = 1, max_pair_dt_s: float = 0.05) -> Iterator[RealFrame]:
    """Frames of an unlabeled RGB-D recording: a ROS 2 .mcap (colour Image + depth Image + CameraInfo,
    topics found by their encodings), or any folder `read_frames` understands. The path is checked
    here, before the first frame is read."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if p.is_file() and p.suffix == ".mcap":
        return _mcap_frames(p, every, max_pair_dt_s)
    if p.is_file():
        raise ValueError(f"{p}: not a recording (expected a .mcap file or a realdata folder)")
    return (frame for i, frame in enumerate(read_frames(p)) if i % every == 0)


def _mcap_frames(path: Path, every: int, max_pair_dt_s: float) -> Iterator[RealFrame]:
    """Pairs each colour image with the nearest-in-time depth image (and the latest CameraInfo)."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    colors: list[tuple[int, np.ndarray, str]] = []
    depths: list[tuple[int, np.ndarray]] = []
    infos: dict[str, CameraIntrinsics] = {}
    try:
        with path.open("rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for schema, channel, _, msg in reader.iter_decoded_messages():
                name = schema.name if schema else ""
                if name.endswith("CameraInfo"):
                    infos[channel.topic] = CameraIntrinsics(float(msg.k[0]), float(msg.k[4]), float(msg.k[2]),
                                                            float(msg.k[5]), int(msg.width), int(msg.height))
                elif name.endswith("msg/Image"):
                    stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
                    if msg.encoding in COLOR_ENCODINGS:
                        colors.append((stamp, _color_image(msg), channel.topic))
                    elif msg.encoding in DEPTH_ENCODINGS:
                        depths.append((stamp, _depth_image(msg)))
    except (McapError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: unreadable MCAP ({type(exc).__name__}: {exc})") from exc
    if not colors or not depths:
        raise ValueError(f"{path}: needs a colour Image topic (rgb8/bgr8) and a depth Image topic (16UC1/32FC1); "
                         f"found {len(colors)} colour and {len(depths)} depth messages")
    if not infos:
        raise ValueError(f"{path}: no sensor_msgs/CameraInfo messages (the intrinsics are needed to lift depth)")
    depth_stamps = np.array([s for s, _ in depths])
    for i, (stamp, rgb, topic) in enumerate(colors):
        if i % every:
            continue
        j = int(np.argmin(np.abs(depth_stamps - stamp)))
        if abs(int(depth_stamps[j]) - stamp) > max_pair_dt_s * 1e9:
            continue
        depth = depths[j][1]
        info = _info_for(infos, topic)
        h, w = depth.shape
        if rgb.shape[:2] != (h, w):
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        intr = info.scaled(w, h) if (info.width, info.height) != (w, h) else info
        yield RealFrame(f"{path.stem}/{stamp}", rgb, depth, intr)


def _info_for(infos: dict[str, CameraIntrinsics], image_topic: str) -> CameraIntrinsics:
    """The CameraInfo that shares the image's namespace (…/color/image_raw -> …/color/camera_info)."""
    prefix = image_topic.rsplit("/", 1)[0]
    for topic, info in infos.items():
        if topic.rsplit("/", 1)[0] == prefix:
            return info
    return next(iter(infos.values()))


def _color_image(msg) -> np.ndarray:
    channels = 4 if msg.encoding.endswith("a8") else 3
    img = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width * channels]
    img = img.reshape(msg.height, msg.width, channels)[:, :, :3]
    return np.ascontiguousarray(img[:, :, ::-1] if msg.encoding.startswith("bgr") else img)


def _depth_image(msg) -> np.ndarray:
    dtype = np.dtype(np.uint16 if msg.encoding != "32FC1" else np.float32)
    dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    raw = np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.step // dtype.itemsize)[:, : msg.width]
    depth = raw.astype(np.float32) * DEPTH_ENCODINGS[msg.encoding]
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


# --- depth completion on real frames ---------------------------------------------------------------
@dataclass
class DepthScore:
    frame: str
    abs_rel_rgb_only: float  # the engine's depth from RGB alone
    abs_rel_median_scaled: float  # the same after matching the median (scale-free quality)
    abs_rel_completion: float  # depth with holes punched in: scored on the hidden pixels
    abs_rel_nearest_fill: float  # baseline: each hidden pixel copies the nearest measured one


def measure_depth_completion(engine, frames: list[RealFrame], hide_fraction: float = 0.3, block_px: int = 32,
                             seed: int = 0) -> list[DepthScore]:
    """AbsRel = mean |pred - gt| / gt over pixels with measured depth. Completion hides random
    `block_px` squares (`hide_fraction` of the image) of the measured depth and scores the engine's depth
    (SceneResult.depth: measurement where given, prediction in the holes) on exactly those pixels."""
    from scipy.ndimage import distance_transform_edt

    rng = np.random.default_rng(seed)
    scores = []
    for f in frames:
        gt = f.depth
        valid = np.isfinite(gt) & (gt > 0)
        pred = engine.infer(RGBDFrame(f.rgb, f.intrinsics)).depth
        ok = valid & np.isfinite(pred) & (pred > 0)
        scale = float(np.median(gt[ok]) / np.median(pred[ok]))
        h, w = gt.shape
        hide = np.kron(rng.random((h // block_px + 1, w // block_px + 1)) < hide_fraction,
                       np.ones((block_px, block_px), bool))[:h, :w]
        holed = np.where(hide, np.nan, gt).astype(np.float32)
        completed = engine.infer(RGBDFrame(f.rgb, f.intrinsics, depth=holed)).depth
        m = hide & valid & np.isfinite(completed) & (completed > 0)
        _, (iy, ix) = distance_transform_edt(~np.isfinite(holed), return_indices=True)
        nearest = holed[iy, ix]
        scores.append(DepthScore(f.name, _abs_rel(pred, gt, ok), _abs_rel(pred * scale, gt, ok), _abs_rel(completed, gt, m),
                                 _abs_rel(nearest, gt, hide & valid)))
    return scores


def _abs_rel(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean(np.abs(pred[mask] - gt[mask]) / gt[mask])) if mask.any() else math.nan


# --- annotated boxes for frames that went through ROS -------------------------------------------
class AnnotationLookup:
    """`GeometryEngine(detector="annotations", annotations=AnnotationLookup(frames))`: finds a frame's
    annotated boxes by its image, so frames can travel through ROS topics (new stamps, new frame ids)
    and still get their dataset's boxes. Matching uses a 32x24 thumbnail, so a lossy transport works too."""

    def __init__(self, frames: list[RealFrame], max_mean_abs_diff: float = 6.0) -> None:
        self._entries = [(_thumbnail(f.rgb), f.rgb.shape, f.annotated_detections()) for f in frames if f.objects]
        self.max_mean_abs_diff = max_mean_abs_diff

    def __len__(self) -> int:
        return len(self._entries)

    def __call__(self, frame: RGBDFrame) -> list[Detection]:
        thumb = _thumbnail(frame.rgb)
        best, best_diff = None, math.inf
        for ref, shape, dets in self._entries:
            if shape[:2] != frame.rgb.shape[:2]:
                continue
            diff = float(np.mean(np.abs(ref - thumb)))
            if diff < best_diff:
                best, best_diff = dets, diff
        if best is None or best_diff > self.max_mean_abs_diff:
            raise ValueError(f"no annotated frame matches this image (closest differs by {best_diff:.1f} grey levels)")
        return [Detection(d.id, d.label, d.score, d.box2d, d.color, None, None, d.description) for d in best]


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)
