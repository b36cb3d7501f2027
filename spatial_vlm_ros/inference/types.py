"""Plain data types shared by the model, the inference engine, the eval harness and the ROS node.

Conventions (REP-103 / REP-105 optical frame): metres; camera optical frame with x right, y down,
z forward; images are row-major (H, W); 2D boxes are (x_min, y_min, x_max, y_max) in pixels of the
source image. Nothing here imports ROS or torch.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Optional, Protocol

import numpy as np

from .mentions import resolve


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of the image the arrays belong to."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_matrix(cls, K: Sequence[Sequence[float]] | np.ndarray, width: int, height: int) -> CameraIntrinsics:
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), int(width), int(height))

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """Intrinsics of the same camera after resizing the image to (width, height)."""
        # Pixel centres sit at integer coordinates, so the principal point maps as (c + 0.5) * s - 0.5.
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                                int(width), int(height))

    def is_valid(self) -> bool:
        vals = (self.fx, self.fy, self.cx, self.cy)
        return (
            all(math.isfinite(v) for v in vals)
            and self.fx > 0
            and self.fy > 0
            and self.width > 0
            and self.height > 0
        )


@dataclass
class RGBDFrame:
    """One synchronised input frame. `depth` and `points` are optional; the model predicts depth
    when neither is given."""

    rgb: np.ndarray  # (H, W, 3) uint8, RGB order
    intrinsics: CameraIntrinsics
    depth: Optional[np.ndarray] = None  # (H, W) float32 metres; NaN = no measurement
    points: Optional[np.ndarray] = None  # (N, 3) float32 metres in the camera optical frame
    up: Optional[np.ndarray] = None  # unit gravity-up vector in the camera frame, when known
    stamp_ns: int = 0
    frame_id: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass
class Box3D:
    """Oriented 3D box in the camera optical frame."""

    center: np.ndarray  # (3,)
    size: np.ndarray  # (3,) full extents along the box axes
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # columns = box axes in camera frame

    def corners(self) -> np.ndarray:
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        return (signs * (np.asarray(self.size) / 2.0)) @ np.asarray(self.rotation).T + np.asarray(self.center)


@dataclass
class Detection:
    id: str  # unique within a frame
    label: str  # category, e.g. "mug"
    score: float
    box2d: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max in source pixels
    color: str = ""  # colour name when known, e.g. "red"
    box3d: Optional[Box3D] = None
    mask: Optional[np.ndarray] = None  # (H, W) bool, when the backend gives one

    description: str = ""  # referring expression, unique within a frame; defaults to "<color> <label>"
    # Detector probability of each category (model order), when the backend gives them: what else it may be.
    label_scores: dict[str, float] = field(default_factory=dict)
    color_scores: dict[str, float] = field(default_factory=dict)  # likewise for the colour names

    def __post_init__(self) -> None:
        if not self.description:
            self.description = f"{self.color} {self.label}".strip()


class RelationType(IntEnum):
    PROXIMITY = 0
    CONTACT = 1
    SUPPORT = 2


#: Region-head score below which a region is background; chosen on val (results/detection_val.json).
DEFAULT_SCORE_THRESHOLD = 0.5
#: Positive predicate of each relation type; `holds` says whether it applies.
PREDICATES = {RelationType.PROXIMITY: "near", RelationType.CONTACT: "touching", RelationType.SUPPORT: "on"}


@dataclass
class Relation:
    """`subject <predicate> object`, e.g. the red mug / on / the blue book.

    For PROXIMITY the predicate is "near" when it holds and "far" when the pair is clearly apart;
    CONTACT uses "touching", SUPPORT uses "on" (subject rests on object)."""

    subject_id: str
    object_id: str
    subject: str
    object: str
    type: RelationType
    predicate: str
    holds: bool
    confidence: float  # probability that `holds` is right
    distance_m: float = math.nan  # metric surface gap
    source: str = "model"  # model | geometry | fused

    @property
    def text(self) -> str:
        return relation_sentence(self.subject, self.predicate, self.object, self.holds)


def relation_sentence(subject: str, predicate: str, obj: str, holds: bool) -> str:
    verb = "is" if holds else "is not"
    phrase = {"near": "near", "far": "far from", "touching": "touching", "on": "on"}.get(predicate, predicate)
    return f"The {subject} {verb} {phrase} the {obj}."


@dataclass
class SceneResult:
    """Everything the engine knows about one frame."""

    detections: list[Detection]
    relations: list[Relation]
    description: str
    depth: Optional[np.ndarray] = None  # (H, W) float32 metres at the source resolution
    depth_confidence: Optional[np.ndarray] = None  # (H, W) float32 in [0, 1]
    stamp_ns: int = 0
    frame_id: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    def find(self, phrase: str) -> list[Detection]:
        """Detections whose description or label matches `phrase` (case-insensitive). Failing that, the
        detection most likely of the phrase's category and colour (`mentions.resolve`: "the gray table"
        finds our "white table", "the red book" a "red box" that may be a book); none when nothing is
        likely enough or two are equally likely."""
        p = " ".join(phrase.lower().replace("the ", " ").split())
        exact = [d for d in self.detections if d.description.lower() == p]
        found = exact or [d for d in self.detections if d.label.lower() == p or p in d.description.lower()]
        if found or not p:
            return found
        return [self.detections[i] for i in resolve(f"the {p}", self.detections)[:1]]


@dataclass
class Answer:
    question: str
    text: str  # English answer
    confidence: float
    success: bool = True
    relations: list[Relation] = field(default_factory=list)
    message: str = ""  # why, when success is False
    source: str = "model"
    #: object phrases of the question ("green can") that nothing in the frame stands for, even on a
    #: second look: the answer is then a guess about an object the model never saw
    unresolved: list[str] = field(default_factory=list)
    #: descriptions of the objects only the second look found (not among the published detections)
    second_look: list[str] = field(default_factory=list)


class SpatialEngine(Protocol):
    """What the node and the eval harness need from any model backend."""

    def infer(self, frame: RGBDFrame) -> SceneResult: ...

    def answer(self, frame: RGBDFrame, scene: SceneResult, question: str) -> Answer: ...
