"""Annotated colour image: masks, boxes, labels and relation lines drawn with OpenCV (used for
~/debug_image and the demo's PNGs)."""
from __future__ import annotations

import cv2
import numpy as np

from ..inference.types import Detection, Relation
from .markers import class_color, relation_style


def _bgr255(label: str) -> tuple[int, int, int]:
    c = class_color(label)
    return int(c.b * 255), int(c.g * 255), int(c.r * 255)


def annotate(rgb: np.ndarray, detections: list[Detection], relations: list[Relation]) -> np.ndarray:
    """Returns a new (H, W, 3) uint8 RGB image; the input is not modified."""
    img = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    scale = max(0.4, min(img.shape[:2]) / 800)
    thick = max(1, int(round(2 * scale)))
    centers = {}
    for det in detections:
        x0, y0, x1, y1 = (int(round(v)) for v in det.box2d)
        colour = _bgr255(det.label)
        if det.mask is not None and det.mask.shape == img.shape[:2]:
            _tint(img, det.mask, (x0, y0, x1, y1), colour)
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, thick)
        text = f"{det.description} {det.score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
        ty = max(th + 2, y0 - 3)
        cv2.rectangle(img, (x0, ty - th - 3), (x0 + tw + 2, ty + 2), colour, -1)
        cv2.putText(img, text, (x0 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0), 1, cv2.LINE_AA)
        centers[det.id] = ((x0 + x1) // 2, (y0 + y1) // 2)
    for rel in relations:
        style = relation_style(rel)
        if style is None or rel.subject_id not in centers or rel.object_id not in centers:
            continue
        colour, width_m = style
        bgr = (int(colour.b * 255), int(colour.g * 255), int(colour.r * 255))
        cv2.line(img, centers[rel.subject_id], centers[rel.object_id], bgr, thick * (3 if width_m > 0.005 else 1),
                 cv2.LINE_AA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _tint(img: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
    """Blend `colour` into the mask's pixels, looking only inside its box (+2 px for rounding): indexing
    the whole 640x480 frame per detection cost ~9 ms a frame on the node's inference thread."""
    h, w = mask.shape
    x0, y0, x1, y1 = max(0, box[0] - 2), max(0, box[1] - 2), min(w, box[2] + 2), min(h, box[3] + 2)
    crop = img[y0:y1, x0:x1]
    blended = cv2.addWeighted(crop, 0.6, np.full_like(crop, colour), 0.4, 0.0)
    np.copyto(crop, blended, where=mask[y0:y1, x0:x1, None])
