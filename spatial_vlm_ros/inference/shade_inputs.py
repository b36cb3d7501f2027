"""Inputs of the shade head (spatial_vlm_ros.model.heads.shade_head) and how its answer is applied.

The head re-decides only among the shades (white, gray, black by default) and only for objects whose
likeliest colour is one of them: a red mug stays red, and the probability the LM gave the shades
together is kept, only shared out again.
"""
from __future__ import annotations

import numpy as np

BRIGHTNESS_PERCENTILES = (10, 25, 50, 75, 90, 97)  # of max(R, G, B) over the object's pixels
MIN_PIXELS = 4
LOG_FLOOR = 1e-4  # log-probabilities and log-brightness are clipped here, so a zero stays finite


def shade_indices(colors: list[str], shade_colors: list[str]) -> np.ndarray:
    return np.asarray([colors.index(c) for c in shade_colors], np.int64)


def shade_features(color_probs: np.ndarray, rgb_small: np.ndarray, masks: list[np.ndarray], shades: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """color_probs (N, colours) of N objects, their masks over rgb_small (h, w, 3) uint8 -> (features
    (M, len(shades) + len(BRIGHTNESS_PERCENTILES)) float32, rows (M,) of the objects they describe): the
    objects whose likeliest colour is a shade and that have at least MIN_PIXELS pixels."""
    rows, feats = [], []
    for i, (probs, mask) in enumerate(zip(color_probs, masks, strict=True)):
        if int(np.argmax(probs)) not in shades:
            continue
        value = rgb_small[mask].max(-1).astype(np.float32) / 255.0
        if len(value) < MIN_PIXELS:
            continue
        bright = np.percentile(value, BRIGHTNESS_PERCENTILES)
        feats.append(np.log(np.clip(np.concatenate([probs[shades], bright]), LOG_FLOOR, None)))
        rows.append(i)
    dim = len(shades) + len(BRIGHTNESS_PERCENTILES)
    return np.asarray(feats, np.float32).reshape(-1, dim), np.asarray(rows, np.int64)


def reshade(color_probs: np.ndarray, rows: np.ndarray, logits: np.ndarray, shades: np.ndarray) -> np.ndarray:
    """A copy of color_probs where each row in `rows` shares its total shade probability out by the
    softmax of its `logits` (M, len(shades))."""
    out = np.array(color_probs, np.float64, copy=True)
    if len(rows):
        z = logits - logits.max(1, keepdims=True)
        share = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        total = out[rows][:, shades].sum(1, keepdims=True)
        out[np.ix_(rows, shades)] = total * share
    return out.astype(color_probs.dtype)
