"""Free-text spatial questions -> a structured query the engines can answer.

Understood forms (articles, "please" and a trailing "?" are optional):
  yes/no     "is the red mug touching the blue book?", "are the cups near the laptop?",
             "is the lamp on (top of) the night stand?", "does the mug touch the book?"
  which      "what is near the laptop?", "what is on the table?", "which objects are touching the box?"
  support_of "what is the yellow ball resting on?", "what is the mug on?", "what is under the lamp?",
             "what supports the mug?"
  closest    "which object is closest to the laptop?", "what is the nearest object to the mug?",
             "what is farthest from the chair?"
Anything else fails with a one-line `QuestionError` that shows an example.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .types import RelationType

MAX_QUESTION_CHARS = 300
MAX_PHRASE_WORDS = 6
EXAMPLE = 'e.g. "is the red mug touching the blue book?" or "what is near the laptop?"'


class QuestionError(ValueError):
    """The question is empty, junk, too long or not one of the understood forms."""


@dataclass(frozen=True)
class ParsedQuestion:
    text: str  # the question as asked
    kind: str  # yesno | which | support_of | closest | farthest
    type: RelationType
    subject: Optional[str]  # referring phrase without article ("red mug"); None for which/closest
    object: Optional[str]  # None for support_of (that is what is asked)
    predicate: str  # near | far | touching | on

    @property
    def negated(self) -> bool:
        """"far from" asks the opposite of "near"."""
        return self.predicate == "far"


# phrase -> (type, predicate); longest first so "on top of" wins over "on".
_RELATION_WORDS: list[tuple[str, RelationType, str]] = [
    ("in contact with", RelationType.CONTACT, "touching"),
    ("touching", RelationType.CONTACT, "touching"),
    ("far away from", RelationType.PROXIMITY, "far"),
    ("far from", RelationType.PROXIMITY, "far"),
    ("close to", RelationType.PROXIMITY, "near"),
    ("next to", RelationType.PROXIMITY, "near"),
    ("nearby", RelationType.PROXIMITY, "near"),
    ("beside", RelationType.PROXIMITY, "near"),
    ("near", RelationType.PROXIMITY, "near"),
    ("on top of", RelationType.SUPPORT, "on"),
    ("resting on", RelationType.SUPPORT, "on"),
    ("sitting on", RelationType.SUPPORT, "on"),
    ("standing on", RelationType.SUPPORT, "on"),
    ("lying on", RelationType.SUPPORT, "on"),
    ("placed on", RelationType.SUPPORT, "on"),
    ("supported by", RelationType.SUPPORT, "on"),
    ("on", RelationType.SUPPORT, "on"),
]
_VERBS_3RD = {"touch": ("touching", RelationType.CONTACT), "rest on": ("on", RelationType.SUPPORT),
              "sit on": ("on", RelationType.SUPPORT), "stand on": ("on", RelationType.SUPPORT),
              "lie on": ("on", RelationType.SUPPORT)}
_REL_ALT = "|".join(re.escape(w) for w, _, _ in _RELATION_WORDS)
_REL = {w: (t, p) for w, t, p in _RELATION_WORDS}

_YESNO = re.compile(rf"^(?:is|are) (?P<s>.+?) (?:currently )?(?P<rel>{_REL_ALT}) (?P<o>.+)$")
_DOES = re.compile(rf"^(?:does|do) (?P<s>.+?) (?P<verb>{'|'.join(_VERBS_3RD)}) (?P<o>.+)$")
_SUPPORT_OF = re.compile(r"^what (?:is|are) (?P<s>.+?) (?:(?:resting|sitting|standing|lying|placed) )?on(?: top of)?$")
_SUPPORT_OF_DOES = re.compile(r"^what (?:does|do) (?P<s>.+?) (?:rest|sit|stand|lie) on$")
_UNDER = re.compile(r"^what (?:(?:is|are) (?:under|underneath|below|beneath|supporting)|supports?) (?P<s>.+)$")
_WHICH = re.compile(rf"^(?:what|which|which objects?|which things?|what objects?|what things?) (?:is|are) "
                    rf"(?P<rel>{_REL_ALT}) (?P<o>.+)$")
_SUPERLATIVE = re.compile(r"^(?:what|which)(?: (?:object|thing|item))? (?:is )?(?:the )?"
                          r"(?P<sup>closest|nearest|farthest|furthest)(?: (?:object|thing|item))? (?:to|from) (?P<o>.+)$")
_FILLERS = re.compile(r"^(?:please |can you tell me |could you tell me |tell me )+")
_PHRASE = re.compile(r"^[a-z0-9][a-z0-9 _\-']*$")


def normalize(text: str) -> str:
    t = " ".join(text.lower().replace("?", " ").replace(",", " ").split())
    t = _FILLERS.sub("", t)
    return t.rstrip(". !").strip()


def clean_phrase(phrase: str, role: str) -> str:
    p = re.sub(r"^(?:the|a|an|any|some)(?: |$)", "", phrase.strip())
    if not p or not _PHRASE.match(p) or len(p.split()) > MAX_PHRASE_WORDS:
        raise QuestionError(f"could not read the {role} in {phrase!r}; name one object, {EXAMPLE}")
    return p


def parse_question(question: str) -> ParsedQuestion:
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"question too long ({len(question)} characters, at most {MAX_QUESTION_CHARS})")
    text = normalize(question)
    if not text:
        raise QuestionError(f"empty question; ask {EXAMPLE}")
    if not re.search(r"[a-z]", text):
        raise QuestionError(f"not a question: {question.strip()[:40]!r}; ask {EXAMPLE}")
    if m := _SUPERLATIVE.match(text):
        kind = "closest" if m["sup"] in ("closest", "nearest") else "farthest"
        pred = "near" if kind == "closest" else "far"
        return ParsedQuestion(question, kind, RelationType.PROXIMITY, None, clean_phrase(m["o"], "object"), pred)
    for pattern in (_SUPPORT_OF, _SUPPORT_OF_DOES, _UNDER):
        if m := pattern.match(text):
            return ParsedQuestion(question, "support_of", RelationType.SUPPORT, clean_phrase(m["s"], "object"), None, "on")
    if m := _WHICH.match(text):
        rel_type, pred = _REL[m["rel"]]
        return ParsedQuestion(question, "which", rel_type, None, clean_phrase(m["o"], "object"), pred)
    if m := _YESNO.match(text):
        rel_type, pred = _REL[m["rel"]]
        return ParsedQuestion(question, "yesno", rel_type, clean_phrase(m["s"], "subject"),
                              clean_phrase(m["o"], "object"), pred)
    if m := _DOES.match(text):
        pred, rel_type = _VERBS_3RD[m["verb"]]
        return ParsedQuestion(question, "yesno", rel_type, clean_phrase(m["s"], "subject"),
                              clean_phrase(m["o"], "object"), pred)
    raise QuestionError(f"could not understand {question.strip()[:60]!r}; ask {EXAMPLE}")
