"""`spatial-vlm distill --config config/distill_student.yaml --teacher DIR --data DIR --out DIR`.

The teacher folder may be a SpatialVLM (the embedded teacher), any transformers image-text-to-text
model, or precomputed teacher outputs (teachers/precomputed.py). Model teachers are first run over the
training split once; their outputs are kept in --teacher-outputs (default OUT/teacher_outputs)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli_train import add_common, overrides
from .config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--teacher", required=True, type=Path, help="teacher folder (model or precomputed outputs)")
    parser.add_argument("--teacher-outputs", type=Path, help="where the teacher's outputs go / are reused from")
    parser.add_argument("--device", default="cpu", help="device for running a model teacher")


def run(args: argparse.Namespace) -> int:
    from spatial_vlm_training.data.sample import read_meta

    from .teachers import PrecomputedTeacher, load_teacher
    from .trainer import train

    cfg = TrainConfig.from_yaml(args.config, overrides(args))
    read_meta(args.data)
    teacher = load_teacher(args.teacher, args.device)
    if not isinstance(teacher, PrecomputedTeacher):
        dump_dir = args.teacher_outputs or (args.out / "teacher_outputs")
        if not (dump_dir / "teacher_meta.json").is_file():
            if hasattr(teacher, "model") and teacher.__class__.__name__ == "EmbeddedTeacher":
                teacher.dump(args.data, dump_dir, None, limit=cfg.max_train_samples, dense_limit=cfg.teacher_dense_frames,
                             proposal_share=cfg.proposal_mask_share, answers_only=cfg.language_only)
            else:
                teacher.dump(args.data, dump_dir, None, limit=cfg.max_train_samples)
        teacher = PrecomputedTeacher(dump_dir)
    result = train(cfg, args.data, args.out, val_dir=args.val, teacher=teacher, resume=args.resume)
    print(f"distilled {result.parameters / 1e6:.2f} M parameters for {result.steps} steps in "
          f"{result.seconds / 60:.1f} min -> {result.out_dir}; val {result.val}")
    return 0
