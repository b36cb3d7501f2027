"""Relations, questions and descriptions of one frame, from metric gaps (shared by every loader).

Questions come from varied English templates. Yes/no questions are balanced per relation type by
selection: each frame asks as many "yes" as "no" questions of a type (hard negatives preferred for
support). Pairs inside an ambiguous band get no yes/no question, and a choice question is only
asked when its answer is unambiguous.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from spatial_vlm_ros.inference.geometry import DEFAULT_THRESHOLDS, RelationThresholds, label_gap

from .sample import FLOOR, PairRelation, QAItem, SceneObject

# (template, answer flips) - "far from" asks the negation of "near".
PROXIMITY_YESNO = [
    ("Is the {a} near the {b}?", False),
    ("Is the {a} close to the {b}?", False),
    ("Are the {a} and the {b} near each other?", False),
    ("Is the {a} far from the {b}?", True),
    ("Is the {a} far away from the {b}?", True),
]
CONTACT_YESNO = [
    "Is the {a} touching the {b}?",
    "Does the {a} touch the {b}?",
    "Are the {a} and the {b} in contact?",
    "Is the {a} in contact with the {b}?",
]
SUPPORT_YESNO = [
    "Is the {a} on the {b}?",
    "Is the {a} resting on the {b}?",
    "Is the {a} sitting on top of the {b}?",
    "Is the {a} placed on the {b}?",
]
PROXIMITY_CHOICE = [
    "Which object is closest to the {a}?",
    "What is the nearest object to the {a}?",
    "What is closest to the {a}?",
]
SUPPORT_CHOICE = [
    "What is the {a} resting on?",
    "What is the {a} sitting on?",
    "What is the {a} standing on?",
    "What supports the {a}?",
]
CLOSEST_MARGIN_M = 0.05  # the closest object must beat the runner-up by this much


def build_relations(ids: Sequence[str], gap: Callable[[str, str], float], on: Callable[[str, str], bool],
                    t: RelationThresholds = DEFAULT_THRESHOLDS) -> list[PairRelation]:
    """Every ordered pair of the given objects."""
    out = []
    for a in ids:
        for b in ids:
            if a == b:
                continue
            g = float(gap(a, b))
            labels = label_gap(g, t)
            out.append(PairRelation(a, b, g, labels["near"], labels["touching"], bool(on(a, b))))
    return out


def _pick(rng: np.random.Generator, items: list, k: int) -> list:
    if k <= 0 or not items:
        return []
    idx = rng.choice(len(items), size=min(k, len(items)), replace=False)
    return [items[int(i)] for i in sorted(idx)]


def build_qa(objects: Sequence[SceneObject], relations: Sequence[PairRelation], rng: np.random.Generator,
             per_type: int = 3, hidden_gap: Optional[dict[str, float]] = None,
             askable: Optional[set[str]] = None) -> list[QAItem]:
    """`hidden_gap[id]`: the smallest gap from `id` to any object not in this frame (blocks ambiguous
    "closest" answers). `askable`: ids with a unique referring expression (default: all)."""
    desc = {o.id: o.description for o in objects}
    ok = set(desc) if askable is None else set(askable) & set(desc)
    rels = [r for r in relations if r.subject in ok and r.object in ok]
    unordered = [r for r in rels if r.subject < r.object]
    qa: list[QAItem] = []

    def yesno(pairs_yes, pairs_no, make):
        k = min(len(pairs_yes), len(pairs_no), per_type)
        # The i-th "yes" and the i-th "no" pair share a template, so negated templates keep the balance.
        variants = rng.random(k)
        chosen = [(r, True, v) for r, v in zip(_pick(rng, pairs_yes, k), variants, strict=True)]
        chosen += [(r, False, v) for r, v in zip(_pick(rng, pairs_no, k), variants, strict=True)]
        for i in rng.permutation(len(chosen)):
            qa.append(make(*chosen[int(i)]))

    def swap(r: PairRelation) -> tuple[str, str]:
        return (r.subject, r.object) if rng.random() < 0.5 else (r.object, r.subject)

    def proximity(r: PairRelation, truth: bool, variant: float) -> QAItem:
        a, b = swap(r)
        template, flips = PROXIMITY_YESNO[int(variant * len(PROXIMITY_YESNO))]
        answer = truth != flips
        return QAItem(template.format(a=desc[a], b=desc[b]), "yes" if answer else "no", "proximity", "yesno", a, b)

    def contact(r: PairRelation, truth: bool, variant: float) -> QAItem:
        a, b = swap(r)
        template = CONTACT_YESNO[int(variant * len(CONTACT_YESNO))]
        return QAItem(template.format(a=desc[a], b=desc[b]), "yes" if truth else "no", "contact", "yesno", a, b)

    def support(r: PairRelation, truth: bool, variant: float) -> QAItem:
        template = SUPPORT_YESNO[int(variant * len(SUPPORT_YESNO))]
        return QAItem(template.format(a=desc[r.subject], b=desc[r.object]), "yes" if truth else "no", "support",
                      "yesno", r.subject, r.object)

    yesno([r for r in unordered if r.near is True], [r for r in unordered if r.near is False], proximity)
    yesno([r for r in unordered if r.touching is True], [r for r in unordered if r.touching is False], contact)
    on_pairs = [r for r in rels if r.on]
    on_set = {(r.subject, r.object) for r in on_pairs}
    # Hard negatives first: the reversed stack and touching-but-beside pairs.
    hard = [r for r in rels if not r.on and ((r.object, r.subject) in on_set or r.touching is True)]
    easy = [r for r in rels if not r.on and r not in hard and r.touching is False]
    k = min(len(on_pairs), per_type)
    negatives = _pick(rng, hard, (k + 1) // 2)
    negatives += _pick(rng, easy, k - len(negatives))
    negatives += _pick(rng, [r for r in hard if r not in negatives], k - len(negatives))
    yesno(on_pairs, negatives, support)

    # Choice questions: one of each kind per frame when the answer is unambiguous.
    gaps: dict[str, list[tuple[float, str]]] = {i: [] for i in ok}
    for r in rels:
        gaps[r.subject].append((r.gap_m, r.object))
    candidates = []
    for a in sorted(ok):
        ranked = sorted(gaps[a])
        if len(ranked) < 2:
            continue
        hidden = (hidden_gap or {}).get(a, math.inf)
        if ranked[1][0] - ranked[0][0] >= CLOSEST_MARGIN_M and hidden - ranked[0][0] >= CLOSEST_MARGIN_M:
            candidates.append((a, ranked[0][1]))
    for a, b in _pick(rng, candidates, 1):
        template = PROXIMITY_CHOICE[int(rng.integers(len(PROXIMITY_CHOICE)))]
        qa.append(QAItem(template.format(a=desc[a]), f"the {desc[b]}", "proximity", "choice", a, None))
    supported = [o for o in objects if o.id in ok and (o.resting_on == FLOOR or o.resting_on in ok)]
    for o in _pick(rng, supported, 1):
        template = SUPPORT_CHOICE[int(rng.integers(len(SUPPORT_CHOICE)))]
        answer = "the floor" if o.resting_on == FLOOR else f"the {desc[o.resting_on]}"
        qa.append(QAItem(template.format(a=o.description), answer, "support", "choice", o.id, None))
    return qa


def build_description(objects: Sequence[SceneObject], relations: Sequence[PairRelation]) -> str:
    """The relations that hold, strongest first: on, then touching, then near (each pair once)."""
    desc = {o.id: o.description for o in objects}
    sentences, stated = [], set()
    for r in relations:
        if r.on and r.subject in desc and r.object in desc:
            sentences.append(f"The {desc[r.subject]} is on the {desc[r.object]}.")
            stated.add(frozenset((r.subject, r.object)))
    for predicate, attr in (("touching", "touching"), ("near", "near")):
        for r in relations:
            pair = frozenset((r.subject, r.object))
            if r.subject < r.object and getattr(r, attr) is True and pair not in stated and r.subject in desc:
                sentences.append(f"The {desc[r.subject]} is {predicate} the {desc[r.object]}.")
                stated.add(pair)
    return " ".join(sentences)
