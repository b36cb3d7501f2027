"""Plumbing shared by the commands that add one small head to a saved model and train it on that
model's own detections (train-pieces, train-shades): their common arguments, running the model's
engine over a split in worker processes, and saving the result next to the source model's records."""
from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from tqdm import tqdm

from spatial_vlm_ros.inference.engine import SpatialVLMEngine, load_engine
from spatial_vlm_ros.model import SpatialVLM
from spatial_vlm_ros.model.build import save_model
from spatial_vlm_training.data.sample import SceneSample, iter_samples

from .cache import process_pool

MODEL_FILES = {"config.json", "model.safetensors", "tokenizer"}  # what save_model writes
T = TypeVar("T")


def add_head_arguments(parser: argparse.ArgumentParser, frames: int, val_use: str) -> None:
    parser.add_argument("--model", required=True, type=Path, help="saved SpatialVLM folder with a region head")
    parser.add_argument("--data", required=True, type=Path, help="training split")
    parser.add_argument("--val", required=True, type=Path, help=f"validation split ({val_use})")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--frames", type=int, default=frames, help="training frames (0 = the whole split)")
    parser.add_argument("--val-frames", type=int, default=200)


_ENGINE: SpatialVLMEngine | None = None
_PER_FRAME: Callable | None = None


def _init_worker(model_dir: str, configure: Callable[[SpatialVLMEngine], None], per_frame: Callable) -> None:
    global _ENGINE, _PER_FRAME
    torch.set_num_threads(1)
    _ENGINE = load_engine(model_dir)
    configure(_ENGINE)
    _PER_FRAME = per_frame


def _job(sample: SceneSample):
    return _PER_FRAME(_ENGINE, sample)


def map_frames(model_dir: Path | str, split_dir: Path | str, limit: int,
               configure: Callable[[SpatialVLMEngine], None], per_frame: Callable[[SpatialVLMEngine, SceneSample], T],
               desc: str) -> list[T]:
    """per_frame(engine, sample) for the first `limit` samples of a split (0 = all), in order, on worker
    processes that each load the model's engine and `configure` it. Both callables must be module-level
    functions (they travel to the workers by name)."""
    samples = list(iter_samples(Path(split_dir), limit or None))
    with process_pool(initializer=_init_worker, initargs=(str(model_dir), configure, per_frame)) as pool:
        return list(tqdm(pool.map(_job, samples, chunksize=4), total=len(samples), desc=desc, unit="frame"))


def save_with_records(model: SpatialVLM, tokenizer, source: Path, out: Path) -> None:
    """save_model, plus the source model's training records (train_summary.json, plots, ...)."""
    save_model(model, tokenizer, out)
    if source.resolve() != out.resolve():
        for extra in source.iterdir():
            if extra.name not in MODEL_FILES and extra.is_file():
                shutil.copyfile(extra, out / extra.name)
