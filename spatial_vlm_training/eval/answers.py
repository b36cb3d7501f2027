"""Answer matching and description parsing shared by every metric that reads English."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

_ARTICLES = {"a", "an", "the"}
_SENTENCE = re.compile(r"^the (.+?) is (not )?(on top of|on|touching|near|next to|far from) the (.+?)$")


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    words = re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split()
    return " ".join(w for w in words if w not in _ARTICLES)


def yes_no(text: str) -> Optional[str]:
    """'yes' / 'no' when the answer starts with it ("Yes, it is." -> 'yes'), else None."""
    words = normalize(text).split()
    return words[0] if words and words[0] in ("yes", "no") else None


def answer_correct(predicted: str, truth: str, kind: str) -> bool:
    """Yes/no by the leading word; choice answers by the referring expression: the normalised
    prediction equals it or ends with it on a word boundary ("It rests on the blue book.")."""
    if kind == "yesno":
        return yes_no(predicted) == yes_no(truth)
    p, t = normalize(predicted), normalize(truth)
    return bool(t) and (p == t or p.endswith(" " + t))


@dataclass(frozen=True)
class StatedRelation:
    predicate: str  # on | touching | near
    subject: str  # referring expression, normalised
    object: str

    def key(self) -> tuple:
        """`on` is ordered; touching and near are symmetric."""
        if self.predicate == "on":
            return ("on", self.subject, self.object)
        return (self.predicate, *sorted((self.subject, self.object)))


def parse_description(text: str) -> list[StatedRelation]:
    """Positive statements "The X is on/touching/near the Y." (negated and "far from" ones are skipped)."""
    out = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text.strip()):
        s = " ".join(re.sub(r"[^a-z0-9 ]+", " ", sentence.lower()).split())
        m = _SENTENCE.match(s)
        if not m or m.group(2) or m.group(3) == "far from":
            continue
        predicate = {"on top of": "on", "next to": "near"}.get(m.group(3), m.group(3))
        out.append(StatedRelation(predicate, normalize(m.group(1)), normalize(m.group(4))))
    return out
