#!/usr/bin/env python3
"""Write results/answer_errors_val.json: why end-to-end answers go wrong on the validation split
(never the test split), one cause per wrong answer, checked in this order:

- `missed`: an object the question names has no detection at box IoU >= 0.5, and no second look
  (inference/look_again.py) stood in for it; `missed, looked again`: the same, but the second look
  added a region for it, so the answer was wrong with the region it picked;
- `misresolved`: it was detected, but the question's words lead to another detection (or to none);
- for "which" / "what" questions whose answer is an object: `answer missed` (not detected) or
  `answer misnamed` (detected, but its colour + category differ from the expected answer's);
- `relation`: every object involved was found, resolved and named right; the judgement itself is wrong.

It also splits every question (right or wrong) by whether the objects it names were all detected, so the
accuracy the language path reaches on what detection gives it reads apart from detection's share.

    scripts/measure_answer_errors_val.py VAL_DIR [MODEL_DIR] [FRAMES] [OUT_JSON]"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.mentions import resolve
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples
from spatial_vlm_training.eval.answers import answer_correct
from spatial_vlm_training.eval.metrics import iou

REPO = Path(__file__).resolve().parents[1]
CAUSES = ("missed", "missed, looked again", "misresolved", "answer missed", "answer misnamed", "relation")


def matched(detections, obj) -> int:
    """Index of the detection of a ground-truth object (box IoU >= 0.5), else -1."""
    scores = [iou(d.box2d, obj.box2d) for d in detections]
    best = max(range(len(scores)), key=scores.__getitem__, default=-1)
    return best if best >= 0 and scores[best] >= 0.5 else -1


def named_objects(q, objects) -> list:
    """The ground-truth objects a question names (its subject, and its object when it has one)."""
    return [objects[q.subject]] + ([objects[q.object]] if q.object else [])


def cause(q, objects, detections, found: list[int]) -> str:
    """`found`: the detection of each of the question's named_objects (matched), -1 where none."""
    if min(found) < 0:
        return "missed"
    said = resolve(q.question, detections)
    if said[: len(found)] != found:
        return "misresolved"
    answer = next((o for o in objects.values() if q.kind == "choice" and f"the {o.description}" == q.answer.lower()), None)
    if answer is not None:
        k = matched(detections, answer)
        if k < 0:
            return "answer missed"
        if detections[k].description != answer.description:
            return "answer misnamed"
    return "relation"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", type=Path)
    parser.add_argument("model", type=Path, nargs="?", default=REPO / "resource" / "models" / "student")
    parser.add_argument("frames", type=int, nargs="?", default=100)
    parser.add_argument("out", type=Path, nargs="?", default=REPO / "results" / "answer_errors_val.json")
    args = parser.parse_args(argv)
    val, model, frames = args.val, args.model, args.frames
    engine = load_engine(model)
    total, wrong, causes = Counter(), Counter(), Counter()
    found_n, found_right = Counter(), Counter()  # keyed (kind, "found" | "missed")
    for s in tqdm(list(iter_samples(val, frames)), desc="answers", unit="frame"):
        frame = frame_from_sample(s)
        scene = engine.infer(frame)
        objects = {o.id: o for o in s.objects}
        for q in s.qa:
            key = f"{q.type}/{q.kind}"
            total[key] += 1
            a = engine.answer(frame, scene, q.question)
            right = a.success and answer_correct(a.text, q.answer, q.kind)
            found = [matched(scene.detections, o) for o in named_objects(q, objects)]
            seen = (key, "found" if min(found) >= 0 else "missed")
            found_n[seen] += 1
            found_right[seen] += right
            if right:
                continue
            wrong[key] += 1
            why = cause(q, objects, scene.detections, found)
            causes[(key, "missed, looked again" if why == "missed" and a.second_look else why)] += 1
    out = {"data": str(val), "model": str(model), "frames": frames,
           "by_kind": {k: {"questions": n, "wrong": wrong[k],
                           "causes": {c: causes[(k, c)] for c in CAUSES}}
                       for k, n in sorted(total.items())}}
    out["by_detection"] = {f"{k}/{seen}": {"questions": n, "accuracy": found_right[(k, seen)] / n}
                           for (k, seen), n in sorted(found_n.items())}
    all_wrong = sum(wrong.values())
    out["accuracy"] = 1 - all_wrong / max(1, sum(total.values()))
    out["share_of_wrong"] = {c: sum(v for (_, cc), v in causes.items() if cc == c) / max(1, all_wrong)
                             for c in CAUSES}
    path = args.out
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
