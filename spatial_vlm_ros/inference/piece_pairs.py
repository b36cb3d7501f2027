"""Is a detection a piece of an object a better-scored detection already stands for?

Class-agnostic proposals split objects along surfaces (a box's top face, a laptop's keyboard, a table's
legs), and the region head then names a piece as an object of its own: a green box becomes a "green box"
and a "green book", and the book is, trivially, "closest" to the box. On val, 18 % of the student's kept
detections were such pieces (results/val_trials.json, seventh_session). region_selection merges pieces
it names alike and whose colour agrees; pieces named differently, and achromatic ones (white, gray and
black have one chromaticity), stay apart.

This module describes each touching pair of kept detections by what tells a piece from a neighbour
(colour, how each was named, shared border, depth step across it, vertical layout) for the model's piece
head, and groups the pairs that head judges to be one object; the engine keeps each group's best-scored
detection. Training and inference use the same features (spatial_vlm_training.distill.piece_data).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from spatial_vlm_ros.model.configuration_spatial_vlm import PIECE_PAIR_DIM

from .detection_decode import DecodedBox
from .mask_morphology import dilate, erode
from .region_selection import chromaticity, touch_zone

__all__ = ["PIECE_PAIR_DIM", "Piece", "pair_features", "pair_table", "piece_groups", "touching_pairs"]
_EIGHT = np.ones((3, 3), bool)


@dataclass
class Piece:
    """One kept detection as the piece head sees it."""

    mask: np.ndarray  # (h, w) bool at the working resolution
    box: DecodedBox
    color: np.ndarray  # object_features colour vector
    geometry: np.ndarray  # object_features geometry vector

    @cached_property
    def grown(self) -> np.ndarray:
        """The mask and its 8-neighbours (computed once, read by every pair the piece is in)."""
        return dilate(self.mask, _EIGHT)

    @cached_property
    def outline(self) -> np.ndarray:
        return self.mask & ~erode(self.mask, _EIGHT)


def touching_pairs(masks: list[np.ndarray]) -> list[tuple[int, int]]:
    """(i, j), i < j, of masks that touch (region_selection.touching, each mask grown once)."""
    zones = [touch_zone(m) for m in masks]
    return [(i, j) for i in range(len(masks)) for j in range(i + 1, len(masks)) if (zones[i] & masks[j]).any()]


def pair_table(masks: list[np.ndarray], boxes: list[DecodedBox], objects: list, depth_small: np.ndarray
               ) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The touching pairs of kept detections (masks, boxes and object_features.ObjectPoints, one each) and
    their (len(pairs), PIECE_PAIR_DIM) float32 features: what the engine asks the piece head about and
    what it is trained on (spatial_vlm_training.distill.piece_data)."""
    pieces = [Piece(m, b, o.color, o.geometry) for m, b, o in zip(masks, boxes, objects, strict=True)]
    pairs = touching_pairs(masks)
    feats = [pair_features(pieces[i], pieces[j], depth_small) for i, j in pairs]
    return pairs, np.asarray(feats, np.float32).reshape(-1, PIECE_PAIR_DIM)


def pair_features(a: Piece, b: Piece, depth_small: np.ndarray) -> np.ndarray:
    """(PIECE_PAIR_DIM,) float32 for two touching pieces, the larger first (order-free for the caller)."""
    na, nb = np.count_nonzero(a.mask), np.count_nonzero(b.mask)
    if na < nb:
        a, b, na, nb = b, a, nb, na
    ca, cb = a.box.category, b.box.category
    pa, pb = np.asarray(a.box.category_scores, float), np.asarray(b.box.category_scores, float)
    # The border: b's pixels next to a, and a's pixels next to b.
    b_edge = b.mask & a.grown
    a_edge = a.mask & b.grown
    b_outline = b.outline
    za, zb = depth_small[a_edge], depth_small[b_edge]
    za, zb = za[np.isfinite(za)], zb[np.isfinite(zb)]
    if len(za) and len(zb):
        step = abs(float(np.median(za)) - float(np.median(zb)))
        rel_step = step / max(float(np.median(za)), 0.1)
    else:
        step, rel_step = 0.5, 0.5
    ga, gb = a.geometry, b.geometry
    return np.array([
        np.abs(chromaticity(a.color) - chromaticity(b.color)).sum(),
        np.abs(a.color[:3] - b.color[:3]).sum(),
        float(np.linalg.norm(a.color[3:5] - b.color[3:5])),
        abs(float(a.color[5] - b.color[5])),
        abs(float(a.color[6] - b.color[6])),
        pb[ca], pa[cb], a.box.score, b.box.score, float(ca == cb),
        nb / (na + nb), math.log1p(nb) / 10,
        b_edge.sum() / max(int(b_outline.sum()), 1),
        min(step, 0.5), min(rel_step, 0.5),
        float(np.clip(gb[6] - ga[7], -1, 1)),  # b's bottom above a's top: ~0 when b stands on a
        float(np.clip(ga[6] - gb[6], -1, 1)),  # bottoms level: pieces of one thing standing on one surface
        float(np.clip(gb[5], 0, 2)), float(np.clip(ga[5], 0, 2)),
        float(np.clip(np.linalg.norm(ga[:2] - gb[:2]), 0, 2)),
    ], np.float32)


def piece_groups(n: int, pairs: list[tuple[int, int]], same: np.ndarray, threshold: float) -> list[list[int]]:
    """Connected components of the pairs judged one object (P >= threshold) -> groups of indices, each in
    index order, ordered by their first member (so the best-scored piece of a group leads it)."""
    linked = np.array([pair for pair, p in zip(pairs, same, strict=True) if p >= threshold], np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(linked)), (linked[:, 0], linked[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(int(label[i]), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])
