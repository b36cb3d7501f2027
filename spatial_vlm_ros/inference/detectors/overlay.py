"""A picture of what the geometry engine saw: masks, 2D boxes, labels and the relations that hold."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..types import SceneResult

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]


def draw_scene(rgb: np.ndarray, scene: SceneResult, title: str = "", depth: Optional[np.ndarray] = None,
               max_relations: int = 8) -> np.ndarray:
    """RGB uint8 image: the frame with masks and boxes, a text panel of the relations that hold and,
    when `depth` is given, the colour-mapped depth beside it."""
    img = rgb.copy()
    for i, det in enumerate(scene.detections):
        colour = _PALETTE[i % len(_PALETTE)]
        if det.mask is not None and det.mask.shape == img.shape[:2]:
            img[det.mask] = (0.5 * img[det.mask] + 0.5 * np.array(colour)).astype(np.uint8)
        x0, y0, x1, y1 = (int(round(v)) for v in det.box2d)
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, 2)
        _label(img, f"{det.description} {det.score:.2f}", (x0 + 2, max(y0 + 14, 14)), colour)
    panels = [img]
    if depth is not None and depth.shape == img.shape[:2]:
        valid = np.isfinite(depth)
        scale = float(np.nanpercentile(depth, 98)) if valid.any() else 1.0
        norm = np.where(valid, np.clip(depth / max(scale, 1e-3), 0, 1) * 255, 0).astype(np.uint8)
        cmap = cv2.cvtColor(cv2.applyColorMap(norm, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
        cmap[~valid] = 0
        panels.append(cmap)
    body = np.hstack(panels)
    # Support and contact first (the interesting facts), then "near"; "far" is the default and not listed.
    order = {"on": 0, "touching": 1, "near": 2}
    held = sorted((r for r in scene.relations if r.holds and r.predicate in order),
                  key=lambda r: (order[r.predicate], -r.confidence))
    lines = [title] if title else []
    lines += [f"{r.subject} {r.predicate} {r.object}  p={r.confidence:.2f}  gap={r.distance_m * 100:.1f} cm"
              for r in held[:max_relations]]
    if not held:
        lines.append("no relation holds")
    panel = np.full((18 * len(lines) + 8, body.shape[1], 3), 255, dtype=np.uint8)
    for k, line in enumerate(lines):
        cv2.putText(panel, line, (6, 18 * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([body, panel])


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def _label(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int]) -> None:
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    x, y = org
    cv2.rectangle(img, (x - 1, y - th - 3), (x + tw + 1, y + 3), (255, 255, 255), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
