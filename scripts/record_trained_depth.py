#!/usr/bin/env python3
"""Record in saved models the depth their region head was trained to (config.max_trained_depth_m), for
models whose region head was trained before `spatial-vlm train-regions` recorded it itself.

The value is region_data.max_trained_depth_m of the training split: 10 % beyond its deepest object centre.
The engine then scores no proposal deeper than that (node parameter `model.max_depth_m`). Each model's
region_summary.json notes the value and the split it came from.

    scripts/record_trained_depth.py --data TRAIN_SPLIT MODEL_DIR [MODEL_DIR ...]"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spatial_vlm_ros.inference.engine import load_config
from spatial_vlm_training.distill.region_data import max_trained_depth_m


def record(model_dir: Path, depth_m: float, data: Path) -> None:
    config = load_config(model_dir)
    if not config.use_region_head:
        raise ValueError(f"{model_dir / 'config.json'}: the model has no region head")
    config.max_trained_depth_m = depth_m
    config.save_pretrained(model_dir)
    summary_path = model_dir / "region_summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        summary.update(max_trained_depth_m=depth_m, max_trained_depth_data=str(data))
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the training split the region heads learned from")
    ap.add_argument("models", type=Path, nargs="+")
    args = ap.parse_args(argv)
    try:
        depth = max_trained_depth_m(args.data)
        for m in args.models:
            record(m, depth, args.data)
    except (OSError, ValueError) as exc:
        print(f"record_trained_depth: {exc}", file=sys.stderr)
        return 1
    print(f"max_trained_depth_m = {depth} m -> {', '.join(str(m) for m in args.models)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
