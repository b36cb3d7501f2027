"""Teachers for distillation. Every teacher writes the same on-disk format (see precomputed.py), which
the student's training reads through `PrecomputedTeacher`; `load_teacher` picks the implementation
from what the folder holds."""
from __future__ import annotations

import json
from pathlib import Path

from .base import Teacher
from .embedded import EmbeddedTeacher
from .hf_vlm import HFVLMTeacher
from .precomputed import TEACHER_FORMAT, PrecomputedTeacher


def load_teacher(path: Path | str, device: str = "cpu") -> Teacher:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: teacher folder not found")
    if (path / "teacher_meta.json").is_file():
        return PrecomputedTeacher(path)
    cfg = path / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"{cfg}: missing (neither a model folder nor precomputed teacher outputs)")
    try:
        model_type = json.loads(cfg.read_text()).get("model_type", "")
    except json.JSONDecodeError as exc:
        raise ValueError(f"{cfg}: corrupt JSON ({exc})") from exc
    if model_type == "spatial_vlm":
        return EmbeddedTeacher(path, device)
    return HFVLMTeacher(path, device)


__all__ = ["TEACHER_FORMAT", "EmbeddedTeacher", "HFVLMTeacher", "PrecomputedTeacher", "Teacher", "load_teacher"]
