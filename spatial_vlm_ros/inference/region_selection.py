"""From scored region proposals to objects: greedy suppression by score, then merging of the pieces
one object was split into (a table top and its legs, a mug body and its handle)."""
from __future__ import annotations

import numpy as np

from .mask_morphology import dilate
from .object_features import ObjectPoints
from .region_proposals import Proposal, box_iou

SUPPRESS_IOU = 0.5  # box IoU with a kept region of any category
# Chromaticity distance (L1 of mean RGB / its sum) under which two touching pieces of a category are one
# object: shading (the inside of a bowl, a table's legs in shadow) changes brightness, not chromaticity.
MERGE_CHROMA_L1 = 0.08
TOUCH_PIXELS = 2  # masks this close at the working resolution touch


def select_regions(proposals: list[Proposal], probs: np.ndarray, objects: list[ObjectPoints], threshold: float,
                   max_objects: int) -> list[tuple[list[int], int, float]]:
    """probs (N, 1 + C) region-head probabilities (0 = background) -> [(proposal indices, category, score)],
    best first. A group of several proposals is one object seen in pieces."""
    category = probs[:, 1:].argmax(1)
    score = probs[np.arange(len(probs)), 1 + category]
    kept: list[int] = []
    for i in np.argsort(-score):
        if score[i] < threshold:
            break
        if kept and box_iou(proposals[i].box[None], np.stack([proposals[k].box for k in kept])).max() > SUPPRESS_IOU:
            continue
        kept.append(int(i))
    groups: list[list[int]] = []
    for i in kept:
        for g in groups:
            j = g[0]
            if category[j] == category[i] and touching(proposals[i].mask, proposals[j].mask) and \
                    np.abs(chromaticity(objects[i].color) - chromaticity(objects[j].color)).sum() <= MERGE_CHROMA_L1:
                g.append(i)
                break
        else:
            groups.append([i])
    return [(g, int(category[g[0]]), float(score[g[0]])) for g in groups[:max_objects]]


def chromaticity(color: np.ndarray) -> np.ndarray:
    """Mean RGB over its sum, from an object_features colour vector."""
    rgb = color[:3] + 0.01
    return rgb / rgb.sum()


def touch_zone(mask: np.ndarray) -> np.ndarray:
    """The pixels a mask touches: itself grown by TOUCH_PIXELS."""
    return dilate(mask, iterations=TOUCH_PIXELS)


def touching(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((touch_zone(a) & b).any())
