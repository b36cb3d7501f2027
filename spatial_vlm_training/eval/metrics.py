"""Metrics of the benchmark: QA accuracy, description F1, depth, 2D detection mAP and 3D centre error."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from spatial_vlm_ros.inference.types import Detection

from ..data.sample import PairRelation, SceneObject
from .answers import normalize, parse_description


# --- description F1 -------------------------------------------------------------------------------
def truth_statements(objects: Sequence[SceneObject], relations: Sequence[PairRelation]) -> tuple[set, set]:
    """(statements that hold, pairs to ignore). Per unordered pair the strongest relation counts:
    on > touching > near; pairs inside an ambiguous band are ignored."""
    name = {o.id: normalize(o.description) for o in objects}
    holds, ignored = set(), set()
    by_pair = {(r.subject, r.object): r for r in relations}
    for (a, b), r in by_pair.items():
        if a > b or a not in name or b not in name:
            continue
        pair = frozenset((name[a], name[b]))
        back = by_pair.get((b, a))
        if r.on:
            holds.add(("on", name[a], name[b]))
        elif back is not None and back.on:
            holds.add(("on", name[b], name[a]))
        elif r.touching is True:
            holds.add(("touching", *sorted(pair)))
        elif r.touching is None or r.near is None:
            ignored.add(pair)
        elif r.near is True:
            holds.add(("near", *sorted(pair)))
    return holds, ignored


@dataclass
class F1Counter:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, description: str, objects: Sequence[SceneObject], relations: Sequence[PairRelation]) -> None:
        holds, ignored = truth_statements(objects, relations)
        strongest: dict[frozenset, tuple] = {}
        rank = {"on": 0, "touching": 1, "near": 2}
        for s in parse_description(description):
            pair = frozenset((s.subject, s.object))
            if len(pair) < 2 or pair in ignored:
                continue
            if pair not in strongest or rank[s.predicate] < rank[strongest[pair][0]]:
                strongest[pair] = s.key()
        predicted = set(strongest.values())
        self.tp += len(predicted & holds)
        self.fp += len(predicted - holds)
        self.fn += len(holds - predicted)

    @property
    def f1(self) -> Optional[float]:
        if self.tp + self.fp + self.fn == 0:
            return None
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)


# --- depth ----------------------------------------------------------------------------------------
def depth_errors(pred: np.ndarray, gt: np.ndarray) -> Optional[tuple[float, float]]:
    """(AbsRel, delta1 < 1.25) on pixels where both are valid; None when the shapes differ or nothing is valid."""
    if pred is None or pred.shape != gt.shape:
        return None
    ok = np.isfinite(pred) & np.isfinite(gt) & (pred > 0) & (gt > 0)
    if not ok.any():
        return None
    p, g = pred[ok].astype(np.float64), gt[ok].astype(np.float64)
    return float(np.mean(np.abs(p - g) / g)), float(np.mean(np.maximum(p / g, g / p) < 1.25))


# --- detection ------------------------------------------------------------------------------------
def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_detections(dets: Sequence[Detection], gts: Sequence[SceneObject], thr: float = 0.5) -> list[tuple[int, int]]:
    """Greedy by score, class-aware: (detection index, ground-truth index) pairs with IoU >= thr."""
    used, pairs = set(), []
    for di in sorted(range(len(dets)), key=lambda i: -dets[i].score):
        best, best_iou = -1, thr
        for gi, g in enumerate(gts):
            if gi in used or g.category != dets[di].label:
                continue
            v = iou(dets[di].box2d, g.box2d)
            if v >= best_iou:
                best, best_iou = gi, v
        if best >= 0:
            used.add(best)
            pairs.append((di, best))
    return pairs


@dataclass
class DetectionAccumulator:
    """VOC-style AP at IoU 0.5 per class (all-point interpolation), averaged over the classes present."""

    scored: dict[str, list[tuple[float, bool]]] = field(default_factory=lambda: defaultdict(list))
    n_gt: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    center_errors: list[float] = field(default_factory=list)

    def add(self, dets: Sequence[Detection], gts: Sequence[SceneObject]) -> None:
        for g in gts:
            self.n_gt[g.category] += 1
        pairs = dict(match_detections(dets, gts))
        for di, d in enumerate(dets):
            self.scored[d.label].append((float(d.score), di in pairs))
            if di in pairs and d.box3d is not None:
                err = np.linalg.norm(np.asarray(d.box3d.center, float) - np.asarray(gts[pairs[di]].box3d.center, float))
                if math.isfinite(err):
                    self.center_errors.append(float(err))

    def per_class_ap(self) -> dict[str, float]:
        out = {}
        for cls, n in self.n_gt.items():
            ranked = sorted(self.scored.get(cls, []), key=lambda x: -x[0])
            tp = np.cumsum([m for _, m in ranked]) if ranked else np.zeros(0)
            fp = np.cumsum([not m for _, m in ranked]) if ranked else np.zeros(0)
            recall = tp / n if len(tp) else np.zeros(0)
            precision = tp / np.maximum(tp + fp, 1e-9) if len(tp) else np.zeros(0)
            mrec = np.concatenate([[0.0], recall, [1.0]])
            mpre = np.concatenate([[0.0], precision, [0.0]])
            for i in range(len(mpre) - 2, -1, -1):
                mpre[i] = max(mpre[i], mpre[i + 1])
            idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
            out[cls] = float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
        return dict(sorted(out.items()))

    @property
    def map50(self) -> Optional[float]:
        aps = self.per_class_ap()
        return float(np.mean(list(aps.values()))) if aps else None
