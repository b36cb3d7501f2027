"""Generate a training split, skipping scenes the procedural generator cannot build.

The generator (spatial_vlm_training/data) stops a whole split on one bad scene; for hours-long
training data one lost scene is fine, a lost split is not. Usage:
    python -m spatial_vlm_training.distill.make_split --out DIR --scenes N --seed S --split train --workers W
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path

from spatial_vlm_training.data import generator


def _safe_worker(args) -> list[str]:
    try:
        return generator.generate_scene(*args)
    except Exception as exc:  # a scene the generator cannot build is skipped, not fatal
        print(f"skipping scene {args[1]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scenes", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--split", choices=sorted(generator.SPLIT_CODES), default="train")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    cfg = generator.GenerateConfig(a.out, a.split, a.seed, a.scenes, workers=a.workers)
    (cfg.out / "frames").mkdir(parents=True, exist_ok=True)
    tasks = [(cfg, i) for i in range(cfg.n_scenes)]
    with mp.get_context("spawn").Pool(max(1, a.workers)) as pool:
        summary = generator._run(cfg, pool.imap(_safe_worker, tasks, chunksize=1), cfg.n_scenes,
                                 f"generate {cfg.split}")
    print(f"wrote {summary['frames']} frames to {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
