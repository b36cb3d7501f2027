#!/usr/bin/env python3
"""Write results/service_answers_<split>.json: how often the node's ~/query service answers a split's
questions right, beside the engine's own `answer` (what the reproduction table scores), per fusion rule.

The node does not pass questions straight to the engine: it answers from the published relations after
their metric cross-check (`ros/fusion.cross_check`, `fusion.rule`), and only questions its parser does
not cover, or pairs with no relation, go to the language head (`ros/query_handler.handle_query`). This
runs that same code on each frame (no ROS transport; query_handler and fusion import no rclpy), so the
service's accuracy is measured, not assumed equal to the table's. Choose settings on val or select, never
on test.

    scripts/measure_service_answers.py SPLIT_DIR [--model DIR] [--frames N] [--rules model log_odds ...]"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.ros.fusion import FUSION_RULES, cross_check
from spatial_vlm_ros.ros.query_handler import SceneState, handle_query
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples, read_meta, split_fingerprint
from spatial_vlm_training.eval.answers import answer_correct
from spatial_vlm_training.eval.harness import QUESTION_GROUPS

REPO = Path(__file__).resolve().parents[1]
_CLOSEST = re.compile(r"^the (.+?) is closest to ", re.IGNORECASE)


def as_answer(text: str) -> str:
    """The service's sentence as the short answer the split's questions expect ("yes", "the red mug")."""
    if m := _CLOSEST.match(text):
        return f"the {m[1]}"
    if re.search(r" is not (on|near|touching) anything\.?$", text):
        return "the floor"  # "what supports X?" with no support: X stands on the floor
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", type=Path)
    parser.add_argument("--model", type=Path, default=REPO / "resource" / "models" / "student")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rules", nargs="+", default=list(FUSION_RULES), choices=FUSION_RULES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    try:
        meta = read_meta(args.split)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = load_engine(args.model)
    right: dict[str, Counter] = {name: Counter() for name in ["engine", *args.rules]}
    failed: dict[str, Counter] = {name: Counter() for name in args.rules}
    source: dict[str, Counter] = {name: Counter() for name in args.rules}
    total = Counter()
    for sample in tqdm(list(iter_samples(args.split, args.frames)), desc="service answers", unit="frame"):
        frame = frame_from_sample(sample)
        scene = engine.infer(frame)
        states = {rule: SceneState(frame, scene, cross_check(scene, frame, rule, engine.thresholds).relations,
                                   frame.stamp_ns) for rule in args.rules}
        for q in sample.qa:
            keys = (QUESTION_GROUPS[q.type], f"{q.type}/{q.kind}")  # as the eval harness groups them
            total.update(keys)
            if answer_correct(engine.answer(frame, scene, q.question).text, q.answer, q.kind):
                right["engine"].update(keys)
            for rule, state in states.items():
                out = handle_query(state, q.question, ask_model=lambda text, f=frame, s=scene: engine.answer(f, s, text))
                source[rule][out.source if out.success else "failed"] += 1
                if not out.success:
                    failed[rule].update(keys)
                elif answer_correct(as_answer(out.answer), q.answer, q.kind):
                    right[rule].update(keys)

    def summary(counts: Counter) -> dict:
        return {k: round(counts[k] / total[k], 4) for k in sorted(total)}

    result = {"data": str(args.split), "data_sha256": split_fingerprint(args.split, args.frames), "split": meta.split,
              "frames": args.frames, "model": str(args.model),
              "questions": dict(total), "engine_answer": summary(right["engine"]),
              "service": {rule: {"accuracy": summary(right[rule]), "unsuccessful": dict(failed[rule]),
                                 "answered_from": dict(source[rule])} for rule in args.rules}}
    out = args.out or REPO / "results" / f"service_answers_{meta.split}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"engine": result["engine_answer"], **{r: v["accuracy"] for r, v in result["service"].items()}},
                     indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
