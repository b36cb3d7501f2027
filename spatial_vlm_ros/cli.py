"""`spatial-vlm <command>`: one CLI for every job of the project.

Each command lives in its own module with `add_arguments(parser)` and `run(args) -> int`; modules
load lazily so `--help` is instant and training commands never import ROS. Errors reach the user
as one line and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("spatial_vlm_training.data.cli", "generate procedural RGB-D scenes with ground truth and QA"),
    "train": ("spatial_vlm_training.distill.cli_train", "train a model (the teacher) on ground truth"),
    "distill": ("spatial_vlm_training.distill.cli_distill", "distill the student from a teacher"),
    "train-regions": ("spatial_vlm_training.distill.region_train", "train (or distill) a model's region detection head"),
    "train-pieces": ("spatial_vlm_training.distill.piece_train", "train a model's head that joins pieces of one object"),
    "train-shades": ("spatial_vlm_training.distill.shade_train", "train a model's head that tells white, gray and black apart"),
    "eval": ("spatial_vlm_training.eval.cli", "score a model (or the geometric oracle) on a split"),
    "report": ("spatial_vlm_training.distill.report", "write results/reproduction.{md,json}"),
    "pseudo-label": ("spatial_vlm_training.data.pseudo_label", "label an unlabeled RGB-D recording with a detector teacher"),
    "demo": ("spatial_vlm_ros.ros.demo", "run the node on the bundled sequence or real frames and query it"),
    "node": ("spatial_vlm_ros.ros.node", "run the perception node"),
    "play": ("spatial_vlm_ros.ros.player", "publish an RGB-D sequence as ROS topics"),
    "query": ("spatial_vlm_ros.ros.query_client", "ask the running node a spatial question"),
    "bench": ("bench.cli", "run benchmarks and write bench/results/*.json"),
}


class CLIError(Exception):
    """Raised by commands for a user-facing failure; printed as one line."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="spatial-vlm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    module_name = COMMANDS[name][0]
    if module_name.startswith("bench."):
        # bench/ sits at the repo root next to this package's source (see README: Benchmarks).
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        print(f"spatial-vlm {name}: not available ({exc})", file=sys.stderr)
        return 2
    cmd = argparse.ArgumentParser(prog=f"spatial-vlm {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd)
    args = cmd.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (CLIError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"spatial-vlm {name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Under `python -m` this file runs as __main__; go through the package module so that the
    # CLIError commands raise is the same class `main` catches.
    from spatial_vlm_ros.cli import main as _package_main

    sys.exit(_package_main())
