"""`spatial-vlm generate`: procedural RGB-D scenes with exact ground truth and QA (svlm-scenes-1)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .generator import SPLIT_CODES, GenerateConfig, generate_sequence, generate_split


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output split directory")
    parser.add_argument("--scenes", type=int, default=100, help="number of scenes (ignored with --sequence)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=sorted(SPLIT_CODES), default="train")
    parser.add_argument("--workers", type=int, default=1, help="processes (the bytes do not depend on it)")
    parser.add_argument("--views", type=int, default=1, help="camera views per scene")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--questions-per-type", type=int, default=3,
                        help="yes/no questions per answer and relation type per frame")
    parser.add_argument("--sequence", action="store_true",
                        help="render ONE scene seen by a camera moving around it (the node demo input)")
    parser.add_argument("--frames", type=int, default=100, help="frames of --sequence")
    parser.add_argument("--no-preview", action="store_true", help="skip DIR/preview.png (RGB+boxes | depth | masks)")


def run(args: argparse.Namespace) -> int:
    for name in ("scenes", "views", "width", "height", "workers", "frames", "questions_per_type"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    if args.width < 32 or args.height < 32:
        raise ValueError("--width and --height must be at least 32 pixels")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"{args.out}: exists and is not a directory")
    cfg = GenerateConfig(args.out, args.split, args.seed, args.scenes, args.views, args.width, args.height,
                         args.workers, args.questions_per_type)
    start = time.perf_counter()
    summary = generate_sequence(cfg, args.frames) if args.sequence else generate_split(cfg)
    elapsed = time.perf_counter() - start
    if not args.no_preview:
        from .preview import write_preview

        write_preview(args.out, args.out / "preview.png")
    per_frame = 1000 * elapsed / max(1, summary["frames"])
    counts = ", ".join(f"{k}={v}" for k, v in summary.items() if k != "frames")
    print(f"wrote {summary['frames']} frames to {args.out} in {elapsed:.1f} s ({per_frame:.0f} ms/frame); {counts}")
    return 0
