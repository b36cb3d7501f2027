#!/usr/bin/env python3
"""Write results/published_gaps_<split>.json: how close the metric gap the node publishes
(`SpatialRelation.distance_m`, from `ros/fusion.cross_check`) is to the ground-truth surface gap, for the
pairs whose two objects the student detected (box IoU >= 0.5), and what the cross-check costs per frame.

Two ways of choosing each object's points run on the same detections: `masks`, the detection's own pixels
(what the node does since the detections carry their masks), and `boxes`, the points inside the detection's
3D box (what it did before: the table top or floor inside the box came along). A pair is judged touching
when its gap is at most the contact decision boundary (geometry.RelationThresholds, 2 cm), which only the
`geometry` fusion rule uses for its answers; the default rule (`model`) publishes the gap beside the model's
answer.

    scripts/measure_published_gaps.py SPLIT_DIR [--model DIR] [--frames N] [--out FILE]"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_ros.inference.geometry import DEFAULT_THRESHOLDS
from spatial_vlm_ros.ros.fusion import cross_check
from spatial_vlm_training.data.resize import frame_from_sample
from spatial_vlm_training.data.sample import iter_samples, read_meta, split_fingerprint
from spatial_vlm_training.eval.metrics import iou

REPO = Path(__file__).resolve().parents[1]
WAYS = ("masks", "boxes")


def matched_objects(detections, objects) -> dict[str, str]:
    """Detection id -> ground-truth object id, at box IoU >= 0.5 (the best match of each detection)."""
    out = {}
    for d in detections:
        best = max(((iou(d.box2d, o.box2d), o.id) for o in objects), default=(0.0, None))
        if best[0] >= 0.5:
            out[d.id] = best[1]
    return out


def summarise(gaps: list[tuple[float, float, bool | None]], times_ms: list[float]) -> dict:
    est = np.array([g[0] for g in gaps], float)
    true = np.array([g[1] for g in gaps], float)
    touching = np.array([g[2] is True for g in gaps])
    apart = np.array([g[2] is False for g in gaps])
    ok = np.isfinite(est)
    error = np.abs(est - true)
    err = error[ok]
    decide = DEFAULT_THRESHOLDS.contact_decision_m
    return {
        "pairs": len(gaps), "measured": int(ok.sum()),
        "abs_error_median_m": round(float(np.median(err)), 4) if len(err) else None,
        "abs_error_p90_m": round(float(np.percentile(err, 90)), 4) if len(err) else None,
        "abs_error_median_touching_m": round(float(np.median(error[ok & touching])), 4),
        "abs_error_median_apart_m": round(float(np.median(error[ok & apart])), 4),
        "touching_pairs": int(touching.sum()), "apart_pairs": int(apart.sum()),
        "touching_judged_touching": int((ok & touching & (est <= decide)).sum()),
        "apart_judged_apart": int((ok & apart & (est > decide)).sum()),
        "cross_check_ms_median": round(float(np.median(times_ms)), 1),
        "cross_check_ms_mean": round(float(np.mean(times_ms)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("split", type=Path)
    parser.add_argument("--model", type=Path, default=REPO / "resource" / "models" / "student")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    try:
        meta = read_meta(args.split)
        engine = load_engine(args.model)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gaps: dict[str, list] = {w: [] for w in WAYS}
    times: dict[str, list] = {w: [] for w in WAYS}
    for sample in tqdm(iter_samples(args.split, args.frames), total=args.frames, desc="frames"):
        frame = frame_from_sample(sample)
        scene = engine.infer(frame)
        match = matched_objects(scene.detections, sample.objects)
        truth = {(r.subject, r.object): r for r in sample.relations}
        for way in WAYS:
            dets = scene.detections if way == "masks" else [dataclasses.replace(d, mask=None) for d in scene.detections]
            t = time.perf_counter()
            checked = cross_check(dataclasses.replace(scene, detections=dets), frame, "model")
            times[way].append((time.perf_counter() - t) * 1000)
            seen = set()
            for r in checked.relations:
                a, b = match.get(r.subject_id), match.get(r.object_id)
                if a is None or b is None or a == b or (a, b) not in truth or frozenset((a, b)) in seen:
                    continue
                seen.add(frozenset((a, b)))
                g = truth[(a, b)]
                gaps[way].append((r.distance_m, g.gap_m, g.touching))
    result = {"data": str(args.split), "data_sha256": split_fingerprint(args.split, args.frames),
              "split": meta.split, "frames": args.frames, "model": str(args.model),
              "contact_decision_m": DEFAULT_THRESHOLDS.contact_decision_m,
              **{way: summarise(gaps[way], times[way]) for way in WAYS}}
    out = args.out or REPO / "results" / f"published_gaps_{meta.split}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for way in WAYS:
        s = result[way]
        print(f"{way}: median |gap error| {s['abs_error_median_m'] * 100:.1f} cm over {s['measured']} pairs; touching "
              f"{s['touching_judged_touching']}/{s['touching_pairs']}, apart {s['apart_judged_apart']}/"
              f"{s['apart_pairs']}; cross_check {s['cross_check_ms_median']:.0f} ms/frame (median)")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
