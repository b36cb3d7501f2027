#!/usr/bin/env python3
"""Write results/seed_spread_val.json: how far end-to-end answer accuracy moves when only the RANSAC
seed of the proposal stage's plane fit changes (validation split, never test).

    scripts/measure_seed_spread.py VAL_DIR [--models DIR ...] [--seeds 0 1 2] [--frames 100]

The spread is the noise floor of every val A/B in results/NOTES.md: a change that moves accuracy by
less than it is not distinguishable from re-drawing the planes."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spatial_vlm_ros.inference.engine import load_engine
from spatial_vlm_training.distill.report import seed_range, seed_runs

REPO = Path(__file__).resolve().parents[1]


def spread(engine, val: Path, seeds: list[int], frames: int, name: str) -> dict:
    runs = {seed: {k: round(v, 4) for k, v in metrics.items()}
            for seed, metrics in seed_runs(engine, val, frames, seeds, name).items()}
    for seed, metrics in runs.items():
        print(name, seed, metrics, flush=True)
    summary = {k: {"min": lo, "max": hi, "spread_points": round(100 * (hi - lo), 2)}
               for k, (lo, hi) in seed_range(runs).items()}
    return {"per_seed": runs, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", type=Path)
    parser.add_argument("--models", type=Path, nargs="+",
                        default=[REPO / "resource/models/student", REPO / "resource/models/teacher"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "results/seed_spread_val.json")
    args = parser.parse_args(argv)
    if not (args.val / "samples.jsonl").is_file():
        print(f"error: {args.val}: not a generated split (no samples.jsonl)", file=sys.stderr)
        return 2
    out = {"data": str(args.val), "frames": args.frames, "seeds": args.seeds,
           "what": "ProposalConfig.plane_seed only; everything else fixed", "models": {}}
    for model in args.models:
        out["models"][model.name] = spread(load_engine(model), args.val, args.seeds, args.frames, model.name)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
