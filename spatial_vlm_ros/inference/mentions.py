"""Which detections a question (or a phrase) names.

First every detection whose whole referring expression appears in the text claims it, longest first.
The object phrases left over ("<colour> <category>") are then matched to the remaining detections
jointly, by how likely the detector found each one to be of that category and colour
(`label_scores`, `color_scores`). So "the red book" finds the detection named "red box" that was 20 %
book, rather than the only "blue book"; and "the white desk" finds a "white table" that was 30 % desk.
A phrase goes unresolved when no detection is at least MIN_CATEGORY_SCORE likely of its category, or
when two are exactly equally likely (no scores: two mugs, neither of the named colour)."""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

#: A category word goes to no detection less likely than this to be one. The region head is often
#: confidently wrong between look-alikes ("white desk" for our "gray table" at 2 % desk, a mug it called a
#: can at 1-3 %), so the floor is low: on val, paired by plane seed 0/1/2, 0.01 instead of 0.05 gave
#: proximity +0.3 / +1.3 / +1.0 and contact +1.2 / +0.2 / +0.5 points (results/val_trials.json,
#: sixth_session). The price: a question about an object that is not there at all may be answered about
#: a look-alike that is, which val (every question names a present object) cannot measure.
MIN_CATEGORY_SCORE = 0.01
_FLOOR = 1e-3  # a colour the detector ruled out still costs less than an unresolved phrase
# A category word without a known colour counts only one or two words after one of these ("Can the
# robot reach the mug?" names no can).
_DETERMINERS = {"the", "a", "an", "this", "that", "any", "every", "each"}


@dataclass(frozen=True)
class Candidate:
    description: str
    label: str = ""
    color: str = ""
    label_scores: Mapping[str, float] = field(default_factory=dict)
    color_scores: Mapping[str, float] = field(default_factory=dict)


def _words(text: str) -> list[str]:
    return text.lower().replace("?", " ").replace(",", " ").replace(".", " ").split()


def object_phrases(text: str, categories: Sequence[str], colours: Sequence[str]) -> list[tuple[Optional[str], str]]:
    """(colour or None, category) of every object phrase in `text`, whatever was detected."""
    words = _words(text)
    return [(colour, cat) for _, colour, cat in _phrases(words, [False] * len(words), set(categories), set(colours))]


def resolve(text: str, candidates: Sequence[Candidate]) -> list[int]:
    """Indices of the candidates `text` names, in order of appearance."""
    words = _words(text)
    taken = [False] * len(words)
    found: list[tuple[int, int]] = []  # (word position, candidate)
    for i in sorted(range(len(candidates)), key=lambda i: -len(candidates[i].description)):
        pos = _free_span(words, taken, candidates[i].description.lower().split())
        if pos is not None:
            found.append((pos, i))
    claimed = {i for _, i in found}
    rest = [i for i in range(len(candidates)) if i not in claimed]
    phrases = _phrases(words, taken, {c.label for c in candidates} | {k for c in candidates for k in c.label_scores},
                       {c.color for c in candidates} | {k for c in candidates for k in c.color_scores})
    for (pos, _, _), i in zip(phrases, _assign(phrases, rest, candidates), strict=True):
        if i is not None:
            found.append((pos, i))
    return [i for _, i in sorted(found)]


def _free_span(words: list[str], taken: list[bool], phrase: list[str]) -> Optional[int]:
    n = len(phrase)
    for pos in range(len(words) - n + 1) if n else ():
        if words[pos: pos + n] == phrase and not any(taken[pos: pos + n]):
            taken[pos: pos + n] = [True] * n
            return pos
    return None


def _phrases(words: list[str], taken: list[bool], categories: set[str], colours: set[str]
             ) -> list[tuple[int, Optional[str], str]]:
    """(position, colour word or None, category word) of each unclaimed object phrase."""
    out = []
    for k, w in enumerate(words):
        if taken[k] or w not in categories:
            continue
        colour = words[k - 1] if k and not taken[k - 1] and words[k - 1] in colours else None
        if colour is None and not any(k >= n and words[k - n] in _DETERMINERS for n in (1, 2)):
            continue  # neither "the mug" nor "the <any adjective> mug"
        out.append((k - 1 if colour else k, colour, w))
    return out


def log_likelihood(colour: Optional[str], category: str, c: Candidate) -> Optional[float]:
    """log P(category) + log P(colour) of a detection; None when it is unlikely of that category."""
    p_cat = c.label_scores.get(category, 0.0) if c.label_scores else float(c.label == category)
    if p_cat < MIN_CATEGORY_SCORE and c.label != category:
        return None
    score = math.log(max(p_cat, _FLOOR))
    if colour:
        p_col = c.color_scores.get(colour, 0.0) if c.color_scores else float(c.color == colour)
        score += math.log(max(p_col, _FLOOR))
    return score


def _assign(phrases, rest: list[int], candidates: Sequence[Candidate]) -> list[Optional[int]]:
    """The most likely distinct candidate for each phrase (exhaustive: questions name 1-3 objects)."""
    table = [{i: s for i in rest if (s := log_likelihood(colour, cat, candidates[i])) is not None}
             for _, colour, cat in phrases]
    options = [[*sorted(t, key=t.get, reverse=True)[:4], None] for t in table]
    best, best_score = [None] * len(phrases), -math.inf
    for combo in itertools.product(*options):
        chosen = [i for i in combo if i is not None]
        if len(set(chosen)) < len(chosen):
            continue
        # an unresolved phrase costs more than any floor-level match, so every resolvable one resolves
        score = sum(table[k][i] if i is not None else 3 * math.log(_FLOOR) for k, i in enumerate(combo))
        if score > best_score:
            best, best_score = list(combo), score
    for k, i in enumerate(best):  # a coin toss between equals is no answer
        if i is not None and sum(abs(s - table[k][i]) < 1e-9 for j, s in table[k].items() if j not in best or j == i) > 1:
            best[k] = None
    return best
