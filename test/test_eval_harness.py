"""The eval harness: the oracle scores ~100 %, a blind engine does not, and bad input fails in one line."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from spatial_vlm_ros.inference.types import Answer, Detection, RGBDFrame, SceneResult
from spatial_vlm_training.data.generator import GenerateConfig, generate_split
from spatial_vlm_training.data.qa import (
    CONTACT_YESNO,
    PROXIMITY_CHOICE,
    PROXIMITY_YESNO,
    SUPPORT_CHOICE,
    SUPPORT_YESNO,
)
from spatial_vlm_training.eval.answers import answer_correct, normalize, parse_description
from spatial_vlm_training.eval.harness import EngineError, evaluate, markdown_table
from spatial_vlm_training.eval.metrics import DetectionAccumulator
from spatial_vlm_training.eval.oracle import OracleEngine
from spatial_vlm_training.eval.question_parser import parse_question


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "test"
    generate_split(GenerateConfig(out, "test", 21, 8, width=320, height=240))
    return out


class BlindEngine:
    """Sees nothing and always says yes: what the harness must NOT score well."""

    params = 7

    def infer(self, frame: RGBDFrame) -> SceneResult:
        far = np.full(frame.rgb.shape[:2], 10.0, np.float32)
        return SceneResult([Detection("d0", "mug", 0.9, (0, 0, 5, 5))], [], "The red mug is on the blue book.", depth=far)

    def answer(self, frame: RGBDFrame, scene: SceneResult, question: str) -> Answer:
        return Answer(question, "Yes.", 0.5)


def test_oracle_scores_perfectly(split_dir):
    report = evaluate(OracleEngine(split_dir), split_dir, "oracle", progress=False)
    m = report.metrics
    assert m["n_frames"] == 8 and m["n_questions"] > 30
    for key in ("proximity_accuracy", "contact_accuracy", "description_f1", "depth_delta1", "detection_map50"):
        assert m[key] >= 0.97, key
    assert m["depth_absrel"] < 0.01 and m["center_error_3d_m"] < 0.01
    assert m["params"] == 0 and m["latency_ms_median"] > 0
    assert {"proximity/yesno", "contact/yesno", "support/yesno", "support/choice"} <= set(report.per_kind)
    assert "| proximity accuracy | 100.0 % |" in markdown_table(report)


def test_geometry_baseline_is_strong_but_not_perfect(split_dir):
    """Sensor depth under true masks: proximity is easy, contact suffers from hidden contact surfaces."""
    from spatial_vlm_training.eval.geometry_baseline import GeometryBaselineEngine

    m = evaluate(GeometryBaselineEngine(split_dir), split_dir, "geometry", progress=False).metrics
    assert m["proximity_accuracy"] >= 0.9 and m["contact_accuracy"] >= 0.7
    assert 0 < m["depth_absrel"] < 0.05  # the sensor model's noise, measured against exact depth


def test_blind_engine_scores_like_chance(split_dir):
    m = evaluate(BlindEngine(), split_dir, "blind", progress=False).metrics
    # Balanced yes/no: always-yes gets about half of the yes/no questions and no choice question.
    assert 0.3 <= m["proximity_accuracy"] <= 0.6 and 0.3 <= m["contact_accuracy"] <= 0.6
    assert m["description_f1"] == 0.0 and m["detection_map50"] < 0.05
    assert m["depth_delta1"] < 0.05 and m["params"] == 7


class BrokenEngine(BlindEngine):
    def answer(self, frame, scene, question):
        raise RuntimeError("index out of range")


def test_a_failing_engine_is_reported_with_its_frame(split_dir):
    with pytest.raises(EngineError, match=r"test_000000 \(RuntimeError: index out of range\)"):
        evaluate(BrokenEngine(), split_dir, "broken", progress=False)


def test_every_template_parses():
    names = ["red mug", "blue book", "green can"]
    for template, flips in PROXIMITY_YESNO:
        p = parse_question(template.format(a="red mug", b="blue book"), names)
        assert (p.type, p.kind, p.subject, p.object, p.negated) == ("proximity", "yesno", "red mug", "blue book", flips)
    for templates, qtype in ((CONTACT_YESNO, "contact"), (SUPPORT_YESNO, "support")):
        for template in templates:
            p = parse_question(template.format(a="green can", b="blue book"), names)
            assert (p.type, p.kind, p.subject, p.object) == (qtype, "yesno", "green can", "blue book")
    for templates, qtype in ((PROXIMITY_CHOICE, "proximity"), (SUPPORT_CHOICE, "support")):
        for template in templates:
            p = parse_question(template.format(a="green can"), names)
            assert (p.type, p.kind, p.subject) == (qtype, "choice", "green can")


def test_answer_matching():
    assert normalize("The Red  mug!") == "red mug"
    assert answer_correct("Yes, it is.", "yes", "yesno") and not answer_correct("No.", "yes", "yesno")
    assert not answer_correct("maybe", "no", "yesno")
    assert answer_correct("the red mug", "the red mug", "choice")
    assert answer_correct("It rests on the blue book.", "the blue book", "choice")
    assert not answer_correct("the red book", "the blue book", "choice")


def test_description_parsing():
    stated = parse_description("The red mug is on the blue book. The green can is near the laptop. "
                               "The ball is not touching the box. The cup is far from the plate.")
    assert [(s.predicate, s.subject, s.object) for s in stated] == [("on", "red mug", "blue book"),
                                                                     ("near", "green can", "laptop")]


def test_average_precision_of_a_known_ranking():
    from spatial_vlm_ros.inference.types import Box3D
    from spatial_vlm_training.data.sample import SceneObject

    box = Box3D(np.zeros(3), np.ones(3))
    gts = [SceneObject("a", "mug", "", "mug", 1, (0, 0, 10, 10), 100, box),
           SceneObject("b", "mug", "", "mug", 2, (20, 20, 30, 30), 100, box)]
    dets = [Detection("x", "mug", 0.9, (0, 0, 10, 10)), Detection("y", "mug", 0.8, (50, 50, 60, 60)),
            Detection("z", "mug", 0.7, (20, 20, 30, 31))]
    acc = DetectionAccumulator()
    acc.add(dets, gts)
    # Ranked TP, FP, TP over 2 ground truths: AP = 0.5 * 1 + 0.5 * 2/3.
    assert acc.map50 == pytest.approx(0.5 + 0.5 * 2 / 3)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "spatial_vlm_ros.cli", "eval", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_cli_writes_json_and_markdown(tmp_path, split_dir, repo_root):
    proc = _cli("--model", "oracle", "--data", str(split_dir), "--json", str(tmp_path / "m.json"), "--md",
                str(tmp_path / "m.md"), "--limit", "3", cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n_frames"] == 3 and metrics["proximity_accuracy"] == 1.0
    assert "description F1" in (tmp_path / "m.md").read_text()


@pytest.mark.parametrize("case", ["missing", "version", "corrupt_line", "corrupt_png", "no_model"])
def test_cli_bad_input_is_one_line_naming_the_file(tmp_path, split_dir, repo_root, case):
    import shutil

    data = tmp_path / "split"
    model = "oracle"
    if case != "missing":
        shutil.copytree(split_dir, data)
    if case == "version":
        meta = json.loads((data / "meta.json").read_text())
        (data / "meta.json").write_text(json.dumps({**meta, "format": "svlm-scenes-0"}))
        named = "meta.json"
    elif case == "corrupt_line":
        with (data / "samples.jsonl").open("a") as f:
            f.write("{broken\n")
        named = "samples.jsonl"
    elif case == "corrupt_png":
        first = json.loads((data / "samples.jsonl").read_text().splitlines()[0])
        (data / first["rgb"]).write_bytes(b"not a png")
        named = first["rgb"].split("/")[-1]
    elif case == "no_model":
        model = str(tmp_path / "no_such_model")
        named = "no_such_model"
    else:
        named = "split"
    proc = _cli("--model", model, "--data", str(data), "--json", str(tmp_path / "m.json"), cwd=repo_root)
    assert proc.returncode == 1
    err = [line for line in proc.stderr.splitlines() if "error" in line]  # the rest is the progress bar
    assert len(err) == 1 and named in err[0] and "Traceback" not in proc.stderr, proc.stderr
