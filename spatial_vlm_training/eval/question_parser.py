"""Parse the benchmark's spatial questions against the detections of a frame.

It reads the question TEXT (the oracle never sees the ground-truth question record), finds the
referring expressions of known objects in it, and decides relation type, kind and negation from
its wording. It covers the generator's templates and close paraphrases.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from .answers import normalize


@dataclass
class ParsedQuestion:
    type: str  # proximity | contact | support
    kind: str  # yesno | choice
    subject: str  # description of the first object mentioned
    object: Optional[str]  # description of the second, None for choice questions
    negated: bool = False  # "far from": the answer is "yes" when the pair is NOT near


class QuestionParseError(ValueError):
    pass


def _mentions(question: str, descriptions: Sequence[str]) -> list[str]:
    """Descriptions mentioned in the question, in order, longest match first without overlaps."""
    q = " " + normalize(question) + " "
    spans = []
    for d in sorted(set(descriptions), key=len, reverse=True):
        key = " " + normalize(d) + " "
        for m in re.finditer(re.escape(key), q):
            if all(m.end() <= s or m.start() >= e for s, e, _ in spans):
                spans.append((m.start(), m.end(), d))
    return [d for _, _, d in sorted(spans)]


def parse_question(question: str, descriptions: Sequence[str]) -> ParsedQuestion:
    q = normalize(question)
    objs = _mentions(question, descriptions)
    if not objs:
        raise QuestionParseError(f"no known object in {question!r}")
    first_word = q.split()[0] if q else ""
    if first_word in ("which", "what", "where"):
        if re.search(r"\b(closest|nearest)\b", q):
            return ParsedQuestion("proximity", "choice", objs[0], None)
        if re.search(r"\b(resting|sitting|standing|lying) on\b|\bsupports?\b|\bunder\b", q):
            return ParsedQuestion("support", "choice", objs[0], None)
        raise QuestionParseError(f"unknown choice question {question!r}")
    if len(objs) < 2:
        raise QuestionParseError(f"need two objects in {question!r}")
    a, b = objs[0], objs[1]
    if re.search(r"\btouch(es|ing)?\b|\bin contact\b", q):
        return ParsedQuestion("contact", "yesno", a, b)
    if re.search(r"\bfar\b", q):
        return ParsedQuestion("proximity", "yesno", a, b, negated=True)
    if re.search(r"\bnear\b|\bclose to\b|\bnext to\b", q):
        return ParsedQuestion("proximity", "yesno", a, b)
    if re.search(r"\bon\b|\bon top of\b|\bsupport", q):
        return ParsedQuestion("support", "yesno", a, b)
    raise QuestionParseError(f"unknown relation in {question!r}")
