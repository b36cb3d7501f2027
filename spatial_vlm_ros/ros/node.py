"""`spatial_vlm_node`: the lifecycle node that runs a SpatialEngine on synchronised RGB-D.

Thin by design: conversions, synchronisation, frame validation, fusion, markers, diagnostics and the
query logic each live in their own module; this file only wires them to ROS.

Lifecycle (yolo_ros style): parameters are read and the model is loaded in on_configure (a missing
or corrupt model fails the transition with one logged line, the node stays alive), subscriptions
exist only while active, memory is freed in on_cleanup. `autostart` (default true) configures and
activates at start, for graphs without a lifecycle manager.

Threads: subscription callbacks only feed the synchroniser, which hands the newest complete set to
the inference thread (InferenceWorker) that owns the engine; the query service has its own callback
group, so a MultiThreadedExecutor keeps it responsive while a frame is being processed.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..inference.factory import build_engine, free_engine
from ..msg import DetectionArray, SpatialRelationArray
from ..srv import QuerySpatialRelation
from .conversions import depth_to_image, rgb_to_image
from .debug_image import annotate
from .diagnostics import NodeStats
from .frame_assembly import InputError, assemble_frame, resize_frame, restore_scene, stamp_to_ns
from .fusion import cross_check
from .inference_worker import InferenceWorker
from .markers import MarkerTracker
from .params import PARAMETERS, NodeParams, from_values
from .query_handler import SceneState, handle_query
from .scene_messages import relation_to_msg, scene_to_msgs
from .spin import spin_through_destruction_races

NODE_NAME = "spatial_vlm_node"
WARN_THROTTLE_S = 5.0
ANSWER_TIMEOUT_S = 30.0


class SpatialVlmNode(LifecycleNode):
    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self.declare_parameter("autostart", PARAMETERS["autostart"][0])
        self.params: NodeParams | None = None
        self.engine_info = None
        self.stats = NodeStats()
        self._latest: SceneState | None = None
        self._subs: list = []
        self._pubs: dict = {}
        self._worker: InferenceWorker | None = None
        self._sync = None
        self._recorder = None
        self._markers = MarkerTracker()
        self._active = False
        self._last_warned: dict[str, float] = {}
        self._service = None
        self._diag_timer = None
        self._diag_pub = None
        self._sensor_group = ReentrantCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()

    # --- lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = {}
        for name, (default, _) in PARAMETERS.items():
            if not self.has_parameter(name):
                self.declare_parameter(name, default)
            values[name] = self.get_parameter(name).value
        try:
            self.params = p = from_values(values)
        except ValueError as exc:
            self.get_logger().error(f"configure failed: bad parameter: {exc}")
            return TransitionCallbackReturn.FAILURE
        try:
            spec = p.engine_spec()
            if p.backend == "annotations":
                from .sequence_source import load_annotations

                spec.annotations = load_annotations(p.annotations_path)
            self.engine_info = build_engine(spec)
        except (FileNotFoundError, ValueError, ImportError, OSError, RuntimeError) as exc:
            self.get_logger().error(f"configure failed: cannot load the model: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.stats = NodeStats(device=self.engine_info.device, model=f"{self.engine_info.backend}:{self.engine_info.model_path}")
        qos = p.qos_depth
        self._pubs = {
            "detections": self.create_lifecycle_publisher(DetectionArray, "~/detections", qos),
            "relations": self.create_lifecycle_publisher(SpatialRelationArray, "~/relations", qos),
            "depth": self.create_lifecycle_publisher(Image, "~/depth", qos),
        }
        if p.publish_markers:
            self._pubs["markers"] = self.create_lifecycle_publisher(MarkerArray, "~/markers", qos)
        if p.publish_debug_image:
            self._pubs["debug_image"] = self.create_lifecycle_publisher(Image, "~/debug_image", qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(p.diagnostics_period_s, self._publish_diagnostics,
                                             callback_group=self._timer_group)
        self._service = self.create_service(QuerySpatialRelation, "~/query", self._on_query,
                                            qos_profile=QoSProfile(depth=p.query_queue_depth,
                                                                   reliability=ReliabilityPolicy.RELIABLE),
                                            callback_group=self._service_group)
        if p.record_mcap_path:
            from .recorder import McapRecorder

            try:
                self._recorder = McapRecorder(p.record_mcap_path)
            except OSError as exc:
                self.get_logger().error(f"configure failed: cannot record to {p.record_mcap_path}: {exc}")
                self._release()
                return TransitionCallbackReturn.FAILURE
        self._worker = InferenceWorker(self._process, p.max_rate_hz, on_error=self._on_worker_error)
        self.get_logger().info(f"configured: backend={self.engine_info.backend} device={self.engine_info.device} "
                               f"model={self.engine_info.model_path} input={p.input_mode}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        from .synchronizer import ApproximateTimeSynchronizer

        p = self.params
        qos = QoSProfile(depth=p.qos_depth, reliability=ReliabilityPolicy.RELIABLE) if p.qos_reliable else \
            QoSProfile(depth=p.qos_depth, reliability=qos_profile_sensor_data.reliability,
                       durability=qos_profile_sensor_data.durability, history=qos_profile_sensor_data.history)
        keys = ["color", "camera_info"] + {"depth": ["depth"], "points": ["points"], "color_only": []}[p.input_mode]
        self._sync = ApproximateTimeSynchronizer(keys, p.sync_slop_s, p.sync_queue_size, callback=self._on_synced)
        topics = {"color": (Image, p.topic_color), "camera_info": (CameraInfo, p.topic_camera_info),
                  "depth": (Image, p.topic_depth), "points": (PointCloud2, p.topic_points)}
        for key in keys:
            msg_type, topic = topics[key]
            self._subs.append(self.create_subscription(msg_type, topic, self._make_callback(key), qos,
                                                       callback_group=self._sensor_group))
        self._active = True
        self.get_logger().info(f"active: listening on {', '.join(s.topic_name for s in self._subs)}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if "markers" in self._pubs:
            self._pubs["markers"].publish(self._markers.clear(Header(frame_id=self.params.default_frame_id)))
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        for attr, destroy in (("_service", self.destroy_service), ("_diag_timer", self.destroy_timer),
                              ("_diag_pub", self.destroy_publisher)):
            if getattr(self, attr) is not None:
                destroy(getattr(self, attr))
                setattr(self, attr, None)
        self._latest = None
        free_engine(self.engine_info)
        self.engine_info = None

    # --- input -----------------------------------------------------------------------------------
    def _make_callback(self, key: str):
        topic = {"color": self.params.topic_color, "camera_info": self.params.topic_camera_info,
                 "depth": self.params.topic_depth, "points": self.params.topic_points}[key]

        def callback(msg) -> None:
            if not self._active or self._sync is None:
                return
            stamp = stamp_to_ns(msg.header.stamp)
            if key == "color":
                self.stats.frames_in += 1
            if self._recorder is not None:
                self._recorder.write(self.resolve_topic_name(topic), msg, stamp or time.time_ns())
            self._sync.add(key, stamp, msg)
            s = self._sync.stats
            for kind, value in (("out_of_order", s.out_of_order), ("duplicate_stamp", s.duplicate),
                                ("sync_overflow", s.overflow)):
                self.stats.set_dropped(kind, value)
        return callback

    def _on_synced(self, msgs: dict, stamp_ns: int) -> None:
        worker = self._worker
        if worker is not None:
            worker.submit((msgs, time.monotonic()))
            self.stats.set_dropped("stale", worker.stats.dropped_stale)

    def _warn(self, kind: str, message: str) -> None:
        """Count every occurrence; log each kind at most once per WARN_THROTTLE_S (rclpy's own throttle
        is per call site, which would let one noisy kind hide all others)."""
        self.stats.count_error(kind)
        now = time.monotonic()
        if now - self._last_warned.get(kind, -1e9) >= WARN_THROTTLE_S:
            self._last_warned[kind] = now
            self.get_logger().warning(f"{kind}: {message}")

    def _on_worker_error(self, kind: str, exc: Exception) -> None:
        self._warn(f"inference_{kind}", str(exc))

    # --- the inference thread ----------------------------------------------------------------------
    def _process(self, item) -> None:
        msgs, received = item
        p, info = self.params, self.engine_info
        if p is None or info is None:
            return
        t = time.perf_counter()
        try:
            frame = assemble_frame(msgs["color"], msgs["camera_info"], msgs.get("depth"), msgs.get("points"),
                                   p.default_frame_id)
        except InputError as exc:
            self._warn(exc.kind, str(exc))
            return
        engine_frame = resize_frame(frame, p.input_width, p.input_height)
        stages = {"assemble": _ms_since(t)}
        scene = info.engine.infer(engine_frame)
        stages.update({f"infer_{k}": v for k, v in (scene.timings_ms or {}).items()})
        t = time.perf_counter()
        scene = restore_scene(scene, frame.intrinsics, engine_frame.intrinsics)
        checked = cross_check(scene, frame, p.fusion_rule, p.thresholds)
        stages["cross_check"] = _ms_since(t)
        t = time.perf_counter()
        header = Header(stamp=msgs["color"].header.stamp, frame_id=frame.frame_id)
        dets_msg, rels_msg = scene_to_msgs(scene, checked.relations, header)
        depth = scene.depth if scene.depth is not None else frame.depth
        out = [("detections", dets_msg), ("relations", rels_msg)]
        if depth is not None and depth.shape == frame.rgb.shape[:2]:
            out.append(("depth", depth_to_image(depth, header)))
        if "markers" in self._pubs:
            out.append(("markers", self._markers.build(scene.detections, checked.relations, header)))
        if "debug_image" in self._pubs:
            out.append(("debug_image", rgb_to_image(annotate(frame.rgb, scene.detections, checked.relations), header)))
        self._latest = SceneState(frame, scene, checked.relations, frame.stamp_ns)
        for name, msg in out:
            pub = self._pubs.get(name)
            if pub is None or not self._active:
                continue
            pub.publish(msg)
            if self._recorder is not None:
                self._recorder.write(self.resolve_topic_name(f"~/{name}"), msg, frame.stamp_ns or time.time_ns())
        stages["messages_and_publish"] = _ms_since(t)
        self.stats.add_stages(stages)
        self.stats.frame_done((time.monotonic() - received) * 1000.0)

    # --- service and diagnostics -------------------------------------------------------------------
    def _on_query(self, request, response):
        self.stats.queries += 1
        worker, info, state = self._worker, self.engine_info, self._latest
        if not self._active or worker is None or info is None:
            response.success, response.message = False, "node is not active (configure + activate it first)"
            self.stats.queries_failed += 1
            return response

        def ask_model(question: str):
            return worker.call(lambda: info.engine.answer(state.frame, state.scene, question), ANSWER_TIMEOUT_S)

        outcome = handle_query(state, request.question, request.subject, request.object, int(request.type), ask_model,
                               second_look=self.params.second_look)
        response.success = bool(outcome.success)
        response.answer = outcome.answer
        response.confidence = float(outcome.confidence)
        response.relations = [relation_to_msg(r) for r in outcome.relations]
        response.stamp.sec, response.stamp.nanosec = divmod(int(outcome.stamp_ns), 1_000_000_000)
        response.message = outcome.message
        if not outcome.success:
            self.stats.queries_failed += 1
            self._warn("query_rejected", outcome.message)
        return response

    def _check_unsynced(self) -> None:
        """Colour arrives but no complete set forms (a missing camera_info or depth topic, or stamps
        further apart than the slop): say which stream is missing instead of staying silent."""
        sync = self._sync
        if sync is None or not self._active:
            return
        received, emitted = dict(sync.stats.received), sync.stats.emitted
        last = getattr(self, "_last_sync_counts", None)
        self._last_sync_counts = (received, emitted)
        if last is None or emitted > last[1] or received.get("color", 0) <= last[0].get("color", 0):
            return
        silent = [k for k in sync.keys if received.get(k, 0) == last[0].get(k, 0)]
        why = f"no messages on {', '.join(silent)}" if silent else f"stamps further apart than {self.params.sync_slop_s} s"
        self._warn("unsynced", f"colour frames arrive but no complete set forms: {why}")

    def _publish_diagnostics(self) -> None:
        if self._diag_pub is None:
            return
        self.stats.set_dropped("stale", self._worker.stats.dropped_stale if self._worker else 0)
        self._check_unsynced()
        self._diag_pub.publish(self.stats.to_msg(self.get_clock().now().to_msg(), self.get_name(),
                                                 healthy=self.engine_info is not None))


def _ms_since(t: float) -> float:
    return (time.perf_counter() - t) * 1000.0


def autostart(node: SpatialVlmNode) -> bool:
    if not node.get_parameter("autostart").value:
        return True
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().error("autostart: configure failed; the node stays unconfigured (fix and reconfigure)")
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


GIL_SWITCH_INTERVAL_S = 0.0005


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    # The inference thread runs thousands of short numpy calls per frame, each releasing the GIL; with
    # Python's default 5 ms switch interval every release can cost it 5 ms behind the executor threads
    # (a GIL convoy). Measured with a 30 Hz camera on 2 cores: 1.2 -> 2.0 Hz output, and service
    # timeouts 500 -> 6 per 1000 calls (bench/README.md).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    rclpy.init(args=argv)
    node = SpatialVlmNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    threading.Thread(target=autostart, args=(node,), daemon=True).start()
    try:
        spin_through_destruction_races(executor, node.get_logger())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._active = False
        node._release()
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


# --- `spatial-vlm node` ------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params-file", help="YAML parameters (default: config/spatial_vlm.yaml)")
    parser.add_argument("--model", help="student checkpoint directory (model.path)")
    parser.add_argument("--backend", choices=("student", "oid_ssd", "both", "annotations"), help="model.backend")
    parser.add_argument("--device", help="model.device: auto | cpu | cuda")
    parser.add_argument("--namespace", help="ROS namespace (e.g. the camera's)")
    parser.add_argument("--record", help="record inputs and outputs to this MCAP file")
    parser.add_argument("ros_args", nargs=argparse.REMAINDER, help="extra arguments after --ros-args")


def ros_arguments(args: argparse.Namespace, default_params: str | None = None) -> list[str]:
    from pathlib import Path

    out = ["--ros-args"]
    params_file = args.params_file or default_params
    if params_file:
        if not Path(params_file).is_file():
            raise FileNotFoundError(f"parameters file not found: {params_file}")
        out += ["--params-file", str(params_file)]
    for flag, name in (("model", "model.path"), ("backend", "model.backend"), ("device", "model.device"),
                       ("record", "record.mcap_path")):
        value = getattr(args, flag, None)
        if value:
            out += ["-p", f"{name}:={value}"]
    if getattr(args, "namespace", None):
        out += ["-r", f"__ns:=/{args.namespace.strip('/')}"]
    extra = [a for a in (args.ros_args or []) if a not in ("--ros-args", "--")]
    return out + extra


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    default = Path(__file__).resolve().parents[2] / "config" / "spatial_vlm.yaml"
    return main(["spatial_vlm_node"] + ros_arguments(args, str(default) if default.is_file() else None))


if __name__ == "__main__":
    sys.exit(main())
