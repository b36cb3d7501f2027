#!/usr/bin/env python3
"""Where the objects the detector misses are lost: for each ground-truth object with no detection at
box IoU 0.5, the first stage of the region pathway that lost it (never run it on the test split).

    scripts/measure_missed_objects.py SPLIT_DIR [--model DIR] [--frames 100] [--out FILE]

Stages, from the engine's own proposals and region-head probabilities (engine.regions_of):
- `no proposal`: no class-agnostic proposal at IoU 0.5;
- `below score threshold`: proposals there, none scored as an object above the engine's threshold;
- `suppressed by NMS`: scored, but a better-scored overlapping region was kept instead;
- `max_objects cap`, `merged into another's group`: as named (region_selection.select_regions);
- `kept, lost later`: kept, then its box was spoilt by the group union or the piece head dropped it.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.region_proposals import box_iou
from spatial_vlm_ros.inference.region_selection import select_regions
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples
from spatial_vlm_training.eval.metrics import iou

REPO = Path(__file__).resolve().parents[1]


def stage(engine, regions, gt: np.ndarray) -> str:
    probs = regions.probs
    boxes = np.stack([p.box for p in regions.proposals])
    good = [int(i) for i in np.flatnonzero(box_iou(gt[None], boxes)[0] >= 0.5)]
    if not good:
        return "no proposal"
    score = probs[:, 1:].max(1)
    if score[good].max() < engine.score_threshold:
        return "below score threshold"
    every = select_regions(regions.proposals, probs, regions.objects, engine.score_threshold, len(probs))
    heads = {g[0] for g, _, _ in every[:engine.max_objects]}  # what select_regions keeps under the cap
    if heads & set(good):
        return "kept, lost later"
    if {g[0] for g, _, _ in every} & set(good):
        return "max_objects cap"
    if {i for g, _, _ in every for i in g} & set(good):
        return "merged into another's group"
    return "suppressed by NMS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", type=Path)
    parser.add_argument("--model", type=Path, default=REPO / "resource/models/student")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "results/missed_objects_val.json")
    args = parser.parse_args(argv)
    if not (args.split / "samples.jsonl").is_file():
        print(f"error: {args.split}: not a generated split (no samples.jsonl)", file=sys.stderr)
        return 2
    engine = load_engine(args.model)
    if engine.model.region_head is None:
        print(f"error: {args.model}: no region head, so there are no proposals to trace", file=sys.stderr)
        return 2
    stages, by_category = Counter(), Counter()
    for s in tqdm(list(iter_samples(args.split, args.frames)), desc="objects", unit="frame"):
        frame = frame_from_sample(s)
        w, h = frame.size
        scene = engine.infer(frame)
        regions = engine.regions_of(scene)
        for o in s.objects:
            if max((iou(d.box2d, o.box2d) for d in scene.detections), default=0.0) >= 0.5:
                stages["found"] += 1
                continue
            gt = np.asarray(o.box2d, float) / [w, h, w, h]
            why = stage(engine, regions, gt) if regions else "no proposal"
            stages[why] += 1
            by_category[f"{why}: {o.category}"] += 1
    out = {"data": str(args.split), "model": str(args.model), "frames": args.frames,
           "objects": sum(stages.values()), "stages": dict(stages.most_common()),
           "by_category": dict(by_category.most_common())}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
