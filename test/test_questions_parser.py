"""Free-text spatial questions -> structured queries, and template answers over a scene."""
from __future__ import annotations

import math

import pytest

from spatial_vlm_ros.inference.geometry_engine import answer_from_scene
from spatial_vlm_ros.inference.questions import QuestionError, parse_question
from spatial_vlm_ros.inference.types import Detection, Relation, RelationType, SceneResult


@pytest.mark.parametrize("text, kind, rtype, subject, obj, predicate", [
    ("is the red mug touching the blue book?", "yesno", RelationType.CONTACT, "red mug", "blue book", "touching"),
    ("Is the lamp on top of the night stand", "yesno", RelationType.SUPPORT, "lamp", "night stand", "on"),
    ("are the cups near the laptop?", "yesno", RelationType.PROXIMITY, "cups", "laptop", "near"),
    ("Is the chair far from the desk?", "yesno", RelationType.PROXIMITY, "chair", "desk", "far"),
    ("does the mug touch the book?", "yesno", RelationType.CONTACT, "mug", "book", "touching"),
    ("what is near the laptop?", "which", RelationType.PROXIMITY, None, "laptop", "near"),
    ("What is on the table?", "which", RelationType.SUPPORT, None, "table", "on"),
    ("which objects are touching the box?", "which", RelationType.CONTACT, None, "box", "touching"),
    ("which object is closest to the laptop?", "closest", RelationType.PROXIMITY, None, "laptop", "near"),
    ("What is the nearest object to the red mug?", "closest", RelationType.PROXIMITY, None, "red mug", "near"),
    ("what is farthest from the chair", "farthest", RelationType.PROXIMITY, None, "chair", "far"),
    ("what is the yellow ball resting on?", "support_of", RelationType.SUPPORT, "yellow ball", None, "on"),
    ("what is the mug on?", "support_of", RelationType.SUPPORT, "mug", None, "on"),
    ("What supports the blue book?", "support_of", RelationType.SUPPORT, "blue book", None, "on"),
    ("Please, what does the lamp stand on?", "support_of", RelationType.SUPPORT, "lamp", None, "on"),
])
def test_understood_forms(text, kind, rtype, subject, obj, predicate):
    q = parse_question(text)
    assert (q.kind, q.type, q.subject, q.object, q.predicate) == (kind, rtype, subject, obj, predicate)


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("   ?? ", "empty"), ("12345", "not a question"), ("x" * 400, "too long"),
    ("tell me a joke", "could not understand"), ("is the mug touching the !!", "could not read"),
    ("is the a b c d e f g h touching the book", "could not read"),
])
def test_junk_fails_with_a_clear_message(text, message):
    with pytest.raises(QuestionError, match=message):
        parse_question(text)


def test_non_text_fails():
    with pytest.raises(QuestionError):
        parse_question(None)  # type: ignore[arg-type]


def _scene() -> SceneResult:
    dets = [Detection("lamp_0", "lamp", 1.0, (0, 0, 1, 1)), Detection("ns_0", "night stand", 1.0, (0, 0, 1, 1)),
            Detection("bed_0", "bed", 1.0, (0, 0, 1, 1))]
    rels = [
        Relation("lamp_0", "ns_0", "lamp", "night stand", RelationType.PROXIMITY, "near", True, 0.99, 0.01, "geometry"),
        Relation("lamp_0", "ns_0", "lamp", "night stand", RelationType.CONTACT, "touching", True, 0.8, 0.01, "geometry"),
        Relation("lamp_0", "ns_0", "lamp", "night stand", RelationType.SUPPORT, "on", True, 0.8, -0.02, "geometry"),
        Relation("lamp_0", "bed_0", "lamp", "bed", RelationType.PROXIMITY, "far", True, 0.9, 0.8, "geometry"),
        Relation("lamp_0", "bed_0", "lamp", "bed", RelationType.CONTACT, "touching", False, 0.99, 0.8, "geometry"),
        Relation("ns_0", "bed_0", "night stand", "bed", RelationType.PROXIMITY, "near", True, 0.7, 0.15, "geometry"),
        Relation("ns_0", "bed_0", "night stand", "bed", RelationType.CONTACT, "touching", False, 0.9, 0.15, "geometry"),
    ]
    return SceneResult(dets, rels, "")


@pytest.mark.parametrize("question, expected", [
    ("is the lamp on the night stand?", "Yes, the lamp is on the night stand."),
    ("is the night stand on the lamp?", "No, the night stand is not on the lamp."),
    ("is the lamp touching the bed?", "No, the lamp is not touching the bed."),
    ("is the lamp far from the bed?", "Yes, the lamp is far from the bed."),
    ("is the bed near the night stand?", "Yes, the bed is near the night stand."),
    ("what is the lamp resting on?", "The lamp is on the night stand."),
    ("what is near the night stand?", "The lamp and the bed are near the night stand."),
    ("what is on the night stand?", "The lamp is on the night stand."),
    ("which object is closest to the lamp?", "The night stand is closest to the lamp (1 cm apart)."),
    ("what is touching the bed?", "Nothing I can see is touching the bed."),
])
def test_template_answers(question, expected):
    a = answer_from_scene(_scene(), parse_question(question))
    assert a.success and a.text == expected
    assert 0.5 <= a.confidence <= 1.0 and not math.isnan(a.confidence)


def test_unknown_object_is_a_clean_failure():
    a = answer_from_scene(_scene(), parse_question("is the mug on the bed?"))
    assert not a.success and "no mug" in a.message and "night stand" in a.message


def test_every_dataset_template_parses():
    """The generator's question templates are the questions the models are scored on."""
    from spatial_vlm_training.data import qa

    templates = [*qa.PROXIMITY_CHOICE, *qa.SUPPORT_CHOICE]
    for t in templates:
        q = parse_question(t.format(a="red mug"))
        assert q.kind in ("closest", "support_of") and "red mug" in (q.subject, q.object)
