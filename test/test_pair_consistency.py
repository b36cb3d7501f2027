"""A pair's published relations agree with one another: on => touching => near, and not both ways on
(inference/pair_consistency.py). Yes/no and "closest" answers keep the LM's own judgements; "what is X
resting on" names the published support (test_region_detection)."""
from __future__ import annotations

import numpy as np
import torch

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.pair_consistency import A_ON_B, B_ON_A, NEAR, TOUCHING, consistent
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples


def test_agreed_probabilities_obey_the_rules():
    p = np.random.default_rng(0).uniform(size=(500, 4))
    agreed = consistent(p)
    assert agreed.shape == p.shape and np.all((agreed >= 0) & (agreed <= 1))
    assert np.all(agreed[:, A_ON_B] + agreed[:, B_ON_A] <= agreed[:, TOUCHING] + 1e-9)
    assert np.all(agreed[:, TOUCHING] <= agreed[:, NEAR] + 1e-9)


def test_a_contradiction_is_resolved_by_the_stronger_evidence():
    # "on" judged surely, "touching" weakly against: the mug on the table touches it.
    on_not_touching = consistent(np.array([0.99, 0.2, 0.98, 0.01]))
    assert on_not_touching[TOUCHING] > 0.5 and on_not_touching[A_ON_B] > 0.5
    # "touching" judged surely against, "on" weakly for: it is not on it either.
    assert consistent(np.array([0.9, 0.02, 0.6, 0.01]))[A_ON_B] < 0.5
    # Judgements that already agree keep their answers, even at exactly 0 and 1.
    agree = consistent(np.array([1.0, 1.0, 0.0, 1.0]))
    assert agree[NEAR] > 0.99 and agree[TOUCHING] > 0.99 and agree[A_ON_B] < 0.01 and agree[B_ON_A] > 0.99
    assert np.allclose(consistent(np.zeros((3, 4))), 0.0, atol=1e-3)


def test_published_relations_agree_and_answers_keep_the_judgements(student_dir, generated_split):
    engine = load_engine(student_dir)
    pairs = 0
    for s in iter_samples(generated_split("val", 7373, 3)):
        f = frame_from_sample(s)
        scene = engine.infer(f)
        holds = {(r.type.name, r.subject_id, r.object_id): r.holds and r.predicate != "far" for r in scene.relations}
        holds.update({(k, b, a): v for (k, a, b), v in holds.items() if k != "SUPPORT"})
        dets = scene.detections
        for a in dets:
            for b in dets:
                if a.id >= b.id:
                    continue
                pairs += 1
                on = holds[("SUPPORT", a.id, b.id)] or holds[("SUPPORT", b.id, a.id)]
                assert not (holds[("SUPPORT", a.id, b.id)] and holds[("SUPPORT", b.id, a.id)])
                assert holds[("CONTACT", a.id, b.id)] or not on
                assert holds[("PROXIMITY", a.id, b.id)] or not holds[("CONTACT", a.id, b.id)]
    assert pairs >= 3


def test_answers_keep_the_lm_judgements(student_dir, generated_split):
    """The judgements answers read (state.pair_yes) are the LM's, not the agreed ones published."""
    from spatial_vlm_ros.inference.engine import RELATION_QUESTIONS

    engine = load_engine(student_dir)
    checked = 0
    for s in iter_samples(generated_split("val", 7373, 3)):
        scene = engine.infer(frame_from_sample(s))
        state = engine._cache[id(scene)][1]
        row = {tuple(p): k for k, p in enumerate(state.pair_index.tolist())}
        names = state.descriptions
        for (rtype, i, j), p in state.pair_yes.items():
            if i < j:
                q = RELATION_QUESTIONS[rtype].format(a=names[i], b=names[j])
                with torch.inference_mode():
                    alone = engine.yes_probability([q], state, [(i, j, row[(i, j)], row[(j, i)])])[0]
                assert abs(alone - p) < 1e-4, (q, alone, p)
                checked += 1
    assert checked >= 3
