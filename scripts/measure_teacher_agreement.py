#!/usr/bin/env python3
"""Write results/distill_gating.json: how often the teacher's own answers (teacher-forced top-1 tokens in
its dumped outputs) are right, per question kind, and the students distilled with and without
`loss.soft_only_where_teacher_right` (their train_summary.json val accuracy with ground-truth objects).

    scripts/measure_teacher_agreement.py TEACHER_OUTPUTS_DIR GATED_STUDENT_DIR UNGATED_STUDENT_DIR

The kind of a question comes from the dataset's templates (spatial_vlm_training/data/qa.py)."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from spatial_vlm_training.data import qa

REPO = Path(__file__).resolve().parents[1]


def kind_of(question: str) -> str:
    q = question.lower()
    for name, templates in (("closest", qa.PROXIMITY_CHOICE), ("resting_on", qa.SUPPORT_CHOICE)):
        if any(q.startswith(t.split("{a}")[0].lower()) for t in templates):
            return name
    return "yesno"


def main() -> int:
    outputs, gated, ungated = map(Path, sys.argv[1:4])
    right, total = Counter(), Counter()
    with (outputs / "answers.jsonl").open() as f:
        for line in f:
            d = json.loads(line)
            words = d["answer"].split()
            top = [step[0][0] for step in d["top_logprobs"]]
            kind = kind_of(d["question"])
            total[kind] += 1
            right[kind] += top[: len(words)] == words
    out = {"teacher_outputs": str(outputs),
           "teacher_top1_right": {k: {"accuracy": right[k] / total[k], "n": total[k]} for k in sorted(total)},
           "students_val_ground_truth_objects": {
               name: json.loads((p / "train_summary.json").read_text())["val"]
               for name, p in (("gated (soft_only_where_teacher_right)", gated), ("ungated", ungated))}}
    path = REPO / "results" / "distill_gating.json"
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
