"""Carry what the language path trains on to another machine (a rented GPU without open3d or the
5 GB of rendered frames): each split's meta.json, questions and cached object/pair features.

    python3 scripts/language_pack.py make --data DIR --val DIR --share 0.75 --out PACK   # here
    python3 scripts/language_pack.py unpack PACK DEST                                 # there

`unpack` rebuilds DEST/train and DEST/val as splits whose feature caches are already filled, so
`spatial-vlm train|distill --data DEST/train` never needs the frames."""
from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spatial_vlm_training.distill.cache import features_path, load_features  # noqa: E402

MAX_OBJECTS = 10
VAL_FRAMES = 200  # the finetune configs' max_val_samples


def _copy(src: Path, dst: Path, opener_in=open, opener_out=open) -> None:
    with opener_in(src, "rb") as f, opener_out(dst, "wb") as g:
        shutil.copyfileobj(f, g)


def make(args: argparse.Namespace) -> None:
    out = Path(args.out)
    for name, src, limit, share in (("train", args.data, 0, args.share), ("val", args.val, VAL_FRAMES, 0.0)):
        src, dst = Path(src), out / name
        dst.mkdir(parents=True, exist_ok=True)
        load_features(src, MAX_OBJECTS, limit, desc=name, proposal_share=share)  # fills the cache if missing
        shutil.copy(src / "meta.json", dst / "meta.json")
        _copy(src / "samples.jsonl", dst / "samples.jsonl.gz", opener_out=gzip.open)
        (dst / "cache.txt").write_text(f"{limit} {share}\n")
        shutil.copy(features_path(src, MAX_OBJECTS, limit, share), dst / "features.pkl")
    if args.teacher_outputs:
        src, dst = Path(args.teacher_outputs), out / "teacher_outputs"
        shutil.copytree(src / "tokenizer", dst / "tokenizer", dirs_exist_ok=True)
        shutil.copy(src / "teacher_meta.json", dst / "teacher_meta.json")
        _copy(src / "answers.jsonl", dst / "answers.jsonl.gz", opener_out=gzip.open)
    print(f"pack -> {out}")


def unpack(args: argparse.Namespace) -> None:
    for name in ("train", "val"):
        src, dst = Path(args.pack) / name, Path(args.dest) / name
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "meta.json", dst / "meta.json")
        _copy(src / "samples.jsonl.gz", dst / "samples.jsonl", opener_in=gzip.open)
        limit, share = (src / "cache.txt").read_text().split()
        cached = features_path(dst, MAX_OBJECTS, int(limit), float(share))
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "features.pkl", cached)
    src, dst = Path(args.pack) / "teacher_outputs", Path(args.dest) / "teacher_outputs"
    if src.is_dir():
        shutil.copytree(src / "tokenizer", dst / "tokenizer")
        shutil.copy(src / "teacher_meta.json", dst / "teacher_meta.json")
        _copy(src / "answers.jsonl.gz", dst / "answers.jsonl", opener_in=gzip.open)
    print(f"splits -> {args.dest}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--data", required=True)
    m.add_argument("--val", required=True)
    m.add_argument("--share", type=float, default=0.75, help="proposal_mask_share of the finetune configs")
    m.add_argument("--teacher-outputs", help="also carry a teacher's answers (then the teacher is not fine-tuned there)")
    m.add_argument("--out", required=True)
    u = sub.add_parser("unpack")
    u.add_argument("pack")
    u.add_argument("dest")
    args = parser.parse_args()
    (make if args.cmd == "make" else unpack)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
