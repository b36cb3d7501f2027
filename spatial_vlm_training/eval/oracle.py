"""The geometric oracle: a SpatialEngine that answers from a split's ground truth.

It proves the harness: detections come from the instance masks and 3D boxes, depth is the exact
depth, relations come from the measured surface gaps, and answers come from parsing the question
text against those. Every metric of the harness should read (close to) perfect for it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from spatial_vlm_ros.inference.types import (
    PREDICATES,
    Answer,
    Detection,
    Relation,
    RelationType,
    RGBDFrame,
    SceneResult,
)

from ..data.qa import build_description
from ..data.sample import FLOOR, SceneSample, iter_samples
from .question_parser import QuestionParseError, parse_question


class OracleEngine:
    """Looks frames up by `frame.frame_id` (= sample id) in the split it was built on."""

    params = 0

    def __init__(self, split_dir: Path | str):
        self.samples: dict[str, SceneSample] = {s.id: s for s in iter_samples(split_dir)}

    def _sample(self, frame: RGBDFrame) -> SceneSample:
        if frame.frame_id not in self.samples:
            raise KeyError(f"oracle: frame {frame.frame_id!r} is not in its split")
        return self.samples[frame.frame_id]

    def infer(self, frame: RGBDFrame) -> SceneResult:
        start = time.perf_counter()
        s = self._sample(frame)
        depth, instance = s.load_gt()
        dets = [Detection(o.id, o.category, 1.0, o.box2d, o.color, o.box3d, instance == o.instance, o.description)
                for o in s.objects]
        desc = {o.id: o.description for o in s.objects}
        relations = []
        for r in s.relations:
            for rtype, holds in ((RelationType.PROXIMITY, r.near), (RelationType.CONTACT, r.touching),
                                 (RelationType.SUPPORT, r.on)):
                if holds is None:
                    continue
                predicate = PREDICATES[rtype] if (holds or rtype != RelationType.PROXIMITY) else "far"
                relations.append(Relation(r.subject, r.object, desc[r.subject], desc[r.object], rtype, predicate,
                                          bool(holds), 1.0, r.gap_m, "geometry"))
        return SceneResult(dets, relations, build_description(s.objects, s.relations), depth=depth,
                           depth_confidence=np.ones_like(depth), frame_id=frame.frame_id,
                           timings_ms={"infer": 1000 * (time.perf_counter() - start)})

    def answer(self, frame: RGBDFrame, scene: SceneResult, question: str) -> Answer:
        s = self._sample(frame)
        by_desc = {d.description: d for d in scene.detections}
        try:
            p = parse_question(question, list(by_desc))
        except QuestionParseError as exc:
            return Answer(question, "I don't know.", 0.0, success=False, message=str(exc), source="geometry")
        a = by_desc[p.subject].id
        if p.kind == "choice":
            if p.type == "proximity":
                ranked = sorted((r.gap_m, r.object) for r in s.relations if r.subject == a)
                text = f"the {s.object_by_id(ranked[0][1]).description}" if ranked else "nothing"
            else:
                support = s.object_by_id(a).resting_on
                text = "the floor" if support == FLOOR else f"the {s.object_by_id(support).description}"
            return Answer(question, text, 1.0, source="geometry")
        r = s.relation(a, by_desc[p.object].id)
        holds = {"proximity": r.near, "contact": r.touching, "support": r.on}[p.type]
        if holds is None:
            return Answer(question, "It is unclear.", 0.5, source="geometry")
        yes = bool(holds) != p.negated
        return Answer(question, "yes" if yes else "no", 1.0, source="geometry")
