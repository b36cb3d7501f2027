"""`spatial-vlm pseudo-label --input RECORDING --out DIR`: a real detector as the student's teacher.

The SSD-MobileNetV2 (Open Images) boxes every frame of an unlabeled RGB-D recording (a ROS 2 .mcap, or
a realdata folder); the geometry engine lifts the boxes with the measured depth and measures the
relations. Each frame becomes a `SceneSample` in the svlm-scenes-1 format (FORMAT.md), so
`spatial-vlm distill --train DIR` can fine-tune the student on the user's own scenes. Only confident
detections with enough depth become objects; the labels are as good as the detector and the depth
(see docs/real_world.md), and meta.json says they are pseudo-labels.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from spatial_vlm_ros.inference.geometry import DEFAULT_THRESHOLDS, ScenePlanes, backproject, find_scene_planes
from spatial_vlm_ros.inference.geometry_engine import DETECTORS, GeometryEngine
from spatial_vlm_ros.inference.types import RelationType

from .qa import build_description, build_qa, build_relations
from .realdata import RealFrame, read_recording
from .sample import FLOOR, FORMAT_VERSION, SceneObject, SceneSample, SplitMeta, encode_npz, encode_png

UNKNOWN_SUPPORT = "unknown"
FLOOR_CONTACT_M = 0.15  # visible bottoms end above the floor (dark wheels and legs, the cut-out floor band)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="RGB-D recording: a ROS 2 .mcap or a realdata folder")
    parser.add_argument("--out", required=True, help="output split directory (svlm-scenes-1)")
    parser.add_argument("--detector", default="oid_ssd", choices=[d for d in DETECTORS if d != "annotations"],
                        help="detection teacher (default: oid_ssd)")
    parser.add_argument("--score-threshold", type=float, default=0.5, help="minimum detector score (default 0.5)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th frame (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many labelled frames")
    parser.add_argument("--min-objects", type=int, default=1, help="skip frames with fewer lifted objects")
    parser.add_argument("--questions-per-type", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output split")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.every < 1:
        raise ValueError(f"--every must be >= 1, got {args.every}")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"{out} exists and is not empty (use --overwrite)")
    summary = pseudo_label(Path(args.input), out, detector=args.detector, score_threshold=args.score_threshold,
                           every=args.every, limit=args.limit, min_objects=args.min_objects,
                           questions_per_type=args.questions_per_type, seed=args.seed)
    print(f"pseudo-labelled {summary['n_frames']} of {summary['frames_seen']} frames -> {out} "
          f"({summary['n_objects']} objects, {summary['n_questions']} questions; "
          f"categories: {', '.join(summary['categories']) or 'none'})")
    return 0


def pseudo_label(recording: Path, out: Path, detector: str = "oid_ssd", score_threshold: float = 0.5, every: int = 1,
                 limit: Optional[int] = None, min_objects: int = 1, questions_per_type: int = 3,
                 seed: int = 0) -> dict:
    frames = read_recording(recording, every=every)  # checks the input before anything is written
    engine = GeometryEngine(detector=detector, score_threshold=score_threshold)
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines, categories = [], set()
    seen = n_objects = n_questions = 0
    for frame in tqdm(frames, desc="pseudo-label", unit="frame"):
        seen += 1
        labelled = label_frame(engine, frame, len(lines), rng, questions_per_type)
        if labelled is None or len(labelled[0].objects) < min_objects:
            continue
        sample, masks = labelled
        rgb, depth_mm, gt = _frame_files(frame, sample, masks)
        (out / sample.rgb).write_bytes(rgb)
        (out / sample.depth).write_bytes(depth_mm)
        (out / sample.gt).write_bytes(gt)
        lines.append(sample.to_line())
        categories |= {o.category for o in sample.objects}
        n_objects += len(sample.objects)
        n_questions += len(sample.qa)
        if limit is not None and len(lines) >= limit:
            break
    (out / "samples.jsonl").write_text("".join(line + "\n" for line in lines))
    extra = {"source": "pseudo-label", "teacher": detector, "score_threshold": score_threshold,
             "input": str(recording), "frames_seen": seen,
             "note": "objects, boxes and relations are a detector's and measured depth's, not human labels"}
    meta = SplitMeta(FORMAT_VERSION, "pseudo", seed, len(lines), len(lines), sorted(categories), [],
                     {k: float(v) for k, v in asdict(DEFAULT_THRESHOLDS).items()}, extra)
    (out / "meta.json").write_text(json.dumps(meta.to_json(), indent=1))
    return {"n_frames": len(lines), "frames_seen": seen, "n_objects": n_objects, "n_questions": n_questions,
            "categories": sorted(categories)}


def label_frame(engine: GeometryEngine, frame: RealFrame, index: int, rng: np.random.Generator,
                questions_per_type: int = 3) -> Optional[tuple[SceneSample, dict[str, np.ndarray]]]:
    """One pseudo-labelled sample and its objects' masks, or None when nothing was detected and lifted."""
    scene = engine.infer(frame.to_rgbd_frame(stamp_ns=index))
    dets = [d for d in scene.detections if d.id in engine.last_lifted]
    if not dets:
        return None
    xyz = backproject(frame.depth, frame.intrinsics)
    up = engine.last_up if engine.last_up is not None else np.array([0.0, -1.0, 0.0])
    planes = find_scene_planes(xyz, up)
    on_pairs = {(r.subject_id, r.object_id) for r in scene.relations if r.type == RelationType.SUPPORT and r.holds}
    gaps = {frozenset((r.subject_id, r.object_id)): r.distance_m for r in scene.relations
            if r.type == RelationType.PROXIMITY}
    objects = []
    for k, d in enumerate(dets, start=1):
        lifted = engine.last_lifted[d.id]
        ys, xs = np.nonzero(lifted.mask)
        support = next((o for s, o in on_pairs if s == d.id), None)
        objects.append(SceneObject(
            id=d.id, category=d.label, color=d.color, description=d.description, instance=k,
            box2d=(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)),
            visible_px=int(lifted.mask.sum()), box3d=lifted.box3d,
            resting_on=support or _floor_or_unknown(lifted.bottom_height(up), planes, up)))
    ids = [o.id for o in objects]
    relations = build_relations(ids, lambda a, b: gaps[frozenset((a, b))], lambda a, b: (a, b) in on_pairs)
    qa = build_qa(objects, relations, rng, per_type=questions_per_type)
    n = f"{index:06d}"
    sample = SceneSample(id=f"pseudo_{n}", scene=index, rgb=f"frames/{n}_rgb.png", depth=f"frames/{n}_depth.png",
                         gt=f"frames/{n}_gt.npz", intrinsics=frame.intrinsics, up=np.asarray(up, dtype=np.float64),
                         camera_pose=np.eye(4), objects=objects, relations=relations, qa=qa,
                         description=build_description(objects, relations))
    return sample, {d.id: engine.last_lifted[d.id].mask for d in dets}


def _floor_or_unknown(bottom_height: float, planes: ScenePlanes, up: np.ndarray) -> str:
    if planes.floor is None:
        return UNKNOWN_SUPPORT
    floor_height = -planes.floor.offset / float(planes.floor.normal @ up)  # the plane's height along up
    return FLOOR if abs(bottom_height - floor_height) <= FLOOR_CONTACT_M else UNKNOWN_SUPPORT


def _frame_files(frame: RealFrame, sample: SceneSample, masks: dict[str, np.ndarray]) -> tuple[bytes, bytes, bytes]:
    instance = np.zeros(frame.depth.shape, np.uint8)
    for obj in sample.objects:
        instance[masks[obj.id]] = obj.instance  # lifted masks never overlap
    depth = np.nan_to_num(frame.depth, nan=0.0)
    depth_mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
    # No exact depth exists for a real recording: gt "depth" is the sensor's (NaN holes kept).
    gt = encode_npz({"depth": frame.depth.astype(np.float32), "instance": instance})
    return encode_png(frame.rgb), encode_png(depth_mm), gt
