"""Embedded teacher vs student on the CPU: infer()/answer() latency, size, memory, Hidden CoT K sweep.

Both engines see the same generated 640x480 RGB-D frames and questions, batch 1, measured interleaved
(teacher, student, teacher, ...) in one process so machine load hits both alike; the ratios are taken
from that one run. Peak memory comes from a fresh child process per model (RSS high-water mark).
Writes bench/results/model.json.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, RESULTS, generated_frames, load_frames, machine, now_utc, summarize_ms, write_json

DEFAULT_OUT = RESULTS / "model.json"
TARGET_LATENCY_RATIO = 8.7
TARGET_SIZE_RATIO = 3.0
QUICK_ARGS = ["--frames", "2", "--reps", "2", "--k-values", "0,4", "--k-reps", "1", "--no-memory"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--student", type=Path, default=REPO / "resource" / "models" / "student")
    parser.add_argument("--teacher", type=Path, default=REPO / "resource" / "models" / "teacher")
    parser.add_argument("--frames", type=int, default=4, help="generated 640x480 frames (distinct scenes)")
    parser.add_argument("--reps", type=int, default=5, help="timed passes over all frames per model")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    parser.add_argument("--k-values", default="0,4,8,16", help="Hidden CoT K values to time (student)")
    parser.add_argument("--k-reps", type=int, default=3, help="timed passes over all frames per K")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the child-process RSS probe")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the cProfile summary")
    parser.add_argument("--memory-probe", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--frames-dir", type=Path, default=None, help=argparse.SUPPRESS)


def _question(scene) -> str:
    """A question about two objects the engine itself found (a fixed one when it found fewer)."""
    if len(scene.detections) >= 2:
        a, b = scene.detections[0].description, scene.detections[1].description
        return f"Is the {a} near the {b}?"
    return "Is the red mug near the blue book?"


def _count_params(engine) -> int:
    return int(sum(p.numel() for p in engine.model.parameters()))


def _timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1000.0, out


def measure_side_by_side(engines: dict, frames, reps: int, warmup: int) -> dict:
    """Interleaved infer/answer timings; returns per-model samples and stage timings."""
    from tqdm import tqdm

    samples = {name: {"infer": [], "answer": [], "stages": {}, "answer_words": []} for name in engines}
    questions = {name: [None] * len(frames) for name in engines}
    total = (reps + warmup) * len(frames) * len(engines)
    with tqdm(total=total, desc="bench model", unit="call", leave=False) as bar:
        for rep in range(warmup + reps):
            # Alternate the order every pass so neither model always runs second (cache, turbo, load).
            order = list(engines) if rep % 2 == 0 else list(reversed(list(engines)))
            for i, frame in enumerate(frames):
                for name in order:
                    engine = engines[name]
                    infer_ms, scene = _timed(engine.infer, frame)
                    if questions[name][i] is None:
                        questions[name][i] = _question(scene)
                    answer_ms, answer = _timed(engine.answer, frame, scene, questions[name][i])
                    if rep >= warmup:
                        samples[name]["infer"].append(infer_ms)
                        samples[name]["answer"].append(answer_ms)
                        # answer() decodes until EOS: a longer answer costs more, whatever the model size
                        samples[name]["answer_words"].append(len(answer.text.split()))
                        for stage, ms in scene.timings_ms.items():
                            samples[name]["stages"].setdefault(stage, []).append(ms)
                    bar.update(1)
    return samples


def _engine_with_k(student_dir: Path, k: int, trained_k: int):
    """Student engine answering with K latents. Beyond the trained K the extra latents are untrained copies:
    the answers are meaningless but the cost of K more prompt positions is what is timed."""
    from spatial_vlm_ros.inference.engine import load_engine
    from spatial_vlm_ros.model.hidden_cot import HiddenCoT

    if k <= trained_k:
        return load_engine(student_dir, device="cpu", hidden_cot_k=k)
    engine = load_engine(student_dir, device="cpu")
    old = engine.model.hidden_cot
    extended = HiddenCoT(k, old.latents.shape[1]).to(old.latents.dtype)
    extended.latents.data[: old.latents.shape[0]] = old.latents.data
    engine.model.hidden_cot = extended
    engine.hidden_cot_k = k
    return engine


def measure_k_sweep(student_dir: Path, frames, k_values: list[int], reps: int) -> dict:
    from tqdm import tqdm

    from spatial_vlm_ros.inference.engine import load_engine

    trained_k = load_engine(student_dir, device="cpu").model.hidden_cot.trained_k
    engines = {k: _engine_with_k(student_dir, k, trained_k) for k in k_values}
    out: dict = {"trained_k": trained_k}
    infer = {k: [] for k in k_values}
    answer = {k: [] for k in k_values}
    with tqdm(total=(reps + 1) * len(frames) * len(k_values), desc="hidden CoT K", unit="call", leave=False) as bar:
        for rep in range(reps + 1):
            for frame in frames:
                for k in k_values:  # interleaved, as above
                    infer_ms, scene = _timed(engines[k].infer, frame)
                    answer_ms, _ = _timed(engines[k].answer, frame, scene, _question(scene))
                    if rep > 0:
                        infer[k].append(infer_ms)
                        answer[k].append(answer_ms)
                    bar.update(1)
    for k in k_values:
        out[k] = {"infer": summarize_ms(infer[k]), "answer": summarize_ms(answer[k]), "trained": k <= trained_k}
    return out


def memory_probe(model_dir: Path, frames_dir: Path, n_frames: int) -> dict:
    """Runs in a fresh child: RSS before loading, and the high-water mark after load + infer + answer."""
    import psutil

    from spatial_vlm_ros.inference.engine import load_engine

    frames = load_frames(frames_dir, n_frames)
    before_mb = psutil.Process().memory_info().rss / 1e6
    engine = load_engine(model_dir, device="cpu")
    for frame in frames:
        scene = engine.infer(frame)
        engine.answer(frame, scene, _question(scene))
    peak_mb = _vm_hwm_mb()
    return {"rss_before_load_MB": round(before_mb, 1), "peak_rss_MB": round(peak_mb, 1),
            "model_peak_delta_MB": round(peak_mb - before_mb, 1)}


def _vm_hwm_mb() -> float:
    """This process's RSS high-water mark. Not getrusage's ru_maxrss: a child started by fork + exec
    inherits the parent's peak there, which would hide the model's own footprint."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1e3  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _probe_in_child(model_dir: Path, frames_dir: Path, n_frames: int) -> dict:
    cmd = [sys.executable, "-m", "bench.model_bench", "--memory-probe", str(model_dir), "--frames-dir",
           str(frames_dir), "--frames", str(n_frames)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def profile_summary(engine, frame, top: int = 12) -> list[dict]:
    """cProfile of one infer + answer: where the CPU time goes, by self time (wrappers drop out)."""
    scene = engine.infer(frame)  # warm
    profiler = cProfile.Profile()
    profiler.enable()
    scene = engine.infer(frame)
    engine.answer(frame, scene, _question(scene))
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, func), (_cc, ncalls, selftime, cumtime, _callers) in stats.stats.items():
        where = f"{Path(filename).name}:{line}({func})" if line else func
        rows.append({"function": where, "self_ms": round(selftime * 1000, 2), "cumulative_ms": round(cumtime * 1000, 2),
                     "calls": ncalls})
    rows.sort(key=lambda r: -r["self_ms"])
    return rows[:top]


def _stage_medians(stages: dict) -> dict:
    return {stage: summarize_ms(values)["median_ms"] for stage, values in stages.items()}


def _k_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--k-values must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise ValueError("--k-values needs at least one K >= 0")
    return values


def run(args: argparse.Namespace) -> int:
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(args.memory_probe, args.frames_dir, args.frames)))
        return 0
    if args.frames < 1 or args.reps < 1 or args.warmup < 0 or args.k_reps < 1:
        raise ValueError("--frames, --reps and --k-reps must be >= 1, --warmup >= 0")
    k_values = _k_list(args.k_values)
    from spatial_vlm_ros.inference.engine import check_model_dir, load_engine

    for path in (args.student, args.teacher):
        check_model_dir(Path(path))
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"generating {args.frames} frames (640x480) ...", flush=True)
    frames_dir = Path(tempfile.mkdtemp(prefix="svlm_bench_model_"))
    frames = generated_frames(args.frames, workdir=frames_dir)
    engines = {"teacher": load_engine(args.teacher, device="cpu"), "student": load_engine(args.student, device="cpu")}
    data: dict = {"benchmark": "model", "date_utc": now_utc(), "machine": machine(), "complete": False, "errors": {},
                  "settings": {"frames": len(frames), "frame_size": "640x480", "reps": args.reps, "warmup": args.warmup,
                               "batch": 1, "device": "cpu", "student": str(args.student), "teacher": str(args.teacher),
                               "k_values": k_values, "k_reps": args.k_reps,
                               "torch_threads": torch.get_num_threads()}}

    samples = measure_side_by_side(engines, frames, args.reps, args.warmup)
    for name, engine in engines.items():
        infer, answer = summarize_ms(samples[name]["infer"]), summarize_ms(samples[name]["answer"])
        data[f"model.{name}_infer_median_ms"] = infer["median_ms"]
        data[f"model.{name}_infer_p95_ms"] = infer["p95_ms"]
        data[f"model.{name}_answer_median_ms"] = answer["median_ms"]
        data[f"model.{name}_answer_p95_ms"] = answer["p95_ms"]
        data[f"model.{name}_params"] = _count_params(engine)
        weights = Path(getattr(args, name)) / "model.safetensors"
        data[f"model.{name}_weights_MB"] = round(weights.stat().st_size / 1e6, 2)
        data[f"model.{name}_stage_median_ms"] = _stage_medians(samples[name]["stages"])
        words = sorted(samples[name]["answer_words"])
        data[f"model.{name}_answer_words_median"] = words[len(words) // 2] if words else None
        data[f"model.{name}_hidden_cot_k"] = engine.model.hidden_cot.trained_k if engine.model.hidden_cot else None
    d = data
    d["model.latency_ratio"] = round(d["model.teacher_infer_median_ms"] / d["model.student_infer_median_ms"], 3)
    d["model.answer_latency_ratio"] = round(d["model.teacher_answer_median_ms"] / d["model.student_answer_median_ms"], 3)
    d["model.size_ratio"] = round(d["model.teacher_params"] / d["model.student_params"], 3)
    print(f"latency ratio {d['model.latency_ratio']}x, size ratio {d['model.size_ratio']}x", flush=True)

    if args.memory:
        for name in engines:
            try:
                probe = _probe_in_child(Path(getattr(args, name)), frames_dir, len(frames))
                d[f"model.{name}_peak_rss_MB"] = probe["peak_rss_MB"]
                d[f"model.{name}_peak_delta_MB"] = probe["model_peak_delta_MB"]
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                d["errors"][f"memory_{name}"] = str(exc)[:300]
        if "model.teacher_peak_delta_MB" in d and d.get("model.student_peak_delta_MB", 0) > 0:
            d["model.memory_ratio"] = round(d["model.teacher_peak_delta_MB"] / d["model.student_peak_delta_MB"], 3)

    try:
        sweep = measure_k_sweep(Path(args.student), frames, k_values, args.k_reps)
        d["model.hidden_cot_trained_k"] = sweep["trained_k"]
        for k in k_values:
            d[f"model.hidden_cot_k{k}_infer_median_ms"] = sweep[k]["infer"]["median_ms"]
            d[f"model.hidden_cot_k{k}_answer_median_ms"] = sweep[k]["answer"]["median_ms"]
            d[f"model.hidden_cot_k{k}_trained"] = sweep[k]["trained"]
    except (ValueError, RuntimeError) as exc:
        d["errors"]["hidden_cot_sweep"] = str(exc)[:300]

    d["targets"] = {"model.latency_ratio": {"target": f">= {TARGET_LATENCY_RATIO}", "measured": d["model.latency_ratio"],
                                            "met": d["model.latency_ratio"] >= TARGET_LATENCY_RATIO},
                    "model.size_ratio": {"target": f">= {TARGET_SIZE_RATIO}", "measured": d["model.size_ratio"],
                                         "met": d["model.size_ratio"] >= TARGET_SIZE_RATIO}}
    if args.profile:
        d["profile_student_top_self_time"] = profile_summary(engines["student"], frames[0])
        d["profile_teacher_top_self_time"] = profile_summary(engines["teacher"], frames[0])
    d["complete"] = not d["errors"]
    write_json(args.out, d)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/model_bench.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"bench model: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
