"""The ROS 2 node end to end: a 640x480 RGB-D stream at 30 Hz, then the same with ~/query at 50 req/s.

Three processes on one machine, real rclpy and the Fast DDS shared-memory profile of scripts/env.sh:
the node (`python -m spatial_vlm_ros.ros.node`, default config except rate.max_hz:=0 so its own
limiter does not cap the measurement), a camera stand-in (bench.node_publisher) and this probe, which
subscribes to the node's outputs and calls its service. A private namespace (and a random
ROS_DOMAIN_ID when none is set) keeps the run apart from anything else on the machine.
Writes bench/results/node.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO, RESULTS, generated_frames, machine, now_utc, summarize_ms, write_json

DEFAULT_OUT = RESULTS / "node.json"
TARGETS = {"node.output_hz": (">=", 15.0), "node.latency_p95_ms": ("<=", 100.0),
           "service.latency_p95_ms": ("<=", 50.0), "service.errors": ("==", 0)}
QUICK_ARGS = ["--duration", "6", "--warmup", "2", "--frames", "2"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of stream before measuring")
    parser.add_argument("--hz", type=float, default=30.0, help="input frame rate")
    parser.add_argument("--query-hz", type=float, default=50.0, help="service request rate in phase 2")
    parser.add_argument("--frames", type=int, default=6, help="distinct generated frames cycled by the camera")
    parser.add_argument("--max-hz", type=float, default=0.0, help="the node's rate.max_hz (0 = unlimited)")
    parser.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra node parameter override (repeatable)")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="OMP/MKL threads of the node process (0 = the node's own default)")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for the node")
    parser.add_argument("--service-timeout", type=float, default=2.0, help="a query slower than this is an error")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)


@dataclass
class Probe:
    """What the probe process saw: output messages (stamp, receipt) and service calls."""

    detections: list[tuple[int, int, int]] = field(default_factory=list)  # (stamp_ns, recv_ns, n_detections)
    relations: list[tuple[int, int]] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)
    latest_descriptions: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class ProbeNode:
    """rclpy side of the probe: subscriptions, service client, an executor thread."""

    def __init__(self, namespace: str, node_name: str = "spatial_vlm_node") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from spatial_vlm_ros.msg import DetectionArray, SpatialRelationArray
        from spatial_vlm_ros.srv import QuerySpatialRelation

        self.rclpy = rclpy
        self.srv_type = QuerySpatialRelation
        rclpy.init(args=["bench_probe"])
        self.node = rclpy.create_node("bench_probe", namespace=namespace)
        self.data = Probe()
        base = f"/{namespace}/{node_name}"
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(DetectionArray, f"{base}/detections", self._on_detections, qos)
        self.node.create_subscription(SpatialRelationArray, f"{base}/relations", self._on_relations, qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        # The replies of a 50/s burst need a deeper queue than the ROS services default of 10.
        self.client = self.node.create_client(QuerySpatialRelation, f"{base}/query", qos_profile=QoSProfile(depth=100))
        self.node_name = node_name
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_detections(self, msg) -> None:
        recv = time.time_ns()
        with self.data.lock:
            self.data.detections.append((_stamp_ns(msg.header), recv, len(msg.detections)))
            if len(msg.detections) >= 2:
                self.data.latest_descriptions = [d.description for d in msg.detections]

    def _on_relations(self, msg) -> None:
        recv = time.time_ns()
        with self.data.lock:
            self.data.relations.append((_stamp_ns(msg.header), recv))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if self.node_name in status.name:
                with self.data.lock:
                    self.data.diagnostics = {kv.key: kv.value for kv in status.values}

    def wait_for_service(self, timeout_s: float) -> bool:
        return self.client.wait_for_service(timeout_sec=timeout_s)

    def query(self, question: str, timeout_s: float) -> None:
        """Fire one request; its outcome lands in `data.calls` when it returns or times out."""
        request = self.srv_type.Request()
        request.question = question
        record = {"sent": time.perf_counter(), "done": None, "success": None, "error": None}
        with self.data.lock:
            self.data.calls.append(record)
        future = self.client.call_async(request)

        def finished(fut) -> None:
            record["done"] = time.perf_counter()
            try:
                record["success"] = bool(fut.result().success)
            except Exception as exc:  # noqa: BLE001 - any failed call is an error of the service
                record["error"] = type(exc).__name__
        future.add_done_callback(finished)
        record["future"] = future

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def _question(descriptions: list[str]) -> str:
    if len(descriptions) >= 2:
        return f"Is the {descriptions[0]} near the {descriptions[1]}?"
    return "Is the red mug near the blue book?"


def _cpu_sampler(node_pid: int, camera_pid: int):
    """CPU of the node, of the benchmark's own processes (their share is not the node's fault) and of
    the whole machine, each averaged since the previous call."""
    import psutil

    node, camera, probe = psutil.Process(node_pid), psutil.Process(camera_pid), psutil.Process()
    for proc in (node, camera, probe):
        proc.cpu_percent(None)
    psutil.cpu_percent(None)

    def read() -> dict:
        return {"node_cpu_percent": round(node.cpu_percent(None), 1),
                "camera_process_cpu_percent": round(camera.cpu_percent(None), 1),
                "probe_process_cpu_percent": round(probe.cpu_percent(None), 1),
                "machine_cpu_percent": round(psutil.cpu_percent(None), 1),
                "node_threads": node.num_threads(), "node_rss_MB": round(node.memory_info().rss / 1e6, 1)}
    return read


def _phase_metrics(probe: Probe, published: list[int], t0_ns: int, t1_ns: int) -> dict:
    """Rate, latency and drops over frames *stamped* inside [t0, t1)."""
    with probe.lock:
        outputs = [(s, r) for s, r, _n in probe.detections if t0_ns <= s < t1_ns]
    in_window = [s for s in published if t0_ns <= s < t1_ns]
    seen = {s for s, _ in outputs}
    latencies = [(r - s) / 1e6 for s, r in outputs]
    lat = summarize_ms(latencies)
    seconds = (t1_ns - t0_ns) / 1e9
    return {"output_hz": round(len(seen) / seconds, 2), "input_hz": round(len(in_window) / seconds, 2),
            "frames_published": len(in_window), "frames_output": len(seen),
            "dropped_frames": max(0, len(in_window) - len(seen & set(in_window))),
            "latency_median_ms": lat.get("median_ms"), "latency_p95_ms": lat.get("p95_ms"),
            "latency_max_ms": lat.get("max_ms")}


def _service_metrics(calls: list[dict], timeout_s: float, seconds: float) -> dict:
    latencies, unsuccessful = [], 0
    failures = {"no_reply_within_timeout": 0, "exception": 0, "too_slow": 0}
    for c in calls:
        if c["done"] is None:
            failures["no_reply_within_timeout"] += 1
            continue
        if c["error"] is not None:
            failures["exception"] += 1
            continue
        if c["done"] - c["sent"] > timeout_s:
            failures["too_slow"] += 1
            continue
        latencies.append((c["done"] - c["sent"]) * 1000.0)
        if not c["success"]:
            unsuccessful += 1
    lat = summarize_ms(latencies)
    return {"requests": len(calls), "request_hz": round(len(calls) / seconds, 2), "errors": sum(failures.values()),
            "errors_by_kind": failures,
            "unsuccessful_answers": unsuccessful, "latency_median_ms": lat.get("median_ms"),
            "latency_p95_ms": lat.get("p95_ms"), "latency_max_ms": lat.get("max_ms")}


def _wait_for_replies(probe: Probe, timeout_s: float) -> None:
    """Until every call has its reply, or `timeout_s` has passed since the last was sent."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        with probe.lock:
            if all(c["done"] is not None for c in probe.calls):
                return
        time.sleep(0.02)


def _stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _target_table(d: dict) -> dict:
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = d.get(key)
        met = None if value is None else {"<=": value <= bound, ">=": value >= bound, "==": value == bound}[op]
        out[key] = {"target": f"{op} {bound}", "measured": value, "met": met}
    return out


def run(args: argparse.Namespace) -> int:
    if args.duration <= 0 or args.warmup < 0 or args.hz <= 0 or args.query_hz <= 0 or args.frames < 1 \
            or args.torch_threads < 0:
        raise ValueError("--duration, --hz, --query-hz must be > 0, --frames >= 1, --warmup >= 0")
    for override in args.node_param:
        if ":=" not in override:
            raise ValueError(f"--node-param needs NAME:=VALUE, got {override!r}")
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           "FASTDDS_DEFAULT_PROFILES_FILE")})
    node_env = dict(env)
    if args.torch_threads > 0:
        # torch's intra-op pool size is read from these at start-up
        node_env.update(OMP_NUM_THREADS=str(args.torch_threads), MKL_NUM_THREADS=str(args.torch_threads))
    namespace = f"svlm_bench_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="svlm_bench_node_"))
    print(f"generating {args.frames} frames (640x480) ...", flush=True)
    generated_frames(args.frames, workdir=work / "frames")

    params = REPO / "config" / "spatial_vlm.yaml"
    node_cmd = [sys.executable, "-m", "spatial_vlm_ros.ros.node", "--ros-args", "--params-file", str(params),
                "-p", f"rate.max_hz:={float(args.max_hz)}", "-r", f"__ns:=/{namespace}"]
    for override in args.node_param:
        node_cmd += ["-p", override]
    stream_s = args.warmup + 2 * args.duration + 30.0  # margin for a slow first frame
    pub_cmd = [sys.executable, "-m", "bench.node_publisher", "--namespace", namespace, "--frames-dir",
               str(work / "frames"), "--frames", str(args.frames), "--hz", str(args.hz), "--duration", str(stream_s)]

    data: dict = {"benchmark": "node", "date_utc": now_utc(), "machine": machine(), "complete": False, "errors": {},
                  "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "input_hz": args.hz,
                               "input_size": "640x480", "depth_encoding": "16UC1", "query_hz": args.query_hz,
                               "node_params": [str(params.relative_to(REPO)), f"rate.max_hz:={args.max_hz}",
                                               *args.node_param],
                               "transport": "Fast DDS shared memory (config/fastdds_shm.xml)",
                               "node_torch_threads": args.torch_threads or "default",
                               "ros_domain_id": env["ROS_DOMAIN_ID"]}}
    node_log = open(work / "node.log", "w")
    node_proc = subprocess.Popen(node_cmd, cwd=REPO, env=node_env, stdout=node_log, stderr=subprocess.STDOUT)
    pub_proc = None
    probe = ProbeNode(namespace)
    try:
        if not probe.wait_for_service(args.startup_timeout):
            raise TimeoutError(f"the node did not come up in {args.startup_timeout:.0f} s (log: {work / 'node.log'}: "
                               f"{_tail(work / 'node.log')})")
        pub_proc = subprocess.Popen(pub_cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        deadline = time.monotonic() + args.startup_timeout
        while not probe.data.detections:
            if time.monotonic() > deadline or pub_proc.poll() is not None or node_proc.poll() is not None:
                raise TimeoutError(f"no output from the node (log: {_tail(work / 'node.log')})")
            time.sleep(0.05)
        time.sleep(args.warmup)

        cpu = _cpu_sampler(node_proc.pid, pub_proc.pid)
        print(f"phase 1: stream only, {args.duration:.0f} s", flush=True)
        t0 = time.time_ns()
        time.sleep(args.duration)
        t1 = time.time_ns()
        cpu_stream = cpu()

        print(f"phase 2: stream + {args.query_hz:.0f} queries/s, {args.duration:.0f} s", flush=True)
        period = 1.0 / args.query_hz
        start = time.monotonic()
        n = 0
        while True:
            due = start + n * period
            if due - start >= args.duration:
                break
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with probe.data.lock:
                question = _question(probe.data.latest_descriptions)
            probe.query(question, args.service_timeout)
            n += 1
        t2 = time.time_ns()
        cpu_load = cpu()
        _wait_for_replies(probe.data, args.service_timeout)
        _stop(pub_proc)
        out, err = pub_proc.communicate(timeout=30)
        published = json.loads(out.strip().splitlines()[-1])["stamps_ns"] if out.strip() else []
        if not published:
            raise ChildProcessError(f"camera stand-in reported nothing: {err.strip()[-300:]}")

        stream = _phase_metrics(probe.data, published, t0, t1)
        loaded = _phase_metrics(probe.data, published, t1, t2)
        with probe.data.lock:
            calls = [dict(c) for c in probe.data.calls]
            diagnostics = dict(probe.data.diagnostics)
        service = _service_metrics(calls, args.service_timeout, (t2 - t1) / 1e9)
        for key, value in stream.items():
            data[f"node.{key}"] = value
        data.update({f"node.{k}": v for k, v in cpu_stream.items()})
        for key, value in loaded.items():
            data[f"node_under_query_load.{key}"] = value
        data.update({f"node_under_query_load.{k}": v for k, v in cpu_load.items()})
        for key, value in service.items():
            data[f"service.{key}"] = value
        data["node_diagnostics_last"] = diagnostics
        with probe.data.lock:
            data["probe_raw"] = {"detections_msgs": len(probe.data.detections),
                                 "relations_msgs": len(probe.data.relations),
                                 "first_output_stamp_s_before_phase1": round((t0 - probe.data.detections[0][0]) / 1e9, 3),
                                 "last_output_stamp_s_after_phase1_start": round(
                                     (probe.data.detections[-1][0] - t0) / 1e9, 3)}
        data["targets"] = _target_table(data)
        data["complete"] = True
    finally:
        if pub_proc is not None:
            _stop(pub_proc)
        _stop(node_proc)
        node_log.close()
        probe.close()
    write_json(args.out, data)
    missed = [k for k, t in data["targets"].items() if t["met"] is False]
    print("targets: " + ("all met" if not missed else "missed " + ", ".join(
        f"{k} ({data['targets'][k]['measured']})" for k in missed)))
    return 0


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
