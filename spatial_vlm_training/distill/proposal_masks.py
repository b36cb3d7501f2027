"""Object masks as the engine would see them: the class-agnostic proposals that cover each ground-truth
object, instead of its exact mask.

The language path learns its object and pair features from masks. Trained on exact masks only, it
met ragged proposal masks at inference and under-called touching pairs (76 % recall on val). Here
each object gets the union of the proposals lying mostly on it, minus pixels another object's union
also claims (the engine's "own pixels" rule), so training sees the same kind of error."""
from __future__ import annotations

import numpy as np

from spatial_vlm_ros.inference.region_proposals import region_proposals

ON_OBJECT = 0.6  # share of a proposal's pixels that must lie on the object
MIN_IOU = 0.3  # below this the engine would miss the object; its exact mask is kept instead


def proposal_masks(rgb_small: np.ndarray, points_small: np.ndarray, intrinsics_small, up,
                   gt_masks: list[np.ndarray]) -> list[np.ndarray | None]:
    """The frame's working views (object_features.working_views) and their intrinsics, gt_masks (bool, at
    the working size) -> per object its proposal mask, or None where no proposals cover it well enough."""
    if not gt_masks:
        return []
    proposals = region_proposals(rgb_small, points_small, intrinsics_small, up)
    gt = np.stack(gt_masks)  # (N, h, w)
    unions = np.zeros_like(gt)
    for p in proposals:
        area = p.mask.sum()
        if area == 0:
            continue
        on = (gt & p.mask).reshape(len(gt), -1).sum(1) / area
        best = int(on.argmax())
        if on[best] >= ON_OBJECT:
            unions[best] |= p.mask
    coverage = unions.sum(0)
    out: list[np.ndarray | None] = []
    for g, u in zip(gt, unions, strict=True):
        own = u & (coverage == 1)
        mask = own if own.sum() >= 4 else u
        inter, union = (mask & g).sum(), (mask | g).sum()
        out.append(mask if union and inter / union >= MIN_IOU and mask.sum() >= 4 else None)
    return out
