"""One pair's relation judgements made to agree with one another.

The language head judges "near", "touching" and "on" (each way) of a pair by four separate questions,
and sometimes says a mug is on the table but not touching it. What the relations mean rules that out:
on => touching => near, and two objects do not each rest on the other (the ground truth of every split
obeys this). The four judgements are read as independent evidence and conditioned on the five joint
states these rules allow; each relation then gets its probability over those states.

The published relations and "what is X resting on?" (which names the published support) use the agreed
probabilities; on the selection split that answer gained 2.75 points for the student and 1.75 for K=0
(results/select_trials.json, ninth_session). Yes/no answers and "which is closest" keep the judgements as
the LM made them: agreeing yes/no answers too cost the K=0 student 0.6 proximity and 0.4 contact points
(pair_consistency, eighth session), and agreed values saturate into ties that "closest" cannot rank.
"""
from __future__ import annotations

import numpy as np

from .types import RelationType

# Columns: near, touching, a on b, b on a. Rows: every assignment the rules allow.
ALLOWED_STATES = np.array([
    [0, 0, 0, 0],
    [1, 0, 0, 0],
    [1, 1, 0, 0],
    [1, 1, 1, 0],
    [1, 1, 0, 1],
], np.float64)
NEAR, TOUCHING, A_ON_B, B_ON_A = range(4)
_EPS = 1e-4  # a judgement of exactly 0 or 1 must not veto every state but one


def consistent(p: np.ndarray) -> np.ndarray:
    """p (..., 4) P(yes) of near, touching, a on b and b on a, each judged on its own -> (..., 4) the
    same probabilities given that the four agree."""
    p = np.clip(np.asarray(p, np.float64), _EPS, 1.0 - _EPS)
    log_p = np.log(p)[..., None, :] * ALLOWED_STATES + np.log1p(-p)[..., None, :] * (1.0 - ALLOWED_STATES)
    joint = log_p.sum(-1)
    weights = np.exp(joint - joint.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ ALLOWED_STATES


def agreed_judgements(judged: dict, n: int) -> dict:
    """The pair judgements of n objects ((RelationType, i, j) -> P(yes); near and touching keyed both
    ways, support each way) made to agree within each pair: near and touching keyed (i, j) with i < j."""
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    evidence = np.array([[judged[(RelationType.PROXIMITY, i, j)], judged[(RelationType.CONTACT, i, j)],
                          judged[(RelationType.SUPPORT, i, j)], judged[(RelationType.SUPPORT, j, i)]]
                         for i, j in pairs], np.float64).reshape(-1, 4)
    out = {}
    for (i, j), row in zip(pairs, consistent(evidence).tolist(), strict=True):
        out[(RelationType.PROXIMITY, i, j)], out[(RelationType.CONTACT, i, j)] = row[NEAR], row[TOUCHING]
        out[(RelationType.SUPPORT, i, j)], out[(RelationType.SUPPORT, j, i)] = row[A_ON_B], row[B_ON_A]
    return out
