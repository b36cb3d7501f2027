"""SSD box decoding and class-aware non-maximum suppression (numpy)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoxCoderScales:
    """Divisors the TF Object Detection API's faster_rcnn_box_coder applies to raw encodings."""

    y: float = 10.0
    x: float = 10.0
    h: float = 5.0
    w: float = 5.0


def decode_boxes(encodings: np.ndarray, anchors: np.ndarray, scales: BoxCoderScales = BoxCoderScales()) -> np.ndarray:
    """Raw (N, 4) encodings (ty, tx, th, tw) + anchors (yc, xc, h, w) -> (N, 4) boxes
    (x_min, y_min, x_max, y_max), normalised to the network input."""
    enc = np.asarray(encodings, dtype=np.float64)
    anc = np.asarray(anchors, dtype=np.float64)
    yc = enc[:, 0] / scales.y * anc[:, 2] + anc[:, 0]
    xc = enc[:, 1] / scales.x * anc[:, 3] + anc[:, 1]
    h = np.exp(enc[:, 2] / scales.h) * anc[:, 2]
    w = np.exp(enc[:, 3] / scales.w) * anc[:, 3]
    return np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each row of `boxes`."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45, max_detections: int = 100) -> np.ndarray:
    """Greedy NMS; indices of the kept boxes, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while len(order) and len(keep) < max_detections:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float = 0.45,
                    max_detections: int = 100) -> np.ndarray:
    """NMS within each class, merged best first (a mug inside a table's box must survive)."""
    kept: list[int] = []
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        kept.extend(idx[nms(boxes[idx], scores[idx], iou_threshold, max_detections)].tolist())
    kept_arr = np.asarray(kept, dtype=np.int64)
    return kept_arr[np.argsort(-scores[kept_arr], kind="stable")][:max_detections]
