"""Horizontal bar charts as PNG with OpenCV only (the venv has no matplotlib)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_COLORS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140)]  # BGR


def bar_chart(path: Path, title: str, rows: list[tuple[str, float]], unit: str = "ms", note: str = "") -> Path | None:
    """One bar per (label, value); values <= 0 or missing are left out. Returns the path, or None if empty."""
    rows = [(label, float(v)) for label, v in rows if isinstance(v, (int, float)) and v > 0]
    if not rows:
        return None
    width, bar_h, gap, left, top = 1000, 34, 14, 330, 70
    height = top + len(rows) * (bar_h + gap) + 50
    img = np.full((height, width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (16, 36), font, 0.75, (0, 0, 0), 2, cv2.LINE_AA)
    vmax = max(v for _, v in rows)
    span = width - left - 140
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar_h + gap)
        length = max(2, int(span * value / vmax))
        cv2.rectangle(img, (left, y), (left + length, y + bar_h), _COLORS[i % len(_COLORS)], -1)
        cv2.putText(img, label[:38], (12, y + bar_h - 10), font, 0.55, (30, 30, 30), 1, cv2.LINE_AA)
        text = f"{value:.1f} {unit}" if value >= 10 else f"{value:.2f} {unit}"
        cv2.putText(img, text, (left + length + 8, y + bar_h - 10), font, 0.55, (30, 30, 30), 1, cv2.LINE_AA)
    if note:
        cv2.putText(img, note[:120], (12, height - 18), font, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")
    return path
