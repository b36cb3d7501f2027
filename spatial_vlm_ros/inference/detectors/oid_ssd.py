"""SSD-MobileNetV2 (Open Images v4) 2D detector on the LiteRT (TFLite) CPU runtime.

The model and its label map ship in resource/models/oid_ssd (see NOTICE there); this module does the
preprocessing, anchor decoding and NMS that the .tflite leaves to its host application.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..types import Detection
from .colour_names import dominant_colour_name
from .ssd_anchors import SsdAnchorConfig, generate_anchors
from .ssd_decode import BoxCoderScales, class_aware_nms, decode_boxes, nms

MODEL_FILE = "ssd_mobilenetv2_oidv4_fp16.tflite"
LABEL_FILE = "labels.txt"


def default_model_dir() -> Path:
    """$SPATIAL_VLM_OID_SSD_DIR, else the repository's resource/models/oid_ssd, else the colcon share dir."""
    env = os.environ.get("SPATIAL_VLM_OID_SSD_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / "resource" / "models" / "oid_ssd"]
    prefix = os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
    candidates += [Path(p) / "share" / "spatial_vlm_ros" / "resource" / "models" / "oid_ssd" for p in prefix if p]
    for c in candidates:
        if (c / MODEL_FILE).is_file():
            return c
    return candidates[0]


def read_labels(path: Path) -> list[str]:
    """Class names by output index; index 0 is the background class ("???")."""
    return [line.strip() for line in path.read_text().splitlines()]


@dataclass
class RawDetections:
    """Detections in source-image pixels before they become `Detection`s."""

    boxes: np.ndarray  # (K, 4) x_min, y_min, x_max, y_max
    scores: np.ndarray  # (K,)
    labels: list[str]


class OidSsdDetector:
    """`detect(rgb) -> list[Detection]` for an (H, W, 3) uint8 RGB image."""

    def __init__(self, model_dir: str | Path | None = None, score_threshold: float = 0.4, iou_threshold: float = 0.45,
                 max_detections: int = 50, num_threads: int = 2, cross_class_iou: float = 0.8) -> None:
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        model_path = model_dir / MODEL_FILE
        if not model_path.is_file():
            raise FileNotFoundError(f"OID SSD model not found at {model_path}; run resource/models/oid_ssd/fetch_oid_ssd.sh")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # optional dependency: the student backend does not need it
            raise ImportError("the oid_ssd detector needs `pip install ai-edge-litert`") from exc
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.labels = read_labels(model_dir / LABEL_FILE)
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        self._input_index = inp["index"]
        self.input_size = int(inp["shape"][1])
        outs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self._box_index = next(i for n, i in outs.items() if "box" in n)
        self._class_index = next(i for n, i in outs.items() if "class" in n)
        self.anchors = generate_anchors(SsdAnchorConfig(input_size=self.input_size))
        self.scales = BoxCoderScales()
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.cross_class_iou = cross_class_iou

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        # The TF OD API trained it with a fixed_shape_resizer: stretch to the input, no letterbox.
        resized = cv2.resize(rgb, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
        return (resized.astype(np.float32) / 127.5 - 1.0)[None]

    def raw_outputs(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1917, 4) box encodings and (1917, num_classes) class logits."""
        self.interpreter.set_tensor(self._input_index, self.preprocess(rgb))
        self.interpreter.invoke()
        return (self.interpreter.get_tensor(self._box_index)[0].copy(),
                self.interpreter.get_tensor(self._class_index)[0].copy())

    def detect_raw(self, rgb: np.ndarray) -> RawDetections:
        check_image(rgb)
        encodings, logits = self.raw_outputs(rgb)
        scores_all = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        scores_all[:, 0] = 0.0  # background
        classes = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(classes)), classes]
        keep = scores >= self.score_threshold
        boxes = decode_boxes(encodings[keep], self.anchors[keep], self.scales)
        classes, scores = classes[keep], scores[keep]
        order = class_aware_nms(boxes, scores, classes, self.iou_threshold, self.max_detections)
        # One object, two near-synonymous classes (Desk/Table, Mug/Coffee cup): keep the more confident.
        order = order[nms(boxes[order], scores[order], self.cross_class_iou, self.max_detections)]
        h, w = rgb.shape[:2]
        px = np.clip(boxes[order] * np.array([w, h, w, h]), 0, [w, h, w, h])
        return RawDetections(px, scores[order], [self.labels[c] for c in classes[order]])

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        raw = self.detect_raw(rgb)
        dets = []
        for i, (box, score, label) in enumerate(zip(raw.boxes, raw.scores, raw.labels, strict=True)):
            x0, y0, x1, y1 = (float(v) for v in box)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            name = label.lower()
            colour = dominant_colour_name(rgb[int(y0):int(y1), int(x0):int(x1)])
            dets.append(Detection(id=f"{name.replace(' ', '_')}_{i}", label=name, score=float(score),
                                  box2d=(x0, y0, x1, y1), color=colour))
        return dets


def check_image(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 8:
        shape = getattr(rgb, "shape", None)
        raise ValueError(f"expected an (H, W, 3) RGB image of at least 8x8 pixels, got shape {shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image, got dtype {rgb.dtype}")
