"""Shared by the CPU benchmarks: percentiles, machine description, JSON results, generated frames."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def summarize_ms(samples_ms: list[float]) -> dict:
    """median / p95 / mean / min / max of a latency sample, in ms."""
    if not samples_ms:
        return {"n": 0}
    a = np.asarray(samples_ms, dtype=np.float64)
    return {"n": int(a.size), "median_ms": round(float(np.median(a)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "mean_ms": round(float(a.mean()), 3), "min_ms": round(float(a.min()), 3), "max_ms": round(float(a.max()), 3)}


def machine() -> dict:
    """What the numbers were measured on; absolute times mean nothing without it."""
    import psutil

    info = {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_GB": round(psutil.virtual_memory().total / 1e9, 1), "python": platform.python_version(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


def generated_frames(n: int, seed: int = 11, width: int = 640, height: int = 480, workdir: Path | None = None):
    """`n` procedural RGB-D frames (RGBDFrame, sensor-like depth with holes) from the project's generator.

    Uses the validation split's seed space: benchmarks only time the model, they never tune on data."""
    from spatial_vlm_training.data.generator import GenerateConfig, generate_split
    from spatial_vlm_training.data.resize import frame_from_sample
    from spatial_vlm_training.data.sample import iter_samples

    if n < 1:
        raise ValueError("need at least one frame")
    out = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="svlm_bench_frames_"))
    out.mkdir(parents=True, exist_ok=True)
    generate_split(GenerateConfig(out=out, split="val", seed=seed, n_scenes=n, width=width, height=height))
    return [frame_from_sample(s) for s in iter_samples(out, limit=n)]


def load_frames(frames_dir: Path, n: int):
    """Frames written earlier by `generated_frames` (child processes reuse them instead of re-rendering)."""
    from spatial_vlm_training.data.resize import frame_from_sample
    from spatial_vlm_training.data.sample import iter_samples

    return [frame_from_sample(s) for s in iter_samples(frames_dir, limit=n)]
