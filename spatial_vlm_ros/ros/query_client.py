"""`query_client` / `spatial-vlm query "is the mug on the book?"`: ask the running node one question."""
from __future__ import annotations

import argparse
import math
import sys

TYPES = {"any": 255, "proximity": 0, "contact": 1, "support": 2}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", default="", help="free text, e.g. 'is the red mug near the laptop?'")
    parser.add_argument("--subject", default="", help="structured query: subject referring expression")
    parser.add_argument("--object", default="", help="structured query: object referring expression")
    parser.add_argument("--type", choices=sorted(TYPES), default="any", help="structured query: relation type")
    parser.add_argument("--node", default="/spatial_vlm_node", help="full name of the perception node")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the service and answer")


def format_response(resp) -> str:
    if not resp.success:
        return f"no answer: {resp.message}"
    lines = [f"{resp.answer}  (confidence {resp.confidence:.2f})"]
    for r in resp.relations:
        gap = f", gap {r.distance_m * 100:.1f} cm" if math.isfinite(r.distance_m) else ""
        lines.append(f"  - {r.text} [{r.source}, p={r.confidence:.2f}{gap}]")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not (args.question or args.subject or args.object):
        raise ValueError("give a question or --subject/--object")
    from .graph_client import GraphClient

    client = GraphClient(node_fqn=args.node, name="spatial_vlm_query", collect=False, inputs=False)
    try:
        resp = client.query(args.question, args.subject, args.object, TYPES[args.type], timeout_s=args.timeout)
    except TimeoutError as exc:
        raise OSError(str(exc)) from exc
    finally:
        client.close()
    print(format_response(resp))
    return 0 if resp.success else 3


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in argv:
        argv = argv[: argv.index("--ros-args")]
    parser = argparse.ArgumentParser(prog="query_client", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except (ValueError, OSError) as exc:
        print(f"query_client: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
