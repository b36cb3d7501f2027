"""The RGB-D player (own process) publishes a sequence that a subscriber receives as a camera stream;
the sequence readers; MCAP recording that independent readers (mcap-ros2-support) decode."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from spatial_vlm_ros.ros.conversions import image_to_depth_m, pointcloud2_to_xyz  # noqa: E402
from spatial_vlm_ros.ros.sequence_source import SequenceSource, load_annotations  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    subprocess.run([sys.executable, "-m", "spatial_vlm_ros.cli", "generate", "--sequence", "--out", str(out),
                    "--seed", "3", "--frames", "2", "--split", "test", "--no-preview"], check=True,
                   capture_output=True, timeout=300)
    return out


def test_sequence_source_reads_generated_scenes(scenes):
    src = SequenceSource(scenes)
    f = src[0]
    assert src.kind == "scenes" and len(src) == 2
    assert f.rgb.shape == (480, 640, 3) and f.depth.shape == (480, 640) and f.intrinsics.width == 640
    assert f.questions and all(a in ("yes", "no") for _, a in f.questions)


def test_sequence_source_reads_real_frames(realdata):
    sun = SequenceSource(realdata / "sunrgbd_mmdet3d")
    assert sun.kind == "realdata" and len(sun) >= 1 and sun[0].annotations
    assert ("Is the lamp on the night stand?", "yes") in sun[0].questions
    everything = SequenceSource(realdata)
    assert len(everything) > len(sun)
    assert load_annotations(realdata / "sunrgbd_mmdet3d")[sun[0].name]
    with pytest.raises(ValueError):
        load_annotations(realdata / "nyuv2_metric3d_unidepth")


def test_sequence_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        SequenceSource(tmp_path / "missing")
    with pytest.raises(ValueError):
        SequenceSource(tmp_path)


def test_player_process_publishes_rgbd_and_cloud(scenes):
    rclpy.init()
    node = rclpy.create_node("player_test_listener")
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    got: dict[str, list] = {"color": [], "depth": [], "info": [], "points": []}
    node.create_subscription(Image, "/player_test/camera/color/image_raw", got["color"].append, qos)
    node.create_subscription(Image, "/player_test/camera/aligned_depth_to_color/image_raw", got["depth"].append, qos)
    node.create_subscription(CameraInfo, "/player_test/camera/color/camera_info", got["info"].append, qos)
    node.create_subscription(PointCloud2, "/player_test/camera/depth/color/points", got["points"].append, qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    proc = subprocess.Popen([sys.executable, "-m", "spatial_vlm_ros.cli", "play", "--input", str(scenes),
                             "--rate", "10", "--count", "4", "--loop", "--points", "--namespace", "player_test",
                             "--wait-subscribers", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(20):
            executor.spin_once(timeout_sec=0.05)
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
        rclpy.shutdown()
    assert proc.returncode == 0, output
    assert len(got["color"]) >= 3, output  # --count 4 with --loop over 2 frames
    c, d, i = got["color"][0], got["depth"][0], got["info"][0]
    assert (c.encoding, c.width, c.height) == ("rgb8", 640, 480) and d.encoding == "16UC1"
    assert c.header == d.header == i.header and c.header.frame_id == "camera_color_optical_frame"
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in got["color"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    depth = image_to_depth_m(d)
    assert 0.2 < np.nanmedian(depth) < 10.0
    assert len(pointcloud2_to_xyz(got["points"][0])) > 1000


def test_player_bad_input_is_one_line_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "spatial_vlm_ros.cli", "play", "--input", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "no such file" in out.stderr


def test_query_client_without_node_fails_cleanly():
    out = subprocess.run([sys.executable, "-m", "spatial_vlm_ros.cli", "query", "is the mug on the book?",
                          "--node", "/no_such_node", "--timeout", "2"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "not available" in out.stderr


def test_mcap_recording_opens_with_independent_reader(tmp_path):
    from mcap_ros2.reader import read_ros2_messages
    from spatial_vlm_ros.msg import SpatialRelation, SpatialRelationArray

    from spatial_vlm_ros.ros.conversions import depth_to_image, rgb_to_image
    from spatial_vlm_ros.ros.recorder import McapRecorder, read_messages

    path = tmp_path / "rec.mcap"
    rec = McapRecorder(path)
    rec.write("/cam/color", rgb_to_image(np.zeros((4, 5, 3), np.uint8)), 10)
    rec.write("/cam/depth", depth_to_image(np.ones((4, 5), np.float32)), 11)
    rel = SpatialRelationArray(relations=[SpatialRelation(subject="mug", predicate="on", confidence=0.5)],
                               description="a mug")
    rec.write("/node/relations", rel, 12)
    rec.close()
    ours = list(read_messages(path))
    assert [t for t, _, _ in ours] == ["/cam/color", "/cam/depth", "/node/relations"]
    assert ours[2][1] == rel
    theirs = {m.channel.topic: m.ros_msg for m in read_ros2_messages(str(path))}
    assert theirs["/cam/color"].width == 5 and theirs["/node/relations"].relations[0].subject == "mug"
