"""Issue 2 item 5: every custom message and the service round-trip between two processes over real rclpy.

The other process is a relay: it republishes what it receives on /rt/in_<Type> to /rt/out_<Type>
and answers QuerySpatialRelation by echoing the request into the response, so every field is checked
after two trips through DDS (serialise, transport, deserialise).
"""
from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from geometry_msgs.msg import Pose, Vector3  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from spatial_vlm_ros.msg import Detection, DetectionArray, SpatialRelation, SpatialRelationArray  # noqa: E402
from spatial_vlm_ros.srv import QuerySpatialRelation  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

pytestmark = pytest.mark.ros

RELAY = r"""
import sys, rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from spatial_vlm_ros.msg import Detection, DetectionArray, SpatialRelation, SpatialRelationArray
from spatial_vlm_ros.srv import QuerySpatialRelation
rclpy.init()
node = Node("roundtrip_relay")
qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
keep = []
for cls in (Detection, DetectionArray, SpatialRelation, SpatialRelationArray):
    pub = node.create_publisher(cls, f"/rt/out_{cls.__name__}", qos)
    keep.append(node.create_subscription(cls, f"/rt/in_{cls.__name__}", lambda m, p=pub: p.publish(m), qos))
def answer(req, resp):
    resp.success = True
    resp.answer = f"{req.question}|{req.subject}|{req.object}|{req.type}"
    resp.confidence = 0.25
    resp.relations = [SpatialRelation(subject=req.subject, object=req.object, type=2, predicate="on", holds=True,
                                      confidence=0.5, distance_m=float("nan"), source="geometry", text="t")]
    resp.stamp.sec, resp.stamp.nanosec = 7, 9
    resp.message = "echo"
    return resp
node.create_service(QuerySpatialRelation, "/rt/query", answer)
print("ready", flush=True)
try:
    rclpy.spin(node)
except Exception:
    pass
"""


@pytest.fixture(scope="module")
def relay():
    proc = subprocess.Popen([sys.executable, "-c", RELAY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def client_node(relay):
    rclpy.init()
    node = rclpy.create_node("roundtrip_client")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    yield node, executor
    node.destroy_node()
    rclpy.shutdown()


def detection(i: int) -> Detection:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = 0.1 * i, -0.2, 1.5
    pose.orientation.w = 1.0
    return Detection(id=f"obj{i}", label="mug", description=f"red mug {i}", score=0.75, x_min=10.0, y_min=20.0,
                     width=30.0, height=40.0, has_3d=True, center=pose, size=Vector3(x=0.08, y=0.1, z=0.08))


def relation() -> SpatialRelation:
    return SpatialRelation(subject_id="obj1", object_id="obj2", subject="red mug", object="blue book",
                           type=SpatialRelation.SUPPORT, predicate="on", holds=True, confidence=0.875,
                           distance_m=0.0625, source=SpatialRelation.SOURCE_FUSED,
                           text="The red mug is on the blue book.")


def header() -> Header:
    h = Header(frame_id="camera_color_optical_frame")
    h.stamp.sec, h.stamp.nanosec = 1234, 5678
    return h


def round_trip(client_node, msg, timeout_s: float = 20.0):
    node, executor = client_node
    name = type(msg).__name__
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    got = []
    sub = node.create_subscription(type(msg), f"/rt/out_{name}", got.append, qos)
    pub = node.create_publisher(type(msg), f"/rt/in_{name}", qos)
    try:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and (pub.get_subscription_count() == 0 or sub.get_publisher_count() == 0):
            executor.spin_once(timeout_sec=0.05)
        next_pub = 0.0
        while not got and time.monotonic() < end:
            if time.monotonic() >= next_pub:
                pub.publish(msg)
                next_pub = time.monotonic() + 1.0
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.destroy_subscription(sub)
        node.destroy_publisher(pub)
    assert got, f"{name} did not come back from the relay process"
    return got[0]


def test_detection_round_trip(client_node):
    msg = detection(3)
    assert round_trip(client_node, msg) == msg


def test_detection_array_round_trip(client_node):
    msg = DetectionArray(header=header(), detections=[detection(i) for i in range(4)])
    back = round_trip(client_node, msg)
    assert back == msg and back.header.stamp.nanosec == 5678 and back.detections[2].center.position.x == pytest.approx(0.2)


def test_spatial_relation_round_trip(client_node):
    msg = relation()
    back = round_trip(client_node, msg)
    assert back == msg and back.type == SpatialRelation.SUPPORT and back.source == "fused"


def test_spatial_relation_array_round_trip_keeps_nan_gap(client_node):
    nan_rel = relation()
    nan_rel.distance_m = float("nan")
    msg = SpatialRelationArray(header=header(), relations=[relation(), nan_rel], description="A mug on a book.")
    back = round_trip(client_node, msg)
    assert back.description == msg.description and back.header == msg.header
    assert back.relations[0] == msg.relations[0] and math.isnan(back.relations[1].distance_m)


def test_service_round_trip(client_node):
    node, executor = client_node
    cli = node.create_client(QuerySpatialRelation, "/rt/query")
    try:
        assert cli.wait_for_service(timeout_sec=20.0)
        req = QuerySpatialRelation.Request(question="is the mug on the book?", subject="mug", object="book",
                                           type=QuerySpatialRelation.Request.SUPPORT)
        fut = cli.call_async(req)
        executor.spin_until_future_complete(fut, timeout_sec=20.0)
        resp = fut.result()
    finally:
        node.destroy_client(cli)
    assert resp is not None and resp.success and resp.message == "echo"
    assert resp.answer == "is the mug on the book?|mug|book|2"
    assert resp.confidence == 0.25 and (resp.stamp.sec, resp.stamp.nanosec) == (7, 9)
    assert resp.relations[0].predicate == "on" and math.isnan(resp.relations[0].distance_m)
    assert QuerySpatialRelation.Request().type == QuerySpatialRelation.Request.ANY == 255
