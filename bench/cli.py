"""`spatial-vlm bench {model,node,gpu,all}`: run benchmarks and write bench/results/*.json.

model: embedded teacher vs student on the CPU (latency, size, memory, Hidden CoT K sweep).
node:  the ROS 2 node end to end (30 Hz 640x480 RGB-D stream, then the query service under load).
gpu:   the paper-size static engine vs eager generate (skips cleanly without CUDA).
report: rewrite bench/README.md from bench/results/*.json.
all:   model and node, and gpu when CUDA is present, then report.
"""
from __future__ import annotations

import argparse
import importlib

SUITES = {
    "model": "bench.model_bench",
    "node": "bench.node_bench",
    "gpu": "bench.paper_scale_gpu",
    "report": "bench.report",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="suite", metavar="SUITE", required=True)
    for name, module_name in SUITES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # a suite whose dependencies are missing must not hide the others
            sub.add_parser(name, help=f"unavailable: {exc}")
            continue
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or name).strip().splitlines()[0]))
    all_parser = sub.add_parser("all", help="model + node (+ gpu when CUDA is present), default settings")
    all_parser.add_argument("--quick", action="store_true", help="short runs (smoke settings) for every suite")


def _suite(name: str):
    try:
        return importlib.import_module(SUITES[name])
    except ImportError as exc:
        raise ValueError(f"benchmark suite {name!r} is unavailable: {exc}") from None


def run(args: argparse.Namespace) -> int:
    if args.suite != "all":
        return int(_suite(args.suite).run(args) or 0)
    import torch

    failures = []
    for name in ("model", "node", "gpu"):
        if name == "gpu" and not torch.cuda.is_available():
            print("bench gpu: skipped: no CUDA")
            continue
        module = _suite(name)
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        suite_args = parser.parse_args(module.QUICK_ARGS if args.quick else [])
        print(f"== bench {name} ==", flush=True)
        try:
            if int(module.run(suite_args) or 0) != 0:
                failures.append(name)
        except (ValueError, OSError) as exc:  # one suite failing must not cost the others
            print(f"bench {name}: error: {exc}")
            failures.append(name)
    report = _suite("report")
    report.run(argparse.Namespace(out=report.README))
    if failures:
        print(f"bench all: failed: {', '.join(failures)}")
        return 1
    return 0
