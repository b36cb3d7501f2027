"""A client of the perception node over a real ROS graph: publishes RGB-D frames, collects every output
topic, calls the query service. The demo and the integration tests talk to the node through it."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..inference.types import CameraIntrinsics
from ..msg import DetectionArray, SpatialRelationArray
from ..srv import QuerySpatialRelation
from .conversions import depth_to_image, intrinsics_to_camera_info, rgb_to_image, xyz_to_pointcloud2
from .diagnostics import parse_values
from .spin import spin_through_destruction_races

OUTPUTS = {"detections": DetectionArray, "relations": SpatialRelationArray, "depth": Image, "markers": MarkerArray,
           "debug_image": Image}


@dataclass
class Received:
    msg: object
    wall_time: float


@dataclass
class InputTopics:
    color: str = "camera/color/image_raw"
    depth: str = "camera/aligned_depth_to_color/image_raw"
    camera_info: str = "camera/color/camera_info"
    points: str = "camera/depth/color/points"


def stamp_msg(stamp_ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))


@dataclass
class GraphClient:
    """Owns a node + executor thread. `node_fqn` is the perception node's full name, e.g. /spatial_vlm_node."""

    node_fqn: str = "/spatial_vlm_node"
    topics: InputTopics = field(default_factory=InputTopics)
    name: str = "spatial_vlm_client"
    keep: int = 50  # messages kept per output topic
    collect: bool = True  # subscribe to the node's outputs and /diagnostics
    inputs: bool = True  # create the camera-topic publishers

    def __post_init__(self) -> None:
        if not rclpy.ok():
            rclpy.init()
            self._owns_context = True
        else:
            self._owns_context = False
        self.node = Node(self.name)
        self.received: dict[str, list[Received]] = defaultdict(list)
        self._lock = threading.Lock()
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._pub = {}
        if self.inputs:
            self._pub = {"color": self.node.create_publisher(Image, self.topics.color, qos),
                         "depth": self.node.create_publisher(Image, self.topics.depth, qos),
                         "camera_info": self.node.create_publisher(CameraInfo, self.topics.camera_info, qos),
                         "points": self.node.create_publisher(PointCloud2, self.topics.points, qos)}
        if self.collect:
            for name, msg_type in OUTPUTS.items():
                self.node.create_subscription(msg_type, f"{self.node_fqn}/{name}", self._collector(name), qos)
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._collector("diagnostics"), qos)
        self.query_client = self.node.create_client(QuerySpatialRelation, f"{self.node_fqn}/query")
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            spin_through_destruction_races(self._executor, self.node.get_logger())
        except Exception:  # noqa: BLE001 - shutdown races end the spin thread quietly
            pass

    def _collector(self, name: str):
        def callback(msg) -> None:
            with self._lock:
                lst = self.received[name]
                lst.append(Received(msg, time.monotonic()))
                del lst[: -self.keep]
        return callback

    # --- inputs ---------------------------------------------------------------------------------
    def publish_frame(self, rgb: np.ndarray, intrinsics: CameraIntrinsics, depth_m: np.ndarray | None = None,
                      stamp_ns: int | None = None, frame_id: str = "camera_color_optical_frame",
                      points: np.ndarray | None = None, color_encoding: str = "rgb8",
                      depth_encoding: str = "16UC1") -> Header:
        stamp_ns = time.time_ns() if stamp_ns is None else stamp_ns
        header = Header(stamp=stamp_msg(stamp_ns), frame_id=frame_id)
        self._pub["camera_info"].publish(intrinsics_to_camera_info(intrinsics, header))
        if depth_m is not None:
            self._pub["depth"].publish(depth_to_image(depth_m, header, depth_encoding))
        if points is not None:
            self._pub["points"].publish(xyz_to_pointcloud2(points, header))
        self._pub["color"].publish(rgb_to_image(rgb, header, color_encoding))
        return header

    def publish_raw(self, key: str, msg) -> None:
        """Publish any message on one input topic (color, depth, camera_info, points): for bad-input tests."""
        self._pub[key].publish(msg)

    def wait_for_subscribers(self, timeout_s: float = 20.0, keys: tuple[str, ...] = ("color", "camera_info")) -> bool:
        """True once the perception node itself (not any other subscriber) listens on the input topics."""
        node_name = self.node_fqn.rsplit("/", 1)[-1]
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            ok = all(any(info.node_name == node_name
                         for info in self.node.get_subscriptions_info_by_topic(self._pub[k].topic_name))
                     for k in keys)
            if ok:
                return True
            time.sleep(0.1)
        return False

    # --- outputs --------------------------------------------------------------------------------
    def latest(self, name: str):
        with self._lock:
            lst = self.received.get(name) or []
            return lst[-1].msg if lst else None

    def messages(self, name: str) -> list:
        with self._lock:
            return [r.msg for r in self.received.get(name, [])]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def wait_for_stamp(self, name: str, stamp, timeout_s: float = 60.0):
        """The first `name` message whose header stamp equals `stamp` (a builtin_interfaces Time)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for m in self.messages(name):
                if m_header(m) is not None and m_header(m).stamp == stamp:
                    return m
            time.sleep(0.05)
        return None

    def wait_for(self, name: str, timeout_s: float = 60.0, count: int = 1):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            msgs = self.messages(name)
            if len(msgs) >= count:
                return msgs[-1]
            time.sleep(0.05)
        return None

    def diagnostics(self, node_name: str = "spatial_vlm_node") -> dict[str, str]:
        for m in reversed(self.messages("diagnostics")):
            if m.status and m.status[0].name.startswith(node_name):
                return parse_values(m)
        return {}

    # --- service --------------------------------------------------------------------------------
    def query(self, question: str = "", subject: str = "", obj: str = "", rtype: int = 255,
              timeout_s: float = 60.0):
        if not self.query_client.wait_for_service(timeout_sec=min(timeout_s, 20.0)):
            raise TimeoutError(f"service {self.node_fqn}/query is not available")
        req = QuerySpatialRelation.Request(question=question, subject=subject, object=obj, type=rtype)
        fut = self.query_client.call_async(req)
        end = time.monotonic() + timeout_s
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.01)
        if not fut.done():
            raise TimeoutError(f"no answer from {self.node_fqn}/query within {timeout_s:.0f} s")
        return fut.result()

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=1.0)
        self._thread.join(5.0)
        self.node.destroy_node()
        if self._owns_context and rclpy.ok():
            rclpy.shutdown()


def m_header(msg):
    if hasattr(msg, "header"):
        return msg.header
    if isinstance(msg, MarkerArray) and msg.markers:
        return msg.markers[0].header
    return None
