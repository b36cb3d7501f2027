"""scripts/measure_service_answers.py: the node's query path (cross-check + handle_query, no transport)
scored against a split's questions beside the engine's own answers."""
from __future__ import annotations

import json

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("measure_service_answers")


def test_service_sentences_become_short_answers(script):
    assert script.as_answer("The red mug is closest to the blue book (surface gap 3.0 cm).") == "the red mug"
    assert script.as_answer("The red mug is not on anything.") == "the floor"
    assert script.as_answer("Yes, the red mug is on the blue book.").startswith("Yes")


def test_scores_every_question_per_rule(script, generated_split, student_dir, tmp_path):
    data = generated_split("val", 5150, 2, width=320, height=240)
    out = tmp_path / "service.json"
    assert script.main([str(data), "--model", str(student_dir), "--frames", "2", "--rules", "model", "log_odds",
                        "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    n = sum(v for k, v in result["questions"].items() if "/" in k)  # per kind; the groups count them again
    assert n > 0 and set(result["service"]) == {"model", "log_odds"}
    for rule in result["service"].values():
        assert sum(rule["answered_from"].values()) == n  # every question answered or refused, none lost
        assert all(0.0 <= v <= 1.0 for v in rule["accuracy"].values())
    assert 0.0 <= result["engine_answer"]["proximity_accuracy"] <= 1.0 and len(result["data_sha256"]) == 64


def test_not_a_split_is_a_one_line_error(script, tmp_path, capsys):
    assert script.main([str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
