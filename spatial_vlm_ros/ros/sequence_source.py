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
                                        f.annotated_detections() if f.objects else []))
            self._frames = frames
        if len(self) == 0:
            raise ValueError(f"{self.path}: no frames")

    def __len__(self) -> int:
        return len(self._samples) if self._samples is not None else len(self._frames)

    def __getitem__(self, i: int) -> PlayFrame:
        if self._frames is not None:
            return self._frames[i]
        s = self._samples[i]
        return PlayFrame(s.id, s.load_rgb(), s.load_depth(), s.intrinsics, s.up, truth=s)
