"""`--model geometry`: relations measured on the SENSOR depth under ground-truth instance masks.

Not an oracle: it sees what a perfect segmenter plus the depth camera would see (visible surfaces,
sensor noise, holes), then thresholds the gaps at the middle of each ambiguous band. It is the
bar a learned model must clear on this data ("keep the geometry honest").
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from spatial_vlm_ros.inference.geometry import DEFAULT_THRESHOLDS, backproject, surface_gap, valid_points
from spatial_vlm_ros.inference.types import (
    PREDICATES,
    Answer,
    Detection,
    Relation,
    RelationType,
    RGBDFrame,
    SceneResult,
)

from ..data.sample import SceneSample, iter_samples
from .question_parser import QuestionParseError, parse_question

FLOOR_BAND_M = 0.03  # an object whose bottom is this close to the lowest visible surface stands on the floor
SUPPORT_GAP_M = 0.05  # visible surfaces of a supported object stay a few cm from its (hidden) contact


def rests_on_locally(points_subject: np.ndarray, points_object: np.ndarray, up: np.ndarray,
                     tol_m: float = 0.03) -> bool:
    """The subject's bottom sits on the object's surface right under it: only the object's points
    within the subject's horizontal footprint count, so a shelf board or desk top is compared with
    the object on it, not with the furniture's highest point."""
    if len(points_subject) < 10 or len(points_object) < 10:
        return False
    ha, hb = points_subject @ up, points_object @ up
    flat_a = points_subject - ha[:, None] * up
    flat_b = points_object - hb[:, None] * up
    center = np.median(flat_a, axis=0)
    radius = float(np.percentile(np.linalg.norm(flat_a - center, axis=1), 95)) + 0.02
    bottom_a = float(np.percentile(ha, 2))
    under = (np.linalg.norm(flat_b - center, axis=1) <= radius) & (hb <= bottom_a + tol_m)
    if under.sum() < 10:
        return False
    top_b = float(np.percentile(hb[under], 98))
    return bool(abs(bottom_a - top_b) <= tol_m and np.median(ha) > np.median(hb[under]))


class GeometryBaselineEngine:
    params = 0

    def __init__(self, split_dir: Path | str):
        self.samples: dict[str, SceneSample] = {s.id: s for s in iter_samples(split_dir)}
        self._cache: dict[str, dict] = {}

    def infer(self, frame: RGBDFrame) -> SceneResult:
        start = time.perf_counter()
        s = self.samples[frame.frame_id]
        _, instance = s.load_gt()
        depth = frame.depth
        points = backproject(depth, frame.intrinsics)
        kernel = np.ones((3, 3), np.uint8)
        d0 = np.nan_to_num(depth, nan=0.0).astype(np.float32)
        spread = cv2.dilate(d0, kernel) - cv2.erode(np.where(np.isnan(depth), 1e3, depth).astype(np.float32), kernel)
        smooth = spread < 0.04 * np.maximum(d0, 0.5)
        up = np.asarray(frame.up if frame.up is not None else (0.0, -1.0, 0.0), dtype=np.float64)
        pts = {o.id: valid_points(points[(instance == o.instance) & smooth]) for o in s.objects}
        dets = [Detection(o.id, o.category, 1.0, o.box2d, o.color, o.box3d, instance == o.instance, o.description)
                for o in s.objects]
        floor_h = float(np.nanpercentile(valid_points(points) @ up, 1)) if np.isfinite(depth).any() else -np.inf
        t = DEFAULT_THRESHOLDS
        gaps, on, relations = {}, {}, []
        desc = {o.id: o.description for o in s.objects}
        for a in desc:
            for b in desc:
                if a == b:
                    continue
                key = (min(a, b), max(a, b))
                if key not in gaps:
                    gaps[key] = surface_gap(pts[a], pts[b])
                g = gaps[key]
                touching = bool(np.isfinite(g) and g <= t.contact_decision_m)
                on[a, b] = bool(np.isfinite(g) and g <= SUPPORT_GAP_M) and rests_on_locally(pts[a], pts[b], up)
                near = bool(np.isfinite(g) and g <= t.near_decision_m)
                for rtype, holds in ((RelationType.PROXIMITY, near), (RelationType.CONTACT, touching),
                                     (RelationType.SUPPORT, on[a, b])):
                    predicate = PREDICATES[rtype] if (holds or rtype != RelationType.PROXIMITY) else "far"
                    relations.append(Relation(a, b, desc[a], desc[b], rtype, predicate, holds, 0.9, g, "geometry"))
        sentences, stated = [], set()
        for (a, b), v in on.items():
            if v and not on.get((b, a), False):
                sentences.append(f"The {desc[a]} is on the {desc[b]}.")
                stated.add(frozenset((a, b)))
        for predicate, limit in (("touching", t.contact_decision_m), ("near", t.near_decision_m)):
            for (a, b), g in gaps.items():
                if frozenset((a, b)) not in stated and np.isfinite(g) and g <= limit:
                    sentences.append(f"The {desc[a]} is {predicate} the {desc[b]}.")
                    stated.add(frozenset((a, b)))
        bottoms = {o: (float(np.percentile(p @ up, 2)) if len(p) else np.inf) for o, p in pts.items()}
        self._cache[frame.frame_id] = {"gaps": gaps, "on": on, "bottoms": bottoms, "floor_h": floor_h}
        return SceneResult(dets, relations, " ".join(sentences), depth=depth, frame_id=frame.frame_id,
                           timings_ms={"infer": 1000 * (time.perf_counter() - start)})

    def answer(self, frame: RGBDFrame, scene: SceneResult, question: str) -> Answer:
        c = self._cache[frame.frame_id]
        by_desc = {d.description: d for d in scene.detections}
        try:
            p = parse_question(question, list(by_desc))
        except QuestionParseError as exc:
            return Answer(question, "I don't know.", 0.0, success=False, message=str(exc), source="geometry")
        a = by_desc[p.subject].id
        t = DEFAULT_THRESHOLDS

        def gap(x: str, y: str) -> float:
            g = c["gaps"][(min(x, y), max(x, y))]
            return g if np.isfinite(g) else np.inf

        if p.kind == "choice":
            others = [d.id for d in scene.detections if d.id != a]
            if p.type == "proximity":
                best = min(others, key=lambda o: gap(a, o), default=None)
            else:
                carriers = [o for o in others if c["on"].get((a, o))]
                best = min(carriers, key=lambda o: gap(a, o), default=None)
                if best is None or c["bottoms"][a] - c["floor_h"] <= FLOOR_BAND_M:
                    return Answer(question, "the floor", 0.7, source="geometry")
            text = f"the {next(d.description for d in scene.detections if d.id == best)}" if best else "nothing"
            return Answer(question, text, 0.7, source="geometry")
        b = by_desc[p.object].id
        g = gap(a, b)
        if p.type == "proximity":
            holds = g <= t.near_decision_m
        elif p.type == "contact":
            holds = g <= t.contact_decision_m
        else:
            holds = bool(c["on"].get((a, b)))
        return Answer(question, "yes" if holds != p.negated else "no", 0.8, source="geometry")
