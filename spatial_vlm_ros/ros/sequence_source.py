"""RGB-D sequences the player can publish: a generated scene folder (svlm-scenes-1: meta.json +
samples.jsonl), an MCAP recording, or the real frames in ../shared/realdata (SUN RGB-D, NYUv2, TUM).

The readers of the data issue (spatial_vlm_training.data) do the decoding; this module only puts
them behind one random-access interface. No ROS here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..inference.types import CameraIntrinsics, Detection


@dataclass
class PlayFrame:
    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray | None  # (H, W) float32 metres, NaN = hole
    intrinsics: CameraIntrinsics
    up: np.ndarray | None = None
    annotations: list[Detection] = field(default_factory=list)  # annotated 2D boxes (real data)
    truth: object = None  # the SceneSample with ground truth relations, for generated scenes
    questions: list[tuple[str, str]] = field(default_factory=list)  # (question, "yes"/"no") known from ground truth


class SequenceSource:
    """Random access to the frames of one input; `len(src)` frames, `src[i]` decodes frame i."""

    def __init__(self, path: str | Path, every: int = 1, limit: int | None = None):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file or directory")
        if every < 1:
            raise ValueError("--every must be >= 1")
        self._samples = None
        self._frames: list[PlayFrame] | None = None
        if self.path.is_dir() and (self.path / "samples.jsonl").is_file():
            from spatial_vlm_training.data.sample import iter_samples

            self.kind = "scenes"
            self._samples = list(iter_samples(self.path))[::every][:limit]
        else:
            from spatial_vlm_training.data.realdata import read_recording

            self.kind = "mcap" if self.path.suffix == ".mcap" else "realdata"
            frames = []
            for i, f in enumerate(read_recording(self.path, every=every)):
                if limit is not None and i >= limit:
                    break
                frames.append(PlayFrame(f.name, f.rgb, f.depth, f.intrinsics, f.up,
                                        f.annotated_detections() if f.objects else [],
                                        questions=_annotated_questions(f) if f.objects else []))
            self._frames = frames
        if len(self) == 0:
            raise ValueError(f"{self.path}: no frames")

    def __len__(self) -> int:
        return len(self._samples) if self._samples is not None else len(self._frames)

    def __getitem__(self, i: int) -> PlayFrame:
        if self._frames is not None:
            return self._frames[i]
        s = self._samples[i]
        questions = [(q.question, q.answer) for q in s.qa if q.kind == "yesno"]
        return PlayFrame(s.id, s.load_rgb(), s.load_depth(), s.intrinsics, s.up, truth=s, questions=questions)


def _annotated_questions(frame) -> list[tuple[str, str]]:
    """Yes/no questions read off the annotated 3D boxes of a real frame (support and contact)."""
    names = {d.id: d.description for d in frame.annotated_detections()}
    out = []
    for r in frame.annotated_relations():
        verb = "on" if r.predicate == "on" else "touching"
        out.append((f"Is the {names[r.subject_id]} {verb} the {names[r.object_id]}?", "yes"))
    return out


def load_annotations(path: str | Path) -> dict[str, list[Detection]]:
    """frame name -> annotated 2D boxes of a realdata folder. The player publishes such frames with
    `--frame-id-from-name`, so the geometric engine finds each frame's boxes by its frame_id."""
    source = SequenceSource(path)
    found = {source[i].name: source[i].annotations for i in range(len(source)) if source[i].annotations}
    if not found:
        raise ValueError(f"{path}: no annotated boxes (expected SUN RGB-D frames with boxes.json)")
    return found
