"""`spatial-vlm demo` (`make demo`): the whole flow on one machine, ending by itself.

1. the demo sequence: resource/sequences/demo when bundled, else generated once (deterministic, cached
   under out/cache/) by the project's scene generator; or `--input` (scene folder, .mcap, realdata);
2. the perception node in its own process (the embedded student unless told otherwise);
3. a player publishing the frames at 30 Hz in a loop, and a client collecting every output;
4. questions whose answers the ground truth knows, asked through the query service;
5. a summary (objects, relations, answers with confidence and metric gap, rate, latency), annotated
   PNGs of a few frames and an MCAP of the outputs under out/demo/.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NODE_NAME = "spatial_vlm_node"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", help="scene folder, .mcap or realdata folder (default: the demo sequence)")
    parser.add_argument("--use-annotations", action="store_true",
                        help="real frames: use the folder's annotated 2D boxes as detections (geometric engine)")
    parser.add_argument("--model", help="student checkpoint (default: the embedded student)")
    parser.add_argument("--backend", choices=("student", "oid_ssd", "both", "annotations"), help="engine")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of playback before the questions")
    parser.add_argument("--rate", type=float, default=30.0, help="player frame rate")
    parser.add_argument("--frames", type=int, default=100, help="frames of the generated demo sequence")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated demo sequence")
    parser.add_argument("--questions", type=int, default=6, help="ground-truth questions to ask")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo", help="PNGs and MCAP go here")


def demo_sequence(frames: int, seed: int) -> Path:
    bundled = REPO / "resource" / "sequences" / "demo"
    if (bundled / "samples.jsonl").is_file():
        return bundled
    cached = REPO / "out" / "cache" / f"demo_sequence_seed{seed}_{frames}"
    if not (cached / "samples.jsonl").is_file():
        print(f"generating the demo sequence ({frames} frames, seed {seed}) into {cached} ...", flush=True)
        subprocess.run([sys.executable, "-m", "spatial_vlm_ros.cli", "generate", "--sequence", "--out", str(cached),
                        "--seed", str(seed), "--frames", str(frames), "--split", "test", "--no-preview"],
                       check=True, stdout=subprocess.DEVNULL)
    return cached


class Player(threading.Thread):
    """Publishes the source at `rate` Hz in a loop; remembers which frame each stamp carried."""

    def __init__(self, client, source, rate: float, frame_id_from_name: bool):
        super().__init__(daemon=True)
        self.client, self.source, self.period = client, source, 1.0 / rate
        self.frame_id_from_name = frame_id_from_name
        self.stamps: dict[tuple[int, int], int] = {}
        self.published = 0
        self._halt = threading.Event()
        self._cache: dict[int, object] = {}

    def frame(self, i: int):
        if i not in self._cache:
            self._cache[i] = self.source[i]
        return self._cache[i]

    def run(self) -> None:
        i, next_t = 0, time.monotonic()
        while not self._halt.is_set():
            f = self.frame(i % len(self.source))
            frame_id = f.name if self.frame_id_from_name else "camera_color_optical_frame"
            header = self.client.publish_frame(f.rgb, f.intrinsics, f.depth, frame_id=frame_id)
            self.stamps[(header.stamp.sec, header.stamp.nanosec)] = i % len(self.source)
            self.published += 1
            i += 1
            next_t = max(next_t + self.period, time.monotonic() - self.period)
            self._halt.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .sequence_source import SequenceSource

    console = Console()
    if args.duration <= 0 or args.rate <= 0 or args.frames < 1:
        raise ValueError("--duration, --rate and --frames must be positive")
    path = Path(args.input) if args.input else demo_sequence(args.frames, args.seed)
    source = SequenceSource(path)
    backend = "annotations" if args.use_annotations else args.backend
    if backend == "annotations" and source.kind != "realdata":
        raise ValueError("--use-annotations needs a realdata folder with annotated boxes (e.g. sunrgbd_mmdet3d)")
    args.out.mkdir(parents=True, exist_ok=True)
    params = {"rate.diagnostics_period_s": 0.5, "rate.max_hz": 0.0}
    if args.model:
        params["model.path"] = args.model
    if backend:
        params["model.backend"] = backend
    if backend == "annotations":
        params["model.annotations_path"] = str(path)
    node_log = args.out / "node.log"
    cmd = [sys.executable, "-m", "spatial_vlm_ros.ros.node", "--ros-args", "-r", f"__node:={NODE_NAME}"]
    config = REPO / "config" / "spatial_vlm.yaml"
    if config.is_file():
        cmd += ["--params-file", str(config)]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    console.print(f"[bold]spatial-vlm demo[/bold]: {len(source)} frames from {path} ({source.kind}), "
                  f"node log {node_log}")
    with open(node_log, "w") as log:
        node = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    from .graph_client import GraphClient

    client = GraphClient(node_fqn=f"/{NODE_NAME}", name="spatial_vlm_demo", keep=400)
    player = None
    try:
        if not client.wait_for_subscribers(180, ("color", "camera_info", "depth")):
            tail = node_log.read_text()[-1500:]
            raise OSError(f"the node did not come up (exit code {node.poll()}); its log ends:\n{tail}")
        player = Player(client, source, args.rate, backend == "annotations")
        player.start()
        console.print(f"playing at {args.rate:g} Hz for {args.duration:g} s ...")
        end = time.monotonic() + args.duration
        while time.monotonic() < end and node.poll() is None:
            time.sleep(0.5)
        player.stop()
        if node.poll() is not None:
            raise OSError(f"the node exited with code {node.returncode}; see {node_log}")
        time.sleep(2.0)  # let the frame in flight finish
        report = summarise(console, client, player, source, args)
        write_outputs(console, client, args.out)
        return 0 if report else 1
    finally:
        # The node is a separate process: it must go whatever failed above.
        node.terminate()
        try:
            node.wait(20)
        except subprocess.TimeoutExpired:
            node.kill()
        if player is not None:
            player.stop()
        client.close()


def summarise(console, client, player, source, args) -> bool:
    from rich.table import Table

    dets_msgs = client.messages("detections")
    if not dets_msgs:
        console.print("[red]the node published no detections[/red]")
        return False
    probe = client.query("what is near the " + (dets_msgs[-1].detections[0].label if dets_msgs[-1].detections else "table"))
    stamp = (probe.stamp.sec, probe.stamp.nanosec)
    dets = next((m for m in reversed(dets_msgs) if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp), dets_msgs[-1])
    rels = next((m for m in reversed(client.messages("relations"))
                 if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp), None)
    index = player.stamps.get(stamp)
    frame = player.frame(index) if index is not None else None
    console.print(f"\nlatest processed frame: {frame.name if frame else '?'} "
                  f"(stamp {stamp[0]}.{stamp[1]:09d})")

    objects = Table(title="objects")
    for col in ("id", "description", "score", "3D centre (m)", "size (m)"):
        objects.add_column(col)
    for d in dets.detections:
        c, s = d.center.position, d.size
        objects.add_row(d.id, d.description, f"{d.score:.2f}",
                        f"{c.x:+.2f} {c.y:+.2f} {c.z:+.2f}" if d.has_3d else "-",
                        f"{s.x:.2f} {s.y:.2f} {s.z:.2f}" if d.has_3d else "-")
    console.print(objects)
    if not dets.detections:
        console.print("[yellow]no objects above the score threshold in this frame: is the student trained? "
                      "(see resource/models/student/train_summary.json; on real frames try --use-annotations)[/yellow]")
    if rels is not None:
        shown = [r for r in rels.relations if r.holds and r.predicate != "far"][:12]
        table = Table(title=f"relations that hold ({len(shown)} of {len(rels.relations)} shown)")
        for col in ("relation", "confidence", "gap (cm)", "source"):
            table.add_column(col)
        for r in shown:
            gap = f"{r.distance_m * 100:.1f}" if math.isfinite(r.distance_m) else "-"
            table.add_row(r.text, f"{r.confidence:.2f}", gap, r.source)
        console.print(table)

    answers = Table(title="questions with known answers (ground truth of that frame)")
    for col in ("question", "truth", "answer", "conf.", "gap (cm)", "ok"):
        answers.add_column(col)
    asked = correct = 0
    questions = list(frame.questions)[: args.questions] if frame else []
    questions.append(("Is the unicorn near the table?", "-"))  # an unknown object: a clear refusal
    for question, truth in questions:
        resp = client.query(question, timeout_s=60)
        gap = next((f"{r.distance_m * 100:.1f}" for r in resp.relations if math.isfinite(r.distance_m)), "-")
        text = resp.answer if resp.success else f"[dim]{resp.message}[/dim]"
        ok = "-"
        if truth in ("yes", "no"):
            asked += 1
            hit = resp.success and resp.answer.lower().startswith(truth)
            correct += hit
            ok = "[green]yes[/green]" if hit else "[red]no[/red]"
        answers.add_row(question, truth, text, f"{resp.confidence:.2f}" if resp.success else "-", gap, ok)
    console.print(answers)
    diag = client.diagnostics(NODE_NAME)
    console.print(f"answers matching the ground truth: {correct}/{asked}")
    console.print(f"player: {player.published} frames published at {args.rate:g} Hz; node: "
                  f"{diag.get('frames_out', '?')} frames processed, rate {diag.get('rate_hz', '?')} Hz, latency "
                  f"mean {diag.get('latency_mean_ms', '?')} ms / p95 {diag.get('latency_p95_ms', '?')} ms, "
                  f"stale frames dropped {diag.get('dropped_stale', '?')}, device {diag.get('device', '?')}")
    return True


def write_outputs(console, client, out: Path) -> None:
    import cv2
    import numpy as np

    from .recorder import McapRecorder

    images = client.messages("debug_image")
    picks = sorted({round(i) for i in np.linspace(0, len(images) - 1, min(4, len(images)))}) if images else []
    for old in out.glob("frame_*.png"):
        old.unlink()
    for k, i in enumerate(picks):
        m = images[i]
        rgb = np.frombuffer(m.data, np.uint8).reshape(m.height, m.width, 3)
        cv2.imwrite(str(out / f"frame_{k}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    rec = McapRecorder(out / "outputs.mcap")
    try:
        for name in ("detections", "relations", "markers", "depth", "debug_image", "diagnostics"):
            topic = "/diagnostics" if name == "diagnostics" else f"/{NODE_NAME}/{name}"
            for msg in client.messages(name):
                hdr = getattr(msg, "header", None)
                stamp = hdr.stamp.sec * 1_000_000_000 + hdr.stamp.nanosec if hdr is not None else time.time_ns()
                rec.write(topic, msg, stamp or time.time_ns())
    finally:
        rec.close()
    console.print(f"wrote {len(picks)} annotated PNGs and {rec.count} output messages to {out}/ "
                  "(frame_*.png, outputs.mcap)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spatial-vlm demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
