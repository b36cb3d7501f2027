"""`spatial-vlm train --config config/train_teacher.yaml --data DIR --val DIR --out DIR`: train a model
(the embedded teacher) on ground truth."""
from __future__ import annotations

import argparse
from pathlib import Path

from .config import TrainConfig


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="YAML training config (config/*.yaml)")
    parser.add_argument("--data", required=True, type=Path, help="training split (spatial-vlm generate)")
    parser.add_argument("--val", type=Path, help="validation split (accuracy with ground-truth boxes at the end)")
    parser.add_argument("--out", required=True, type=Path, help="output model folder")
    parser.add_argument("--max-steps", type=int, help="override: stop after N steps")
    parser.add_argument("--epochs", type=float, help="override: epochs over the training split")
    parser.add_argument("--max-minutes", type=float, help="override: wall-clock budget")
    parser.add_argument("--limit", type=int, help="override: use only the first N training frames")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    parser.add_argument("--init-from", type=Path, help="override: start from this saved model (config init_from)")


def overrides(args: argparse.Namespace) -> dict:
    o = {}
    for arg, key in (("max_steps", "max_steps"), ("epochs", "epochs"), ("max_minutes", "max_minutes"),
                     ("limit", "max_train_samples"), ("seed", "seed")):
        v = getattr(args, arg, None)
        if v is not None:
            o[key] = v
    if getattr(args, "init_from", None) is not None:
        o["init_from"] = str(args.init_from)
    if "epochs" in o and "max_steps" not in o:
        o["max_steps"] = 0
    return o


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    from spatial_vlm_training.data.sample import read_meta

    from .trainer import train

    cfg = TrainConfig.from_yaml(args.config, overrides(args))
    read_meta(args.data)
    if args.val:
        read_meta(args.val)
    result = train(cfg, args.data, args.out, val_dir=args.val, resume=args.resume)
    print(f"trained {result.parameters / 1e6:.2f} M parameters for {result.steps} steps in {result.seconds / 60:.1f} min "
          f"-> {result.out_dir}; val {result.val}")
    return 0
