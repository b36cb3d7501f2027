#!/usr/bin/env python3
"""Write results/detection_val.json: the validation-split measurements behind the region-detection
choices in README / results/NOTES.md (never the test split).

    scripts/measure_detection_val.py VAL_DIR [MODEL_DIR]

- proposal recall (GT boxes matched at IoU 0.5) for the committed ProposalConfig, the earlier one and
  the committed one without the on-floor colour segments;
- what the committed student makes of each GT object: box found, + right category, + right colour;
- contact relations on pairs whose two objects were both detected;
- answer accuracy at score thresholds 0.3 / 0.5 / 0.7, and without the on-floor colour segments.
Open3D's RANSAC plane fit is multithreaded, so repeated runs differ in the third decimal."""
from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.object_features import WORK_SIZE, working_views
from spatial_vlm_ros.inference.region_proposals import ProposalConfig, box_iou, region_proposals
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples
from spatial_vlm_training.eval.harness import evaluate
from spatial_vlm_training.eval.metrics import iou

REPO = Path(__file__).resolve().parents[1]
EARLIER = dataclasses.replace(ProposalConfig(), floor_distance_m=0.025, min_pixels=30, floor_band_m=0.0)
NO_FLOOR_COLOUR = dataclasses.replace(ProposalConfig(), floor_band_m=0.0)


def proposal_recall(val: Path, cfg: ProposalConfig, frames: int) -> dict:
    hit, total, counts = Counter(), Counter(), []
    for s in tqdm(list(iter_samples(val, frames)), desc="proposals", unit="frame"):
        f = frame_from_sample(s)
        w, h = f.size
        rgb_small, points_small = working_views(f.rgb, f.depth, f.intrinsics)
        props = region_proposals(rgb_small, points_small, f.intrinsics.scaled(*WORK_SIZE), f.up, cfg)
        counts.append(len(props))
        boxes = np.stack([p.box for p in props]) if props else np.zeros((0, 4))
        for o in s.objects:
            total[o.category] += 1
            gt = np.asarray(o.box2d, float) / [w, h, w, h]
            hit[o.category] += bool(len(boxes)) and box_iou(gt[None], boxes).max() >= 0.5
    return {"recall": sum(hit.values()) / sum(total.values()), "regions_per_frame": float(np.mean(counts)),
            "by_category": {c: f"{hit[c]}/{n}" for c, n in sorted(total.items())}}


def naming_and_contact(engine, val: Path, frames: int, pair_frames: int) -> dict:
    n = box = cat = colour = 0
    errors, colour_errors = Counter(), Counter()
    pairs = []
    for k, s in enumerate(tqdm(list(iter_samples(val, frames)), desc="student", unit="frame")):
        scene = engine.infer(frame_from_sample(s))
        for o in s.objects:
            n += 1
            best = max(scene.detections, key=lambda d: iou(d.box2d, o.box2d), default=None)
            if best is None or iou(best.box2d, o.box2d) < 0.5:
                errors[f"missed {o.category}"] += 1
                continue
            box += 1
            if best.label != o.category:
                errors[f"{o.category} named {best.label}"] += 1
                continue
            cat += 1
            colour += best.color == o.color
            if best.color != o.color:
                colour_errors[f"{o.color} named {best.color}"] += 1
        if k >= pair_frames:
            continue
        by_desc = {d.description: d for d in scene.detections}
        names = {o.id: o.description for o in s.objects}
        for r in s.relations:
            a, b = names[r.subject], names[r.object]
            if r.touching is None or a not in by_desc or b not in by_desc:
                continue
            rel = [x for x in scene.relations if x.predicate == "touching" and {x.subject, x.object} == {a, b}]
            if rel:
                pairs.append((bool(r.touching), bool(rel[0].holds)))
    truth = np.array([t for t, _ in pairs])
    said = np.array([p for _, p in pairs])
    return {"objects": n, "box_found": box / n, "box_and_category": cat / n, "box_category_and_colour": colour / n,
            "top_errors": dict(errors.most_common(10)), "colour_errors": dict(colour_errors.most_common(5)),
            "contact_on_detected_pairs": {"frames": pair_frames, "pairs": len(pairs),
                                          "accuracy": float((truth == said).mean()) if pairs else None,
                                          "touching_recall": float(said[truth].mean()) if truth.any() else None}}


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: measure_detection_val.py VAL_DIR [MODEL_DIR]", file=sys.stderr)
        return 2
    val = Path(argv[0])
    model = Path(argv[1]) if len(argv) > 1 else REPO / "resource" / "models" / "student"
    out = {"data": str(val), "model": str(model),
           "proposals_60_frames": {"committed": proposal_recall(val, ProposalConfig(), 60),
                                   "earlier_floor_2.5cm_min30px": proposal_recall(val, EARLIER, 60),
                                   "without_on_floor_colour": proposal_recall(val, NO_FLOOR_COLOUR, 60)}}
    out["student_60_frames"] = naming_and_contact(load_engine(model), val, 60, 20)
    sweep = {}
    for thr in (0.3, 0.5, 0.7):
        m = evaluate(load_engine(model, score_threshold=thr), val, "student", limit=100, progress=False).to_json()
        sweep[str(thr)] = {k: m[k] for k in ("proximity_accuracy", "contact_accuracy", "detection_map50")}
    out["score_threshold_100_frames"] = sweep
    engine = load_engine(model)
    engine.proposal_config = NO_FLOOR_COLOUR
    m = evaluate(engine, val, "student", limit=100, progress=False).to_json()
    out["without_on_floor_colour_100_frames"] = {k: m[k] for k in ("proximity_accuracy", "contact_accuracy",
                                                                   "detection_map50")}
    path = REPO / "results" / "detection_val.json"
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
