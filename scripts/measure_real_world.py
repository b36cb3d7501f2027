#!/usr/bin/env python3
"""Write results/real_world.json: relations the geometry engine finds on the SUN RGB-D frames of
../shared/realdata with the annotated 2D boxes as detections (the README's real-frame table)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from spatial_vlm_ros.inference.geometry_engine import GeometryEngine
from spatial_vlm_training.data.realdata import box_center_error, read_frames

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else REPO.parent / "shared" / "realdata" / "sunrgbd_mmdet3d"
    if not src.is_dir():
        print(f"measure_real_world: no SUN RGB-D frames at {src}", file=sys.stderr)
        return 1
    engine = GeometryEngine(detector="annotations")
    out: dict[str, dict] = {}
    for rf in read_frames(src):
        scene = engine.infer(rf.to_rgbd_frame(), detections=rf.annotated_detections())
        truth = {o.id: o.box3d for o in rf.objects}
        errors = {d.id: round(box_center_error(d.box3d, truth[d.id]), 3) for d in scene.detections
                  if d.box3d is not None and truth.get(d.id) is not None}
        out[rf.name] = {
            "relations_that_hold": [{"text": r.text, "confidence": round(r.confidence, 3),
                                     "distance_m": None if r.distance_m != r.distance_m else round(r.distance_m, 4)}
                                    for r in scene.relations if r.holds and r.predicate in ("on", "touching")],
            "center_error_3d_m": errors,
        }
    (REPO / "results" / "real_world.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
