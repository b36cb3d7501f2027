"""`spatial-vlm eval --model DIR|oracle --data DIR --json OUT [--limit N] [--md OUT.md]`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.sample import read_meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="a model directory (spatial_vlm_ros.inference.engine.load_engine), 'oracle' (ground truth) "
                        "or 'geometry' (sensor depth under ground-truth masks, thresholded)")
    parser.add_argument("--data", required=True, type=Path, help="an svlm-scenes-1 split directory")
    parser.add_argument("--json", required=True, type=Path, help="where to write the metrics")
    parser.add_argument("--md", type=Path, help="also write a markdown table here")
    parser.add_argument("--limit", type=int, help="only the first N frames")
    parser.add_argument("--device", default="cpu", help="device for a model directory (latency is reported for it)")


def load_model(spec: str, data: Path, device: str = "cpu"):
    if spec == "oracle":
        from .oracle import OracleEngine

        return OracleEngine(data)
    if spec == "geometry":
        from .geometry_baseline import GeometryBaselineEngine

        return GeometryBaselineEngine(data)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model directory not found")
    try:
        from spatial_vlm_ros.inference.engine import load_engine
    except ImportError as exc:
        raise ValueError(f"cannot load models: spatial_vlm_ros.inference.engine unavailable ({exc})") from exc
    try:
        return load_engine(path, device=device)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc


def run(args: argparse.Namespace) -> int:
    from .harness import evaluate, markdown_table

    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be >= 1")
    read_meta(args.data)  # a bad split fails before a model is loaded
    engine = load_model(args.model, args.data, args.device)
    report = evaluate(engine, args.data, model_name=Path(args.model).name, limit=args.limit)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    table = markdown_table(report)
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(table)
    print(table, end="")
    return 0
