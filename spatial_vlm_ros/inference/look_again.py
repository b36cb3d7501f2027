"""A second look for an object a question names but the frame's detections lack.

`infer` keeps only the regions the region head is sure of (score >= the threshold). A question such as
"is the green can touching the box?" says what to look for, so when one of its object phrases resolves
to no detection, the regions `infer` scored but did not keep are searched for that category: the most
likely one, if at least LOOK_AGAIN_MIN_SCORE likely and not a duplicate of a kept object, joins the frame
for this answer (the engine rebuilds the object and pair tokens with it)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .detection_decode import DecodedBox
from .object_features import ObjectPoints
from .region_proposals import Proposal, box_iou

#: A region this likely of the named category may stand in for it (the kept ones need
#: DEFAULT_SCORE_THRESHOLD). Chosen on val (results/val_trials.json, fifth_session: 0.01 / 0.05 / 0.15 /
#: 0.3), when it was also mentions.MIN_CATEGORY_SCORE; that floor has since gone down to 0.01 on its own.
LOOK_AGAIN_MIN_SCORE = 0.05
DUPLICATE_IOU = 0.5  # box IoU with a kept object above which a region is that object again


@dataclass
class FrameRegions:
    """What `infer` scored, for a second look: every proposal with its region-head probabilities and
    points, the kept objects (boxes, masks, points) and the encoder output they were tokenised with."""

    encoded: object  # the encoder output `object_tokens` reads
    views: tuple[np.ndarray, np.ndarray]
    proposals: list[Proposal]
    probs: np.ndarray  # (N, 1 + C), 0 = background
    objects: list[ObjectPoints]  # one per proposal
    kept_boxes: list[DecodedBox]
    kept_masks: list[np.ndarray]
    kept_objects: list[ObjectPoints]


def best_unkept_region(regions: FrameRegions, category: int, exclude: Optional[list[np.ndarray]] = None
                       ) -> Optional[int]:
    """Index of the proposal most likely of `category` that overlaps no kept (or `exclude`d) box, or None."""
    p = regions.probs[:, 1 + category]
    taken = [b.box for b in regions.kept_boxes] + list(exclude or [])
    for k in np.argsort(-p):
        if p[k] < LOOK_AGAIN_MIN_SCORE:
            return None
        box = regions.proposals[k].box
        if taken and box_iou(box[None], np.stack(taken)).max() > DUPLICATE_IOU:
            continue
        return int(k)
    return None


def as_detection(regions: FrameRegions, k: int, category: int) -> DecodedBox:
    probs = regions.probs[k]
    pts = regions.objects[k].points
    depth = float(np.median(pts[:, 2])) if len(pts) else float("nan")
    return DecodedBox(regions.proposals[k].box, category, float(probs[1 + category]),
                      probs[1:] / max(float(probs[1:].sum()), 1e-9), depth)
