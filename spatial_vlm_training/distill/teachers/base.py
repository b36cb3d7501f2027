"""The teacher interface."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Teacher(Protocol):
    source: str  # what the teacher is, for logs and the report

    def dump(self, split_dir: Path, out_dir: Path, student_tokenizer) -> Path:
        """Run the teacher over a split and write its outputs in the precomputed format to out_dir."""
        ...
