"""CenterNet outputs -> boxes: local maxima of the heatmap, their size/offset, class-agnostic NMS."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class DecodedBox:
    box: np.ndarray  # (4,) x0, y0, x1, y1 as fractions of the image
    category: int
    score: float
    category_scores: np.ndarray  # (C,) normalised over categories at the peak
    center_depth_m: float


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def decode_centernet(heatmap_logits: torch.Tensor, box_size: torch.Tensor, box_offset: torch.Tensor,
                     center_log_depth: torch.Tensor, score_threshold: float, max_objects: int,
                     nms_iou: float = 0.6) -> list[DecodedBox]:
    """Tensors of ONE image: (C, h, w), (2, h, w), (2, h, w), (1, h, w)."""
    heat = torch.sigmoid(heatmap_logits.float())
    c, h, w = heat.shape
    peaks = heat * (F.max_pool2d(heat[None], 3, stride=1, padding=1)[0] == heat)
    best, cat = peaks.max(0)
    scores, flat = best.flatten().topk(min(4 * max_objects, h * w))
    out: list[DecodedBox] = []
    for s, f in zip(scores.tolist(), flat.tolist(), strict=False):
        if s < score_threshold:
            break
        y, x = divmod(f, w)
        cx = (x + float(box_offset[0, y, x])) / w
        cy = (y + float(box_offset[1, y, x])) / h
        bw, bh = float(box_size[0, y, x]), float(box_size[1, y, x])
        box = np.clip(np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]), 0.0, 1.0)
        if box[2] - box[0] <= 1e-3 or box[3] - box[1] <= 1e-3:
            continue
        if any(iou(box, o.box) > nms_iou for o in out):
            continue
        cs = heat[:, y, x].numpy()
        out.append(DecodedBox(box, int(cat[y, x]), float(s), cs / max(cs.sum(), 1e-6),
                              float(np.exp(float(center_log_depth[0, y, x])))))
        if len(out) >= max_objects:
            break
    return out
