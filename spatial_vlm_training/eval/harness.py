"""Score any SpatialEngine on a split: one `infer` per frame, one `answer` per question."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.types import SpatialEngine

from ..data.resize import frame_from_sample
from ..data.sample import iter_samples, read_meta
from .answers import answer_correct
from .metrics import DetectionAccumulator, F1Counter, depth_errors

QUESTION_GROUPS = {"proximity": "proximity_accuracy", "contact": "contact_accuracy", "support": "contact_accuracy"}


class EngineError(ValueError):
    """The engine under test raised; the message names the frame."""


@dataclass
class EvalReport:
    model: str
    data: str
    metrics: dict[str, Any]
    per_kind: dict[str, dict[str, float]]
    per_class_ap50: dict[str, float]
    examples: list[dict[str, str]] = field(default_factory=list)  # a few wrong answers, for reading

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, **self.metrics, "per_kind": self.per_kind,
                "per_class_ap50": self.per_class_ap50, "wrong_examples": self.examples}


def count_parameters(engine: Any) -> int:
    """`engine.params` when given, else the parameters of a torch module found on it."""
    if isinstance(getattr(engine, "params", None), int):
        return int(engine.params)
    for name in ("num_parameters",):
        fn = getattr(engine, name, None)
        if callable(fn):
            return int(fn())
    for attr in ("model", "student", "module", "net"):
        m = getattr(engine, attr, None)
        if m is not None and hasattr(m, "parameters"):
            return int(sum(p.numel() for p in m.parameters()))
    return 0


def _mean(values: list[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


def evaluate(engine: SpatialEngine, data_dir: Path | str, model_name: str = "", limit: Optional[int] = None,
             progress: bool = True, max_examples: int = 20) -> EvalReport:
    meta = read_meta(data_dir)
    n_frames = meta.n_frames if limit is None else min(limit, meta.n_frames)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # key -> [correct, total]
    f1 = F1Counter()
    det = DetectionAccumulator()
    absrel, delta1, latency = [], [], []
    examples: list[dict[str, str]] = []
    n_questions = 0
    for sample in tqdm(iter_samples(data_dir, limit), total=n_frames, desc="eval", unit="frame", disable=not progress):
        frame = frame_from_sample(sample)
        gt_depth, _ = sample.load_gt()
        start = time.perf_counter()
        try:
            scene = engine.infer(frame)
            answers = [engine.answer(frame, scene, q.question) for q in sample.qa]
        except Exception as exc:  # one line naming the frame, not a traceback from deep inside a model
            raise EngineError(f"{sample.root / sample.rgb}: the model failed on frame {sample.id} "
                              f"({type(exc).__name__}: {exc})") from exc
        latency.append(1000 * (time.perf_counter() - start))
        for q, a in zip(sample.qa, answers, strict=True):
            ok = bool(a.success) and answer_correct(a.text, q.answer, q.kind)
            keys = [QUESTION_GROUPS[q.type], f"{q.type}/{q.kind}"]
            if q.kind == "yesno":
                keys.append(f"{q.type}/yesno/{q.answer}")  # accuracy on "yes" and on "no" truths: shows answer bias
            for key in keys:
                counts[key][0] += ok
                counts[key][1] += 1
            n_questions += 1
            if not ok and len(examples) < max_examples:
                examples.append({"id": sample.id, "question": q.question, "truth": q.answer, "answer": a.text})
        f1.add(scene.description, sample.objects, sample.relations)
        errs = depth_errors(scene.depth, gt_depth)
        if errs is not None:
            absrel.append(errs[0])
            delta1.append(errs[1])
        det.add(scene.detections, sample.objects)

    def acc(key: str) -> Optional[float]:
        c, t = counts.get(key, (0, 0))
        return c / t if t else None

    metrics = {
        "proximity_accuracy": acc("proximity_accuracy"),
        "contact_accuracy": acc("contact_accuracy"),
        "description_f1": f1.f1,
        "depth_absrel": _mean(absrel),
        "depth_delta1": _mean(delta1),
        "detection_map50": det.map50,
        "center_error_3d_m": _mean(det.center_errors),
        "params": count_parameters(engine),
        "latency_ms_median": float(np.median(latency)) if latency else None,
        "n_frames": len(latency),
        "n_questions": n_questions,
    }
    per_kind = {k: {"accuracy": c / t, "n": t} for k, (c, t) in sorted(counts.items()) if "/" in k}
    return EvalReport(model_name, str(data_dir), metrics, per_kind, det.per_class_ap(), examples)


def markdown_table(report: EvalReport) -> str:
    m = report.metrics

    def fmt(v, pct=False, nd=3):
        if v is None:
            return "n/a"
        return f"{100 * v:.1f} %" if pct else (f"{v:.{nd}f}" if isinstance(v, float) else f"{v:,}")

    rows = [
        ("proximity accuracy", fmt(m["proximity_accuracy"], True)),
        ("contact accuracy (contact + support)", fmt(m["contact_accuracy"], True)),
        ("description F1", fmt(m["description_f1"])),
        ("depth AbsRel", fmt(m["depth_absrel"])),
        ("depth delta1", fmt(m["depth_delta1"], True)),
        ("2D detection mAP@0.5", fmt(m["detection_map50"])),
        ("3D centre error (m)", fmt(m["center_error_3d_m"])),
        ("parameters", fmt(m["params"])),
        ("latency median (ms, CPU, batch 1)", fmt(m["latency_ms_median"], nd=1)),
        ("frames / questions", f"{m['n_frames']} / {m['n_questions']}"),
    ]
    lines = [f"### {report.model} on {Path(report.data).name}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "| question kind | accuracy | n |", "|---|---|---|"]
    lines += [f"| {k} | {100 * v['accuracy']:.1f} % | {v['n']} |" for k, v in report.per_kind.items()]
    return "\n".join(lines) + "\n"
