"""Build a SpatialEngine from the node's parameters (backend, model path, device, precision, thresholds).

Backends:
- `student`  - the distilled student (inference/engine.py `load_engine`), the default;
- `oid_ssd`  - the geometric engine: SSD-MobileNetV2 (Open Images) 2D boxes lifted with measured depth;
- `both`     - the student's relations and answers over the SSD detector's boxes, when the
               student engine accepts an external detector (else configure fails with one line);
- `annotations` - the geometric engine over given 2D boxes (`EngineSpec.annotations`: frame_id ->
               detections), e.g. the annotated boxes of the real SUN RGB-D frames.
Engines are imported lazily so a node that runs the student never imports the detector runtime.
Errors are one line: FileNotFoundError for a missing model, ValueError for bad settings.
"""
from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .geometry import RelationThresholds
from .types import DEFAULT_SCORE_THRESHOLD, SpatialEngine

BACKENDS = ("student", "oid_ssd", "both", "annotations")
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
STUDENT_FILES = ("config.json",)


@dataclass
class EngineSpec:
    backend: str = "student"
    model_path: str = ""  # empty = the embedded default student
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | fp16 | bf16
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    hidden_cot_k: int = -1  # < 0 = the checkpoint's own K
    max_objects: int = 12
    drop_pieces: bool = True  # the student's piece head, when its checkpoint has one
    max_depth_m: float = -1.0  # < 0 = the depth the checkpoint's region head was trained to; 0 = no limit
    thresholds: RelationThresholds = field(default_factory=RelationThresholds)
    annotations: Optional[dict] = None  # frame_id -> list[Detection], for backend "annotations"


@dataclass
class EngineInfo:
    engine: SpatialEngine
    backend: str
    device: str
    model_path: str
    note: str = ""


def default_student_dir() -> Path:
    """$SPATIAL_VLM_STUDENT_DIR, else the repository's resource/models/student, else the colcon share dir."""
    env = os.environ.get("SPATIAL_VLM_STUDENT_DIR")
    if env:
        return Path(env)
    repo_dir = Path(__file__).resolve().parents[2] / "resource" / "models" / "student"
    candidates = [repo_dir]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("spatial_vlm_ros")) / "resource" / "models" / "student")
    except Exception:  # noqa: BLE001 - no ament index on pip-only installs
        pass
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    return repo_dir


def resolve_device(device: str) -> str:
    device = (device or "auto").strip().lower()
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device.startswith("cuda"):
        if not has_cuda:
            raise ValueError(f"device '{device}' requested but CUDA is not available (use 'cpu' or 'auto')")
        return device
    if device != "cpu":
        raise ValueError(f"unknown device '{device}' (auto, cpu, cuda, cuda:N)")
    return device


def validate(spec: EngineSpec) -> None:
    if spec.backend not in BACKENDS:
        raise ValueError(f"unknown backend '{spec.backend}' (choose from {', '.join(BACKENDS)})")
    if spec.precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{spec.precision}' (choose from {', '.join(PRECISIONS)})")
    if not 0.0 <= spec.score_threshold <= 1.0:
        raise ValueError(f"score threshold must be in [0, 1], got {spec.score_threshold}")
    if spec.max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {spec.max_objects}")
    t = spec.thresholds
    if not 0 <= t.contact_m <= t.no_contact_m or not 0 <= t.near_m <= t.far_m:
        raise ValueError(f"thresholds must satisfy 0 <= contact <= no_contact and 0 <= near <= far, got {t}")


def _call_with_supported(fn, **kwargs: Any):
    """Pass only the keyword arguments `fn` accepts (engines of other issues grow their own options)."""
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in params})


def _student(spec: EngineSpec, device: str, detector: Optional[str] = None) -> tuple[SpatialEngine, str]:
    path = Path(spec.model_path).expanduser() if spec.model_path else default_student_dir()
    if not path.exists():
        raise FileNotFoundError(f"student model not found at {path} (set model.path or train one: spatial-vlm distill)")
    if path.is_dir() and not all((path / f).is_file() for f in STUDENT_FILES):
        raise FileNotFoundError(f"{path} is not a student checkpoint (no config.json)")
    try:
        engine_mod = importlib.import_module("spatial_vlm_ros.inference.engine")
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(f"the student engine is not installed ({exc})") from exc
    import torch

    if device == "cpu" and (os.cpu_count() or 1) <= 2:
        # On 2 cores torch's OpenMP workers spin against the node's executor threads: measured 1.9 Hz
        # with 2 intra-op threads vs 25 Hz with 1 (bench/README.md, "Node: one setting changed per run").
        torch.set_num_threads(1)
    kwargs: dict[str, Any] = dict(path=str(path), device=device, dtype=getattr(torch, PRECISIONS[spec.precision]),
                                  score_threshold=spec.score_threshold,
                                  hidden_cot_k=spec.hidden_cot_k if spec.hidden_cot_k >= 0 else None,
                                  thresholds=spec.thresholds, max_objects=spec.max_objects,
                                  drop_pieces=spec.drop_pieces,
                                  max_depth_m=None if spec.max_depth_m < 0 else spec.max_depth_m)
    if detector is not None:
        params = inspect.signature(engine_mod.load_engine).parameters
        if "detector" not in params:
            raise ValueError("backend 'both' needs a student engine that accepts an external detector")
        kwargs["detector"] = detector
    try:
        engine = _call_with_supported(engine_mod.load_engine, **kwargs)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as exc:  # corrupt weights, wrong config: one clear line for the node's log
        raise ValueError(f"cannot load the student from {path}: {type(exc).__name__}: {exc}") from exc
    return engine, str(path)


def _geometry_engine(spec: EngineSpec, detector: str = "oid_ssd") -> tuple[SpatialEngine, str]:
    """The SSD + measured-depth engine of the geometry issue; its module name is looked up, not assumed."""
    for mod_name, cls_name in (("spatial_vlm_ros.inference.geometry_engine", "GeometryEngine"),
                               ("spatial_vlm_ros.inference.oracle", "GeometryEngine")):
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError:
            continue
        cls = getattr(mod, cls_name, None)
        if cls is None:
            continue
        kwargs: dict[str, Any] = dict(detector=detector, score_threshold=spec.score_threshold,
                                      thresholds=spec.thresholds, max_objects=spec.max_objects)
        if spec.model_path and detector == "oid_ssd":
            kwargs["model_dir"] = spec.model_path
        if detector == "annotations":
            if not spec.annotations:
                raise ValueError("backend 'annotations' needs annotated boxes (model.annotations_path)")
            kwargs["annotations"] = spec.annotations
        try:
            return _call_with_supported(cls, **kwargs), mod_name
        except (FileNotFoundError, ValueError, ImportError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"cannot build the geometric engine: {type(exc).__name__}: {exc}") from exc
    raise FileNotFoundError("the oid_ssd backend needs spatial_vlm_ros/inference/geometry_engine.py (not installed)")


def build_engine(spec: EngineSpec) -> EngineInfo:
    validate(spec)
    device = resolve_device(spec.device)
    if spec.backend in ("oid_ssd", "annotations"):
        engine, where = _geometry_engine(spec, spec.backend)
        return EngineInfo(engine, spec.backend, "cpu", where)
    if spec.backend == "both":
        engine, where = _student(spec, device, detector="oid_ssd")
        return EngineInfo(engine, "both", device, where)
    engine, where = _student(spec, device)
    return EngineInfo(engine, "student", device, where)


def free_engine(info: Optional[EngineInfo]) -> None:
    """Drop the engine and give its accelerator memory back (lifecycle cleanup)."""
    if info is None:
        return
    info.engine = None  # type: ignore[assignment]
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
