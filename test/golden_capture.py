"""Golden outputs: what each backend answers on fixed frames, so code can move without behaviour moving.

For every backend (student, teacher, the oid_ssd geometry engine, and on the annotated real frames the
geometry over the annotated boxes) and every frame it records the detections (label, description,
score, 2D box, 3D box, mask size), the relations the engine made, the relations the node publishes
(after its metric cross-check), the scene description, the engine's answers and the ~/query service's
replies to a fixed set of questions. `test_golden_outputs.py` compares a fresh capture with the files in
test/golden/. Floats are stored to 1e-6 and compared within 1e-5: the same code with two torch threads
instead of one moved one confidence of 400 by 2e-6 (another summation order), which is not a change of
behaviour.

The frames: 20 scenes generated at test time (split "golden", seed 0; their pixel fingerprint is
stored, so a changed generator is reported as such, not as an engine change), and the real frames of
../shared/realdata when it is there.

Regenerate on purpose, after a change whose effect the commit message names:

    source scripts/env.sh && python test/golden_capture.py --write
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "test" / "golden"
SYNTHETIC_SPLIT, SYNTHETIC_SEED, SYNTHETIC_SCENES = "golden", 0, 20
#: Backends captured on every frame set (EngineSpec backend, checkpoint dir or "").
BACKENDS = {"student": ("student", ""), "teacher": ("student", str(REPO / "resource" / "models" / "teacher")),
            "oid_ssd": ("oid_ssd", "")}
DIGITS = 6


def _f(x) -> Optional[float]:
    x = float(x)
    return None if not math.isfinite(x) else round(x, DIGITS)


def _vec(v) -> list:
    return [_f(x) for x in np.asarray(v, dtype=np.float64).ravel()]


def detection_record(d) -> dict:
    return {"id": d.id, "label": d.label, "description": d.description, "score": _f(d.score), "box2d": _vec(d.box2d),
            "box3d": None if d.box3d is None else {"center": _vec(d.box3d.center), "size": _vec(d.box3d.size)},
            "mask_pixels": None if d.mask is None else int(np.count_nonzero(d.mask))}


def relation_record(r) -> dict:
    return {"subject_id": r.subject_id, "object_id": r.object_id, "type": int(r.type), "predicate": r.predicate,
            "holds": bool(r.holds), "confidence": _f(r.confidence), "distance_m": _f(r.distance_m),
            "source": r.source}


def questions_for(sample_questions: list[str], descriptions: list[str]) -> list[str]:
    """The frame's own questions (generated frames) plus questions about what the backend detected."""
    qs = list(sample_questions)
    for i, a in enumerate(descriptions[:4]):
        for b in descriptions[i + 1: 4]:
            qs += [f"is the {a} touching the {b}?", f"is the {a} near the {b}?", f"is the {a} on the {b}?"]
        qs += [f"what is the {a} resting on?", f"which object is closest to the {a}?"]
    return qs


def capture_frame(engine, frame, questions: list[str], thresholds) -> dict:
    """One backend on one frame, through the same calls the node makes (ros/node.py `_process`)."""
    from spatial_vlm_ros.ros.fusion import cross_check
    from spatial_vlm_ros.ros.query_handler import SceneState, handle_query

    scene = engine.infer(frame)
    published = cross_check(scene, frame, "model", thresholds).relations
    state = SceneState(frame, scene, published, frame.stamp_ns)
    qs = questions_for(questions, [d.description for d in scene.detections])
    answers, service = [], []
    for q in qs:
        a = engine.answer(frame, scene, q)
        answers.append({"question": q, "text": a.text, "confidence": _f(a.confidence), "success": bool(a.success)})
        out = handle_query(state, q, ask_model=lambda text: engine.answer(frame, scene, text))
        service.append({"question": q, "success": bool(out.success), "answer": out.answer,
                        "confidence": _f(out.confidence), "message": out.message})
    return {"detections": [detection_record(d) for d in scene.detections],
            "relations": [relation_record(r) for r in scene.relations],
            "published_relations": [relation_record(r) for r in published],
            "description": scene.description, "answers": answers, "service": service}


def build(backend: str):
    from spatial_vlm_ros.inference.factory import EngineSpec, build_engine

    kind, path = BACKENDS[backend]
    return build_engine(EngineSpec(backend=kind, model_path=path, device="cpu")).engine


def synthetic_frames(work: Path) -> tuple[str, Iterator[tuple[str, object, list[str]]]]:
    """(fingerprint of the frames, (name, frame, questions) of each generated scene)."""
    from spatial_vlm_training.data.generator import GenerateConfig, generate_split
    from spatial_vlm_training.data.resize import frame_from_sample
    from spatial_vlm_training.data.sample import iter_samples

    split = work / SYNTHETIC_SPLIT
    generate_split(GenerateConfig(split, SYNTHETIC_SPLIT, SYNTHETIC_SEED, SYNTHETIC_SCENES))
    samples = list(iter_samples(split))
    digest = hashlib.sha256()
    frames = []
    for s in samples:
        frame = frame_from_sample(s)
        digest.update(frame.rgb.tobytes())
        digest.update(np.nan_to_num(frame.depth, nan=-1.0).tobytes())
        frames.append((s.id, frame, [q.question for q in s.qa]))
    return digest.hexdigest(), iter(frames)


def real_frames(realdata: Path) -> tuple[str, list]:
    from spatial_vlm_training.data.realdata import read_frames

    frames = read_frames(realdata)
    digest = hashlib.sha256()
    for f in frames:
        digest.update(f.rgb.tobytes())
        digest.update(np.nan_to_num(f.depth, nan=-1.0).tobytes())
    return digest.hexdigest(), frames


def capture_synthetic(backends=tuple(BACKENDS)) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fingerprint, frames = synthetic_frames(Path(tmp))
        frames = list(frames)
    out = {"frames_sha256": fingerprint, "backends": {}}
    for backend in backends:
        engine = build(backend)
        out["backends"][backend] = {name: capture_frame(engine, frame, qs, engine.thresholds)
                                    for name, frame, qs in frames}
    return out


def capture_real(realdata: Path, backends=tuple(BACKENDS)) -> dict:
    from spatial_vlm_ros.inference.geometry_engine import GeometryEngine

    fingerprint, frames = real_frames(realdata)
    out = {"frames_sha256": fingerprint, "backends": {}}
    for backend in backends:
        engine = build(backend)
        out["backends"][backend] = {f.name: capture_frame(engine, f.to_rgbd_frame(), [], engine.thresholds)
                                    for f in frames}
    annotated = [f for f in frames if f.objects]
    engine = GeometryEngine(detector="annotations", annotations={f.name: f.annotated_detections() for f in annotated})
    out["backends"]["annotations"] = {f.name: capture_frame(engine, f.to_rgbd_frame(), [], engine.thresholds)
                                      for f in annotated}
    return out


def differences(expected, actual, path: str = "", tol: float = 1e-5, limit: int = 20) -> list[str]:
    """Where two captures differ (floats within `tol` are equal), as 'path: expected -> actual' lines."""
    out: list[str] = []

    def walk(e, a, p: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(e, dict) and isinstance(a, dict):
            for k in sorted(set(e) | set(a)):
                if k not in e or k not in a:
                    out.append(f"{p}/{k}: {'missing' if k not in a else 'unexpected'}")
                else:
                    walk(e[k], a[k], f"{p}/{k}")
        elif isinstance(e, list) and isinstance(a, list):
            if len(e) != len(a):
                out.append(f"{p}: {len(e)} items -> {len(a)}")
            for i, (x, y) in enumerate(zip(e, a, strict=False)):
                walk(x, y, f"{p}[{i}]")
        elif isinstance(e, float) and isinstance(a, float):
            if abs(e - a) > tol:
                out.append(f"{p}: {e} -> {a}")
        elif e != a:
            out.append(f"{p}: {e!r} -> {a!r}")

    walk(expected, actual, path)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="capture (and with --write store) the golden outputs")
    parser.add_argument("--write", action="store_true", help="overwrite test/golden/*.json")
    parser.add_argument("--realdata", type=Path, default=REPO.parent / "shared" / "realdata")
    args = parser.parse_args(argv)
    captures = {"synthetic": capture_synthetic()}
    if args.realdata.is_dir():
        captures["real"] = capture_real(args.realdata)
    for name, data in captures.items():
        path = GOLDEN_DIR / f"{name}.json"
        if args.write:
            GOLDEN_DIR.mkdir(exist_ok=True)
            path.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
            print(f"wrote {path}")
        elif path.is_file():
            diff = differences(json.loads(path.read_text()), data)
            print(f"{name}: {'identical' if not diff else 'differs'}")
            for line in diff:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
