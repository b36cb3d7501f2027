"""A `SpatialEngine` from measured geometry: a 2D detector, depth lifting and metric relations.

    engine = GeometryEngine(detector="oid_ssd")             # SSD-MobileNetV2 OIDv4 (resource/models/oid_ssd)
    engine = GeometryEngine(detector="annotations")         # boxes given per frame: engine.set_annotations(dets)
    engine = GeometryEngine(detector="class_agnostic")      # no detector: depth segments become "object"s
    scene = engine.infer(frame); answer = engine.answer(frame, scene, "is the mug on the book?")

Relations come from surface gaps between the lifted point clouds, with confidences from the depth
noise at the objects' range: P(gap below the decision threshold) under Gaussian noise, so a 1 cm gap
seen at 5 m is "touching" with less confidence than the same gap at 1 m.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Union

import cv2
import numpy as np

from .class_agnostic import agnostic_detections
from .geometry import (
    DEFAULT_THRESHOLDS,
    RelationThresholds,
    backproject,
    depth_noise_sigma,
    estimate_up,
    estimate_up_from_planes,
    find_scene_planes,
    fit_dominant_planes,
    gap_probability,
    robust_surface_gap,
    support_geometry,
)
from .lifting import LiftedObject, LiftingConfig, lift_detections
from .questions import ParsedQuestion, QuestionError, parse_question
from .types import PREDICATES, Answer, Detection, Relation, RelationType, RGBDFrame, SceneResult

DETECTORS = ("oid_ssd", "annotations", "class_agnostic")
AnnotationSource = Union[dict, Callable[[RGBDFrame], list[Detection]]]


@dataclass
class PairMeasurement:
    subject: str
    object: str
    gap_m: float
    sigma_m: float
    support_prob: float  # subject rests on object
    vertical_gap_m: float


class GeometryEngine:
    """Detector + lifting + metric relations + template answers (no learned model)."""

    def __init__(self, detector: str = "oid_ssd", thresholds: RelationThresholds = DEFAULT_THRESHOLDS,
                 score_threshold: float = 0.4, model_dir: Optional[str] = None,
                 lifting: LiftingConfig = LiftingConfig(), max_objects: int = 24,
                 annotations: Optional[AnnotationSource] = None) -> None:
        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
        self.detector_name = detector
        self.thresholds = thresholds
        self.score_threshold = score_threshold
        self.lifting = lifting
        self.max_objects = max_objects
        self._annotations = annotations
        self._pending: Optional[list[Detection]] = None
        self._ssd = None
        if detector == "oid_ssd":
            from .detectors.oid_ssd import OidSsdDetector

            self._ssd = OidSsdDetector(model_dir=model_dir, score_threshold=score_threshold)
        self.last_lifted: dict[str, LiftedObject] = {}  # the last frame's lifted objects, by detection id
        self.last_up: Optional[np.ndarray] = None

    # --- detection --------------------------------------------------------------------------------
    def set_annotations(self, detections: list[Detection]) -> None:
        """Boxes for the next `infer` call (detector="annotations")."""
        self._pending = list(detections)

    def detect(self, frame: RGBDFrame) -> list[Detection]:
        if self.detector_name == "oid_ssd":
            dets = self._ssd.detect(frame.rgb)
        elif self.detector_name == "class_agnostic":
            dets = agnostic_detections(frame)
        else:
            dets = self._annotation_boxes(frame)
        dets = sorted(dets, key=lambda d: -d.score)[: self.max_objects]
        return unique_descriptions(dets)

    def _annotation_boxes(self, frame: RGBDFrame) -> list[Detection]:
        if self._pending is not None:
            dets, self._pending = self._pending, None
            return [_copy_detection(d) for d in dets]
        source = self._annotations
        if callable(source):
            return list(source(frame))
        if isinstance(source, dict):
            for key in (frame.frame_id, frame.stamp_ns):
                if key in source:
                    return [_copy_detection(d) for d in source[key]]
        raise ValueError(f"no annotated boxes for frame {frame.frame_id!r} (stamp {frame.stamp_ns}); "
                         "call set_annotations() or pass annotations={frame_id or stamp_ns: detections}")

    # --- SpatialEngine ----------------------------------------------------------------------------
    def infer(self, frame: RGBDFrame, detections: Optional[list[Detection]] = None) -> SceneResult:
        check_frame(frame)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        dets = unique_descriptions(list(detections)) if detections is not None else self.detect(frame)
        timings["detect"] = (time.perf_counter() - t0) * 1e3
        relations: list[Relation] = []
        self.last_lifted = {}
        if frame.depth is not None and dets:
            t1 = time.perf_counter()
            depth = aligned_depth(frame)
            intrinsics = frame.intrinsics.scaled(*frame.size)
            xyz = backproject(depth, intrinsics)
            planes = fit_dominant_planes(xyz)
            up = frame.up if frame.up is not None else estimate_up_from_planes(xyz, planes=planes)
            up = estimate_up(xyz, up)
            self.last_up = up
            scene_planes = find_scene_planes(xyz, up, planes=planes)
            lifted = lift_detections(depth, intrinsics, dets, up, self.lifting, scene_planes)
            kept = []
            for det, obj in zip(dets, lifted, strict=True):
                if obj is None:
                    continue  # no depth on it: reported in 2D only
                det.box3d, det.mask = obj.box3d, obj.mask
                self.last_lifted[det.id] = obj
                kept.append(det)
            timings["lift"] = (time.perf_counter() - t1) * 1e3
            t2 = time.perf_counter()
            relations = self.relations(kept, up)
            timings["relations"] = (time.perf_counter() - t2) * 1e3
        return SceneResult(detections=dets, relations=relations, description=describe(dets, relations),
                           depth=frame.depth, stamp_ns=frame.stamp_ns, frame_id=frame.frame_id, timings_ms=timings)

    def answer(self, frame: RGBDFrame, scene: SceneResult, question: str) -> Answer:
        try:
            q = parse_question(question)
        except QuestionError as exc:
            return Answer(question=str(question)[:300], text="", confidence=0.0, success=False, message=str(exc),
                          source="geometry")
        return answer_from_scene(scene, q)

    # --- relations --------------------------------------------------------------------------------
    def measure(self, a: Detection, b: Detection, up: np.ndarray, gap_m: Optional[float] = None) -> PairMeasurement:
        """Metric facts of the ordered pair; pass `gap_m` when the (symmetric) surface gap is known."""
        pa, pb = self.last_lifted[a.id], self.last_lifted[b.id]
        gap = robust_surface_gap(pa.points, pb.points, max_points=2000) if gap_m is None else gap_m
        sigma = max(pa.depth_sigma_m, pb.depth_sigma_m)
        sup = support_geometry(pa.points, pb.points, up, subject_bottom_m=pa.bottom_height(up))
        # Thin or dark parts of the subject may have no depth; its 2D box still says which columns it spans.
        sup.lateral_overlap = max(sup.lateral_overlap, _column_overlap(a.box2d, b.box2d))
        return PairMeasurement(a.id, b.id, gap, sigma, sup.probability(self.thresholds), sup.vertical_gap_m)

    def relations(self, dets: list[Detection], up: np.ndarray) -> list[Relation]:
        t = self.thresholds
        out: list[Relation] = []
        for i, a in enumerate(dets):
            for b in dets[i + 1:]:
                ab = self.measure(a, b, up)
                ba = self.measure(b, a, up, gap_m=ab.gap_m)
                gap = ab.gap_m
                sigma = ab.sigma_m
                p_near = gap_probability(gap, t.near_decision_m, sigma)
                near = p_near >= 0.5
                out.append(_relation(a, b, RelationType.PROXIMITY, "near" if near else "far", True,
                                     p_near if near else 1 - p_near, gap))
                # Resting on something is touching it, even where the contact itself is hidden from view.
                p_gap = gap_probability(gap, t.contact_decision_m, sigma)
                p_touch = max(p_gap, ab.support_prob, ba.support_prob)
                # When the contact is known from support, its distance is the support's vertical gap.
                stack = ab if ab.support_prob >= ba.support_prob else ba
                distance = gap if p_gap >= stack.support_prob else max(0.0, stack.vertical_gap_m)
                out.append(_relation(a, b, RelationType.CONTACT, "touching", p_touch >= 0.5,
                                     max(p_touch, 1 - p_touch), distance))
                for m, s, o in ((ab, a, b), (ba, b, a)):
                    if m.support_prob > 0.0:
                        out.append(_relation(s, o, RelationType.SUPPORT, "on", m.support_prob >= 0.5,
                                             max(m.support_prob, 1 - m.support_prob), m.vertical_gap_m))
        return out


def _relation(a: Detection, b: Detection, rtype: RelationType, predicate: str, holds: bool, confidence: float,
              distance: float) -> Relation:
    return Relation(subject_id=a.id, object_id=b.id, subject=a.description, object=b.description, type=rtype,
                    predicate=predicate, holds=bool(holds), confidence=float(confidence), distance_m=float(distance),
                    source="geometry")


def _column_overlap(subject_box: tuple, object_box: tuple) -> float:
    """Share of the subject box's image columns that the object box spans too."""
    inter = min(subject_box[2], object_box[2]) - max(subject_box[0], object_box[0])
    return max(0.0, inter) / max(subject_box[2] - subject_box[0], 1e-6)


def _copy_detection(d: Detection) -> Detection:
    return Detection(id=d.id, label=d.label, score=d.score, box2d=tuple(d.box2d), color=d.color, box3d=None,
                     mask=d.mask, description=d.description)


def unique_descriptions(dets: list[Detection]) -> list[Detection]:
    """Make referring expressions unique within the frame ("chair 1", "chair 2") and ids unique."""
    seen_ids: set[str] = set()
    counts: dict[str, int] = {}
    for d in dets:
        counts[d.description] = counts.get(d.description, 0) + 1
    index: dict[str, int] = {}
    for d in dets:
        if counts[d.description] > 1:
            index[d.description] = index.get(d.description, 0) + 1
            d.description = f"{d.description} {index[d.description]}"
        base, k = d.id, 1
        while d.id in seen_ids:
            k += 1
            d.id = f"{base}_{k}"
        seen_ids.add(d.id)
    return dets


def aligned_depth(frame: RGBDFrame) -> np.ndarray:
    """Depth at the colour image's resolution (boxes and masks are in colour pixels). Nearest-neighbour,
    so no depth is invented across object edges."""
    depth = np.asarray(frame.depth, dtype=np.float32)
    w, h = frame.size
    if depth.shape != (h, w):
        depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
    return depth


def check_frame(frame: RGBDFrame) -> None:
    if not isinstance(frame, RGBDFrame):
        raise ValueError(f"expected an RGBDFrame, got {type(frame).__name__}")
    rgb = frame.rgb
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frame.rgb must be an (H, W, 3) uint8 array, got {getattr(rgb, 'shape', None)}")
    if not frame.intrinsics.is_valid():
        raise ValueError(f"invalid camera intrinsics {frame.intrinsics}")
    if frame.depth is not None and (frame.depth.ndim != 2 or frame.depth.shape[0] < 8 or frame.depth.shape[1] < 8):
        raise ValueError(f"frame.depth must be (H, W) metres, got shape {frame.depth.shape}")


def describe(dets: list[Detection], relations: list[Relation]) -> str:
    if not dets:
        return "I see no objects."
    names = [d.description for d in dets]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    facts = [r.text for r in sorted(relations, key=lambda r: -r.confidence)
             if r.holds and r.type in (RelationType.SUPPORT, RelationType.CONTACT)]
    return " ".join([f"I see {listed}."] + facts[:6])


# --- answers ----------------------------------------------------------------------------------------
def answer_from_scene(scene: SceneResult, q: ParsedQuestion) -> Answer:
    """Template answers from a scene's relations (any engine's SceneResult works)."""
    def fail(message: str) -> Answer:
        return Answer(q.text, "", 0.0, success=False, message=message, source="geometry")

    def find_one(phrase: str) -> Optional[Detection]:
        hits = scene.find(phrase)
        return hits[0] if hits else None

    seen = ", ".join(d.description for d in scene.detections) or "nothing"
    for phrase in (q.subject, q.object):
        if phrase is not None and find_one(phrase) is None:
            return fail(f"I see no {phrase} (I see: {seen})")
    if q.kind == "yesno":
        s, o = find_one(q.subject), find_one(q.object)
        if s.id == o.id:
            return fail(f"the question names the {s.description} twice")
        rel = _lookup(scene, s.id, o.id, q.type)
        if rel is None:
            return fail(f"no 3D measurement for the {s.description} and the {o.description} (no depth on one of them)")
        holds = rel.holds if q.type != RelationType.PROXIMITY else (rel.predicate == "near")
        p_yes = rel.confidence if holds else 1 - rel.confidence
        if q.negated:
            holds, p_yes = not holds, 1 - p_yes
        phrase = {"near": "near", "far": "far from", "touching": "touching", "on": "on"}[q.predicate]
        text = (f"Yes, the {s.description} is {phrase} the {o.description}." if holds
                else f"No, the {s.description} is not {phrase} the {o.description}.")
        return Answer(q.text, text, max(p_yes, 1 - p_yes), relations=[rel], source="geometry")
    if q.kind == "which":
        o = find_one(q.object)
        hits = []
        for r in scene.relations:
            if r.type != q.type or not r.holds:
                continue
            if q.type == RelationType.PROXIMITY and r.predicate != q.predicate:
                continue
            if r.object_id == o.id:
                hits.append((r.subject, r))
            elif r.subject_id == o.id and q.type != RelationType.SUPPORT:
                hits.append((r.object, r))
        phrase = {"near": "near", "far": "far from", "touching": "touching", "on": "on"}[q.predicate]
        if not hits:
            return Answer(q.text, f"Nothing I can see is {phrase} the {o.description}.", 0.6, source="geometry")
        names = [f"the {n}" for n, _ in hits]
        verb = "is" if len(names) == 1 else "are"
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        conf = float(np.mean([r.confidence for _, r in hits]))
        return Answer(q.text, f"{listed[0].upper()}{listed[1:]} {verb} {phrase} the {o.description}.", conf,
                      relations=[r for _, r in hits], source="geometry")
    if q.kind == "support_of":
        s = find_one(q.subject)
        ons = sorted((r for r in scene.relations if r.type == RelationType.SUPPORT and r.subject_id == s.id and r.holds),
                     key=lambda r: -r.confidence)
        if not ons:
            return Answer(q.text, f"The {s.description} is not resting on any object I can see.", 0.5, source="geometry")
        return Answer(q.text, f"The {s.description} is on the {ons[0].object}.", ons[0].confidence, relations=ons[:1],
                      source="geometry")
    # closest / farthest
    o = find_one(q.object)
    pairs = [(r.subject if r.object_id == o.id else r.object, r) for r in scene.relations
             if r.type == RelationType.PROXIMITY and o.id in (r.subject_id, r.object_id) and math.isfinite(r.distance_m)]
    if not pairs:
        return fail(f"nothing else with a 3D position to compare with the {o.description}")
    pick = min if q.kind == "closest" else max
    name, rel = pick(pairs, key=lambda p: p[1].distance_m)
    word = "closest to" if q.kind == "closest" else "farthest from"
    return Answer(q.text, f"The {name} is {word} the {o.description} ({rel.distance_m * 100:.0f} cm apart).",
                  min(1.0, 0.5 + 0.5 * _margin(pairs, rel, depth_noise_sigma(2.0))), relations=[rel], source="geometry")


def _lookup(scene: SceneResult, a: str, b: str, rtype: RelationType) -> Optional[Relation]:
    for r in scene.relations:
        if r.type != rtype:
            continue
        if rtype == RelationType.SUPPORT:
            if (r.subject_id, r.object_id) == (a, b):
                return r
        elif {r.subject_id, r.object_id} == {a, b}:
            return r
    if rtype == RelationType.SUPPORT and _lookup(scene, a, b, RelationType.PROXIMITY) is not None:
        # Measured, but the subject is not above the object: a confident "not on".
        return Relation(a, b, _desc(scene, a), _desc(scene, b), rtype, PREDICATES[rtype], False, 0.95, source="geometry")
    return None


def _desc(scene: SceneResult, det_id: str) -> str:
    return next((d.description for d in scene.detections if d.id == det_id), det_id)


def _margin(pairs: list, chosen: Relation, sigma: float) -> float:
    """How clearly the chosen distance beats the runner-up, in units of depth noise (0..1)."""
    others = sorted(abs(r.distance_m - chosen.distance_m) for _, r in pairs if r is not chosen)
    return 1.0 if not others else float(min(1.0, others[0] / (4 * sigma)))
