"""Basic colour names for referring expressions ("the red mug") from an object's pixels."""
from __future__ import annotations

import cv2
import numpy as np

# Hue ranges on OpenCV's 0..180 scale.
_HUES = [(0, 8, "red"), (8, 22, "orange"), (22, 35, "yellow"), (35, 85, "green"), (85, 130, "blue"),
         (130, 160, "purple"), (160, 181, "red")]


def dominant_colour_name(rgb_crop: np.ndarray, min_saturation: int = 70) -> str:
    """Most common colour name in a crop; "" when the crop is empty. The central half is used so a
    box's background margin does not vote."""
    if rgb_crop.size == 0 or min(rgb_crop.shape[:2]) < 2:
        return ""
    h, w = rgb_crop.shape[:2]
    centre = rgb_crop[h // 4: h - h // 4 or h, w // 4: w - w // 4 or w]
    hsv = cv2.cvtColor(np.ascontiguousarray(centre), cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int32)
    names = np.empty(len(hsv), dtype=object)
    v, s, hue = hsv[:, 2], hsv[:, 1], hsv[:, 0]
    grey = s < min_saturation
    names[grey & (v < 60)] = "black"
    names[grey & (v >= 60) & (v < 190)] = "gray"
    names[grey & (v >= 190)] = "white"
    names[~grey & (v < 40)] = "black"
    chroma = ~grey & (v >= 40)
    for lo, hi, name in _HUES:
        names[chroma & (hue >= lo) & (hue < hi)] = name
    values, counts = np.unique(names.astype(str), return_counts=True)
    return str(values[np.argmax(counts)])
