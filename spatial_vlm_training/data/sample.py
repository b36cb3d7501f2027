"""The on-disk scene format "svlm-scenes-1" and the `SceneSample` type every loader yields.

A split directory holds `meta.json`, `samples.jsonl` (one frame per line) and `frames/` with the
images (see FORMAT.md). Generated, ScanNet-layout and SUN RGB-D frames all become `SceneSample`s,
so the dataset, the trainers and the eval harness read one type.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from spatial_vlm_ros.inference.types import Box3D, CameraIntrinsics

FORMAT_VERSION = "svlm-scenes-1"
FLOOR = "floor"  # `resting_on` value for objects that stand on the floor (the floor is not an object)


class SplitFormatError(ValueError):
    """A split file is missing, corrupt or of another format version; the message names the file."""


@dataclass
class SceneObject:
    id: str  # "obj0", unique within the scene
    category: str  # "mug", "table", ...
    color: str  # colour name, "" when unknown
    description: str  # referring expression without article, unique within the frame ("red mug")
    instance: int  # value of this object's pixels in the instance map (1-based)
    box2d: tuple[float, float, float, float]  # x0, y0, x1, y1 (pixels, inclusive-exclusive of visible mask)
    visible_px: int
    box3d: Box3D  # camera optical frame
    resting_on: str = FLOOR  # id of the supporting object, or "floor"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "color": self.color,
            "description": self.description,
            "instance": int(self.instance),
            "box2d": [_r(v, 2) for v in self.box2d],
            "visible_px": int(self.visible_px),
            "box3d": {
                "center": [_r(v) for v in np.asarray(self.box3d.center).tolist()],
                "size": [_r(v) for v in np.asarray(self.box3d.size).tolist()],
                "rotation": [[_r(v) for v in row] for row in np.asarray(self.box3d.rotation).tolist()],
            },
            "resting_on": self.resting_on,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SceneObject:
        b = d["box3d"]
        return cls(
            id=str(d["id"]),
            category=str(d["category"]),
            color=str(d.get("color", "")),
            description=str(d.get("description") or f"{d.get('color', '')} {d['category']}".strip()),
            instance=int(d["instance"]),
            box2d=tuple(float(v) for v in d["box2d"]),  # type: ignore[arg-type]
            visible_px=int(d.get("visible_px", 0)),
            box3d=Box3D(np.asarray(b["center"], float), np.asarray(b["size"], float), np.asarray(b["rotation"], float)),
            resting_on=str(d.get("resting_on", FLOOR)),
        )


@dataclass
class PairRelation:
    """Ground truth for one ordered pair; `near`/`touching` are None inside the ambiguous bands."""

    subject: str
    object: str
    gap_m: float
    near: Optional[bool]
    touching: Optional[bool]
    on: bool

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "object": self.object, "gap_m": _r(self.gap_m), "near": self.near,
                "touching": self.touching, "on": bool(self.on)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PairRelation:
        return cls(str(d["subject"]), str(d["object"]), float(d["gap_m"]), d.get("near"), d.get("touching"),
                   bool(d.get("on", False)))


@dataclass
class QAItem:
    question: str
    answer: str  # "yes" / "no" / a referring expression with article ("the red mug", "the floor")
    type: str  # proximity | contact | support
    kind: str  # yesno | choice
    subject: str  # object id
    object: Optional[str] = None  # object id, None for choice questions

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "type": self.type, "kind": self.kind,
                "subject": self.subject, "object": self.object}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QAItem:
        return cls(str(d["question"]), str(d["answer"]), str(d["type"]), str(d["kind"]), str(d["subject"]),
                   None if d.get("object") is None else str(d["object"]))


@dataclass
class SceneSample:
    """One RGB-D frame with its ground truth. Image paths are relative to `root`."""

    id: str
    scene: int
    rgb: str
    depth: str
    gt: str
    intrinsics: CameraIntrinsics
    up: np.ndarray  # (3,) gravity up in the camera frame
    camera_pose: np.ndarray  # (4, 4) world-from-camera
    objects: list[SceneObject]
    relations: list[PairRelation]
    qa: list[QAItem]
    description: str
    root: Path = field(default_factory=Path)

    # --- images -------------------------------------------------------------------------------
    def load_rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        bgr = _imread(self.root / self.rgb, cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def load_depth(self) -> np.ndarray:
        """Sensor depth, (H, W) float32 metres with NaN holes."""
        raw = _imread(self.root / self.depth, cv2.IMREAD_UNCHANGED)
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise SplitFormatError(f"{self.root / self.depth}: expected a single-channel uint16 PNG")
        depth = raw.astype(np.float32) / 1000.0
        depth[raw == 0] = np.nan
        return depth

    def load_gt(self) -> tuple[np.ndarray, np.ndarray]:
        """(exact depth float32 metres, instance uint8 with 0 = background)."""
        path = self.root / self.gt
        try:
            with np.load(path) as z:
                return z["depth"].astype(np.float32), z["instance"].astype(np.uint8)
        except FileNotFoundError as exc:
            raise SplitFormatError(f"{path}: missing") from exc
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise SplitFormatError(f"{path}: corrupt ground-truth file ({type(exc).__name__})") from exc

    # --- lookups ------------------------------------------------------------------------------
    def object_by_id(self, object_id: str) -> SceneObject:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(object_id)

    def relation(self, subject: str, obj: str) -> PairRelation:
        for r in self.relations:
            if r.subject == subject and r.object == obj:
                return r
        raise KeyError((subject, obj))

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        k = self.intrinsics
        return {
            "id": self.id,
            "scene": int(self.scene),
            "rgb": self.rgb,
            "depth": self.depth,
            "gt": self.gt,
            "intrinsics": {"fx": _r(k.fx, 4), "fy": _r(k.fy, 4), "cx": _r(k.cx, 4), "cy": _r(k.cy, 4),
                           "width": int(k.width), "height": int(k.height)},
            "up": [_r(v) for v in np.asarray(self.up).tolist()],
            "camera_pose": [[_r(v) for v in row] for row in np.asarray(self.camera_pose).tolist()],
            "objects": [o.to_json() for o in self.objects],
            "relations": [r.to_json() for r in self.relations],
            "qa": [q.to_json() for q in self.qa],
            "description": self.description,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], root: Path | str = ".") -> SceneSample:
        k = d["intrinsics"]
        return cls(
            id=str(d["id"]),
            scene=int(d["scene"]),
            rgb=str(d["rgb"]),
            depth=str(d["depth"]),
            gt=str(d["gt"]),
            intrinsics=CameraIntrinsics(float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]),
                                        int(k["width"]), int(k["height"])),
            up=np.asarray(d.get("up", [0.0, -1.0, 0.0]), dtype=np.float64),
            camera_pose=np.asarray(d.get("camera_pose", np.eye(4).tolist()), dtype=np.float64),
            objects=[SceneObject.from_json(o) for o in d.get("objects", [])],
            relations=[PairRelation.from_json(r) for r in d.get("relations", [])],
            qa=[QAItem.from_json(q) for q in d.get("qa", [])],
            description=str(d.get("description", "")),
            root=Path(root),
        )

    def to_line(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))


@dataclass
class SplitMeta:
    format: str
    split: str
    seed: int
    n_scenes: int
    n_frames: int
    categories: list[str]
    colors: list[str]
    thresholds: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "split": self.split, "seed": self.seed, "n_scenes": self.n_scenes,
                "n_frames": self.n_frames, "categories": self.categories, "colors": self.colors,
                "thresholds": self.thresholds, **self.extra}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SplitMeta:
        known = {"format", "split", "seed", "n_scenes", "n_frames", "categories", "colors", "thresholds"}
        return cls(str(d["format"]), str(d.get("split", "")), int(d.get("seed", 0)), int(d.get("n_scenes", 0)),
                   int(d.get("n_frames", 0)), list(d.get("categories", [])), list(d.get("colors", [])),
                   dict(d.get("thresholds", {})), {k: v for k, v in d.items() if k not in known})


@dataclass
class Split:
    root: Path
    meta: SplitMeta
    samples: list[SceneSample]

    def __len__(self) -> int:
        return len(self.samples)


def read_meta(split_dir: Path | str) -> SplitMeta:
    path = Path(split_dir) / "meta.json"
    if not Path(split_dir).is_dir():
        raise SplitFormatError(f"{split_dir}: not a directory")
    if not path.is_file():
        raise SplitFormatError(f"{path}: missing (not an {FORMAT_VERSION} split)")
    try:
        meta = SplitMeta.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SplitFormatError(f"{path}: corrupt ({type(exc).__name__}: {exc})") from exc
    if meta.format != FORMAT_VERSION:
        raise SplitFormatError(f"{path}: format {meta.format!r}, expected {FORMAT_VERSION!r}")
    return meta


def iter_samples(split_dir: Path | str, limit: Optional[int] = None) -> Iterator[SceneSample]:
    """Stream the samples of a split without holding them all (checks meta.json first)."""
    root = Path(split_dir)
    read_meta(root)
    path = root / "samples.jsonl"
    if not path.is_file():
        raise SplitFormatError(f"{path}: missing")
    with path.open() as f:
        n = 0
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if limit is not None and n >= limit:
                return
            try:
                yield SceneSample.from_json(json.loads(line), root)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise SplitFormatError(f"{path}:{lineno}: corrupt sample ({type(exc).__name__}: {exc})") from exc
            n += 1


def split_fingerprint(split_dir: Path | str, limit: Optional[int] = None) -> str:
    """SHA-256 over the first `limit` samples' lines and the bytes of their image files.

    The same seed is meant to give the same bytes, yet the test split regenerated in the eleventh session
    was not the one the committed table had scored (cause not found, results/NOTES.md). Results files
    carry this so a re-run can tell whether it scored the same frames."""
    digest = hashlib.sha256()
    for sample in iter_samples(split_dir, limit):
        digest.update(json.dumps(sample.to_json(), sort_keys=True).encode())
        for name in (sample.rgb, sample.depth, sample.gt):
            if name:
                digest.update((sample.root / name).read_bytes())
    return digest.hexdigest()


def load_split(split_dir: Path | str, limit: Optional[int] = None) -> Split:
    root = Path(split_dir)
    meta = read_meta(root)
    return Split(root, meta, list(iter_samples(root, limit)))


# --- deterministic writers (the same seed must give the same bytes) ---------------------------
def encode_png(image: np.ndarray) -> bytes:
    """RGB uint8 (H, W, 3) or uint16 (H, W) -> PNG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def encode_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz with fixed zip timestamps (np.savez stamps the current time, which breaks determinism)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=1)
    return out.getvalue()


def _imread(path: Path, flags: int) -> np.ndarray:
    if not path.is_file():
        raise SplitFormatError(f"{path}: missing")
    img = cv2.imread(str(path), flags)
    if img is None:
        raise SplitFormatError(f"{path}: corrupt or unreadable image")
    return img


def _r(v: float, nd: int = 5) -> float:
    return round(float(v), nd)
