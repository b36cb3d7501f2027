"""The logic of the ~/query service, without ROS: question -> answer from the latest scene state.

Fast path: the relations of the latest processed frame (already cross-checked with metric depth).
When the scene holds no such relation, or the question is free text the small parser does not cover
but names objects in the scene, the engine's language head answers on that frame (`ask_model`).
Every failure becomes success=False with a one-line message; nothing here raises on user input.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

from ..inference.types import PREDICATES, Answer, Detection, Relation, RelationType, RGBDFrame, SceneResult

MAX_QUESTION_CHARS = 300
ANY_TYPE = 255
EXAMPLE = "ask e.g. 'is the mug touching the book?' or 'what is near the laptop?'"

# phrase -> (type, positive?) ; "far from" asks the negation of "near".
_PREDICATE_PHRASES: list[tuple[str, RelationType, bool]] = [
    ("in contact with", RelationType.CONTACT, True), ("touching", RelationType.CONTACT, True),
    ("on top of", RelationType.SUPPORT, True), ("resting on", RelationType.SUPPORT, True),
    ("sitting on", RelationType.SUPPORT, True), ("standing on", RelationType.SUPPORT, True),
    ("sitting on top of", RelationType.SUPPORT, True), ("placed on", RelationType.SUPPORT, True),
    ("supported by", RelationType.SUPPORT, True),
    ("lying on", RelationType.SUPPORT, True), ("on", RelationType.SUPPORT, True),
    ("close to", RelationType.PROXIMITY, True), ("next to", RelationType.PROXIMITY, True),
    ("near", RelationType.PROXIMITY, True), ("far from", RelationType.PROXIMITY, False),
    ("far away from", RelationType.PROXIMITY, False),
]
_PRED_RE = "|".join(sorted((re.escape(p) for p, _, _ in _PREDICATE_PHRASES), key=len, reverse=True))
_YES_NO = re.compile(rf"^(?:is|are|does)\s+(?:the\s+)?(?P<s>.+?)\s+(?:touch\b|(?P<p>{_PRED_RE}))\s+(?:the\s+)?(?P<o>.+?)$")
_WHAT_REL_OBJ = re.compile(rf"^(?:what|which)(?:\s+objects?|\s+things?)?(?:\s+is|\s+are|'s)?\s+(?P<p>{_PRED_RE})\s+(?:the\s+)?(?P<o>.+?)$")
_WHAT_SUBJ_REL = re.compile(rf"^(?:what|which)(?:\s+objects?)?(?:\s+is|\s+are|'s)\s+(?:the\s+)?(?P<s>.+?)\s+(?P<p>{_PRED_RE})$")
_PAIR = re.compile(r"^are\s+(?:the\s+)?(?P<s>.+?)\s+and\s+(?:the\s+)?(?P<o>.+?)\s+(?P<p>near each other|close to each other|"
                   r"next to each other|in contact|touching(?: each other)?|far apart|far from each other)$")
_PAIR_PHRASES = {"near each other": ("near", True), "close to each other": ("near", True),
                 "next to each other": ("near", True), "in contact": ("touching", True), "touching": ("touching", True),
                 "touching each other": ("touching", True), "far apart": ("near", False),
                 "far from each other": ("near", False)}
_CLOSEST = re.compile(r"^(?:which|what)(?:\s+object)?(?:\s+is)?\s+(?:the\s+)?(?:closest|nearest)(?:\s+object)?\s+to\s+"
                      r"(?:the\s+)?(?P<o>.+?)$")
_SUPPORTS = re.compile(r"^what\s+supports\s+(?:the\s+)?(?P<s>.+?)$")
_HOW_FAR = re.compile(r"^how\s+far\s+(?:apart\s+)?(?:is|are)\s+(?:the\s+)?(?P<s>.+?)\s+(?:from|and)\s+(?:the\s+)?(?P<o>.+?)(?:\s+apart)?$")


@dataclass
class SceneState:
    """What the service answers from: the latest processed frame."""

    frame: RGBDFrame
    scene: SceneResult
    relations: list[Relation]
    stamp_ns: int


@dataclass
class ParsedQuestion:
    kind: str  # yes_no | list | distance | closest
    subject: str = ""
    object: str = ""
    type: int = ANY_TYPE
    positive: bool = True  # False for "far from"


@dataclass
class QueryOutcome:
    success: bool
    answer: str = ""
    confidence: float = 0.0
    relations: list[Relation] = field(default_factory=list)
    message: str = ""
    stamp_ns: int = 0
    source: str = "scene"  # scene | model | none


def _predicate(phrase: str | None) -> tuple[int, bool]:
    if phrase is None:  # "does X touch Y"
        return int(RelationType.CONTACT), True
    for p, t, positive in _PREDICATE_PHRASES:
        if p == phrase:
            return int(t), positive
    return ANY_TYPE, True


def normalise(text: str) -> str:
    text = text.strip().lower().replace("?", " ").replace("!", " ").replace(".", " ").replace(",", " ")
    return " ".join(text.split())


def parse_question(text: str) -> ParsedQuestion | None:
    q = normalise(text)
    if m := _HOW_FAR.match(q):
        return ParsedQuestion("distance", m["s"], m["o"], int(RelationType.PROXIMITY))
    if m := _CLOSEST.match(q):
        return ParsedQuestion("closest", "", m["o"], int(RelationType.PROXIMITY))
    if m := _SUPPORTS.match(q):
        return ParsedQuestion("list", m["s"], "", int(RelationType.SUPPORT))
    if m := _PAIR.match(q):
        pred, positive = _PAIR_PHRASES[m["p"]]
        rtype = RelationType.CONTACT if pred == "touching" else RelationType.PROXIMITY
        return ParsedQuestion("yes_no", m["s"], m["o"], int(rtype), positive)
    if m := _YES_NO.match(q):
        t, positive = _predicate(m["p"])
        return ParsedQuestion("yes_no", m["s"], m["o"], t, positive)
    if m := _WHAT_REL_OBJ.match(q):
        t, positive = _predicate(m["p"])
        return ParsedQuestion("list", "", m["o"], t, positive)
    if m := _WHAT_SUBJ_REL.match(q):
        t, positive = _predicate(m["p"])
        return ParsedQuestion("list", m["s"], "", t, positive)
    return None


def _resolve(scene: SceneResult, phrase: str) -> Detection | None:
    found = scene.find(phrase)
    if not found:  # "the mugs" / "a mug": tolerate a plural s and articles
        found = scene.find(re.sub(r"^(a|an)\s+", "", phrase).rstrip("s"))
    return max(found, key=lambda d: d.score) if found else None


def _pair_relations(relations: list[Relation], a: str, b: str, rtype: int) -> list[Relation]:
    out = []
    for r in relations:
        if rtype != ANY_TYPE and int(r.type) != rtype:
            continue
        same = r.subject_id == a and r.object_id == b
        # Proximity and contact are symmetric; support is not.
        swapped = r.subject_id == b and r.object_id == a and r.type != RelationType.SUPPORT
        if same or swapped:
            out.append(r)
    return out


def _positive_prob(r: Relation) -> float:
    p = r.confidence if r.holds else 1.0 - r.confidence
    return 1.0 - p if (r.type == RelationType.PROXIMITY and r.predicate == "far") else p


def _gap_text(r: Relation) -> str:
    return f", surface gap {r.distance_m * 100:.1f} cm" if math.isfinite(r.distance_m) else ""


def _phrase(rtype: int, positive: bool) -> str:
    if rtype == RelationType.PROXIMITY and not positive:
        return "far from"
    return {"near": "near", "touching": "touching", "on": "on"}[PREDICATES[RelationType(rtype)]]


def known_objects(scene: SceneResult) -> str:
    return ", ".join(d.description for d in scene.detections) or "none"


def handle_query(state: SceneState | None, question: str = "", subject: str = "", obj: str = "",
                 rtype: int = ANY_TYPE, ask_model: Callable[[str], Answer] | None = None,
                 second_look: bool = False) -> QueryOutcome:
    """`second_look`: a yes/no or "closest" question naming an object the scene lacks goes to `ask_model`
    (the engine looks again, inference/look_again.py) instead of being refused at once (the node's
    `query.second_look`, off by default: the reply then waits for the inference thread)."""
    question, subject, obj = (question or "").strip(), (subject or "").strip(), (obj or "").strip()
    if len(question) > MAX_QUESTION_CHARS or len(subject) > MAX_QUESTION_CHARS or len(obj) > MAX_QUESTION_CHARS:
        return QueryOutcome(False, message=f"question too long (more than {MAX_QUESTION_CHARS} characters)")
    if not question and not subject and not obj:
        return QueryOutcome(False, message=f"empty question; {EXAMPLE}")
    if rtype != ANY_TYPE and rtype not in {int(t) for t in RelationType}:
        return QueryOutcome(False, message=f"unknown relation type {rtype} (0 proximity, 1 contact, 2 support, 255 any)")
    if question and not re.search(r"[a-zA-Z]{2,}", question):
        return QueryOutcome(False, message=f"could not understand the question; {EXAMPLE}")
    if state is None:
        return QueryOutcome(False, message="no frame processed yet; is the camera publishing color + depth + camera_info?",
                            source="none")
    scene, stamp = state.scene, state.stamp_ns
    if not scene.detections:
        return QueryOutcome(False, message="no objects detected in the latest frame", stamp_ns=stamp)

    if question:
        parsed = parse_question(question)
        if parsed is None:
            mentioned = [d for d in scene.detections if d.label.lower() in question.lower()]
            if mentioned and ask_model is not None:
                return _from_model(question, ask_model, stamp)[0]
            return QueryOutcome(False, message=f"could not understand the question; {EXAMPLE}", stamp_ns=stamp)
    else:
        kind = "yes_no" if subject and obj else "list"
        parsed = ParsedQuestion(kind, subject, obj, rtype)

    subj = _resolve(scene, parsed.subject) if parsed.subject else None
    objd = _resolve(scene, parsed.object) if parsed.object else None
    for phrase, det in ((parsed.subject, subj), (parsed.object, objd)):
        if phrase and det is None:
            missing = QueryOutcome(False, message=f"no '{phrase}' in the latest frame (objects: {known_objects(scene)})",
                                   stamp_ns=stamp)
            if not second_look or ask_model is None or parsed.kind not in ("yes_no", "closest"):
                return missing
            return _second_look(question or _as_question(parsed), phrase, ask_model, missing)
    if parsed.kind == "list":
        return _list_answer(state, parsed, subj, objd)
    if parsed.kind == "closest":
        return _closest_answer(state, objd)
    if subj.id == objd.id:
        return QueryOutcome(False, message=f"subject and object are the same object ({subj.description})", stamp_ns=stamp)
    rels = _pair_relations(state.relations, subj.id, objd.id, parsed.type)
    if parsed.kind == "distance":
        gaps = [r for r in _pair_relations(state.relations, subj.id, objd.id, ANY_TYPE) if math.isfinite(r.distance_m)]
        if gaps:
            r = gaps[0]
            return QueryOutcome(True, f"The {subj.description} and the {objd.description} are {r.distance_m * 100:.1f} cm "
                                f"apart (closest surfaces).", r.confidence, [r], stamp_ns=stamp)
        return QueryOutcome(False, message=f"no metric gap between the {subj.description} and the {objd.description} "
                            "(no depth for one of them)", stamp_ns=stamp)
    if not rels:
        if ask_model is not None:
            text = question or _as_question(ParsedQuestion("yes_no", subj.description, objd.description, parsed.type))
            return _from_model(text, ask_model, stamp)[0]
        return QueryOutcome(False, message=f"no relation known between the {subj.description} and the {objd.description}",
                            stamp_ns=stamp)
    if parsed.type == ANY_TYPE:
        holding = [r for r in rels if r.holds and r.predicate != "far"]
        text = " ".join(r.text for r in rels)
        conf = min(r.confidence for r in rels)
        return QueryOutcome(True, text, conf, holding or rels, stamp_ns=stamp)
    r = rels[0]
    p = _positive_prob(r)
    if not parsed.positive:
        p = 1.0 - p
    yes = p >= 0.5
    phrase = _phrase(parsed.type, parsed.positive)
    verb = "is" if yes else "is not"
    answer = f"{'Yes' if yes else 'No'}, the {subj.description} {verb} {phrase} the {objd.description}{_gap_text(r)}."
    return QueryOutcome(True, answer, max(p, 1.0 - p), [r], stamp_ns=stamp)


def _list_answer(state: SceneState, parsed: ParsedQuestion, subj: Detection | None, objd: Detection | None) -> QueryOutcome:
    anchor = subj or objd
    hits: list[tuple[Relation, Detection]] = []
    by_id = {d.id: d for d in state.scene.detections}
    for r in state.relations:
        if parsed.type != ANY_TYPE and int(r.type) != parsed.type:
            continue
        p = _positive_prob(r)
        if (p >= 0.5) != parsed.positive:
            continue
        if objd is not None and r.object_id == anchor.id:
            other = r.subject_id
        elif objd is not None and r.subject_id == anchor.id and r.type != RelationType.SUPPORT:
            other = r.object_id
        elif subj is not None and r.subject_id == anchor.id:
            other = r.object_id
        elif subj is not None and r.object_id == anchor.id and r.type != RelationType.SUPPORT:
            other = r.subject_id
        else:
            continue
        if other in by_id and other != anchor.id:
            hits.append((r, by_id[other]))
    phrase = _phrase(parsed.type, parsed.positive) if parsed.type != ANY_TYPE else "related to"
    if not hits:
        return QueryOutcome(True, f"Nothing is {phrase} the {anchor.description}." if objd else
                            f"The {anchor.description} is not {phrase} anything.", 0.5, [], stamp_ns=state.stamp_ns)
    names = sorted({f"the {d.description}" for _, d in hits})
    listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    if objd is not None:
        text = f"{listed[0].upper()}{listed[1:]} {'is' if len(names) == 1 else 'are'} {phrase} the {anchor.description}."
    else:
        text = f"The {anchor.description} is {phrase} {listed}."
    conf = min(max(_positive_prob(r), 1 - _positive_prob(r)) for r, _ in hits)
    return QueryOutcome(True, text, conf, [r for r, _ in hits], stamp_ns=state.stamp_ns)


def _closest_answer(state: SceneState, anchor: Detection) -> QueryOutcome:
    by_id = {d.id: d for d in state.scene.detections}
    best: tuple[float, Relation, str] | None = None
    for r in state.relations:
        if not math.isfinite(r.distance_m) or anchor.id not in (r.subject_id, r.object_id):
            continue
        other = r.object_id if r.subject_id == anchor.id else r.subject_id
        if other in by_id and other != anchor.id and (best is None or r.distance_m < best[0]):
            best = (r.distance_m, r, other)
    if best is None:
        return QueryOutcome(False, message=f"no metric gaps to other objects for the {anchor.description}",
                            stamp_ns=state.stamp_ns)
    gap, rel, other = best
    return QueryOutcome(True, f"The {by_id[other].description} is closest to the {anchor.description} "
                        f"(surface gap {gap * 100:.1f} cm).", rel.confidence, [rel], stamp_ns=state.stamp_ns)


def _as_question(parsed: ParsedQuestion) -> str:
    """The English question a structured request (subject, object, type) stands for."""
    if parsed.kind == "closest":
        return f"which object is closest to the {parsed.object}?"
    rtype = parsed.type if parsed.type != ANY_TYPE else int(RelationType.PROXIMITY)
    return f"is the {parsed.subject} {_phrase(rtype, parsed.positive)} the {parsed.object}?"


def _second_look(question: str, phrase: str, ask_model: Callable[[str], Answer], missing: QueryOutcome) -> QueryOutcome:
    """An object the published detections lack: the engine looks again among the regions it scored but
    did not keep (inference/look_again.py) and the model answers only if that finds every object named."""
    outcome, ans = _from_model(question, ask_model, missing.stamp_ns)
    if ans is None:  # the model failed: say how
        return outcome
    if not ans.success or ans.unresolved or not ans.second_look:
        return missing
    if outcome.success:
        outcome.message = (f"'{phrase}' is not among the published detections; found on a second look: "
                           f"{', '.join(ans.second_look)}")
    return outcome


def _from_model(question: str, ask_model: Callable[[str], Answer], stamp: int
                ) -> tuple[QueryOutcome, Optional[Answer]]:
    try:
        ans = ask_model(question)
    except Exception as exc:  # noqa: BLE001 - the service must answer, not raise
        return QueryOutcome(False, message=f"the language head failed: {type(exc).__name__}: {exc}", stamp_ns=stamp,
                            source="model"), None
    if ans.success and not ans.text.strip():
        return QueryOutcome(False, message="the language head gave no answer to this question", stamp_ns=stamp,
                            source="model"), ans
    return QueryOutcome(bool(ans.success), ans.text, float(ans.confidence), list(ans.relations), ans.message,
                        stamp_ns=stamp, source="model"), ans
