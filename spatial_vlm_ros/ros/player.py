"""`rgbd_player` / `spatial-vlm play --input X`: publish an RGB-D sequence as a camera would.

Topics (relative, so a namespace puts them under the camera's): colour Image (rgb8), depth Image
(16UC1 mm) aligned to colour, CameraInfo, and optionally a PointCloud2 back-projected from depth.
Every frame is stamped with the current time, one stamp shared by all its messages, as a driver does.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..inference.geometry import backproject
from .graph_client import InputTopics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="scene folder (meta.json + samples.jsonl), .mcap, or realdata folder")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--loop", action="store_true", help="start again after the last frame")
    parser.add_argument("--count", type=int, default=0, help="stop after this many published frames (0 = all)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th frame of the input")
    parser.add_argument("--points", action="store_true", help="also publish a PointCloud2 from depth")
    parser.add_argument("--no-depth", action="store_true", help="publish colour + camera info only")
    parser.add_argument("--frame-id", default="camera_color_optical_frame")
    parser.add_argument("--frame-id-from-name", action="store_true",
                        help="use each frame's dataset name as frame_id (the node's annotations backend keys on it)")
    parser.add_argument("--namespace", default="", help="ROS namespace of the topics")
    parser.add_argument("--wait-subscribers", type=float, default=0.0,
                        help="wait up to this many seconds for a subscriber on the colour topic before starting")


def cloud_from_depth(depth: np.ndarray, intrinsics) -> np.ndarray:
    pts = backproject(depth, intrinsics).reshape(-1, 3)
    return pts[np.isfinite(pts).all(axis=1)]


def run(args: argparse.Namespace) -> int:
    if args.rate <= 0:
        raise ValueError("--rate must be > 0")
    from .sequence_source import SequenceSource

    source = SequenceSource(args.input, every=args.every)
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import Header

    from .conversions import depth_to_image, intrinsics_to_camera_info, rgb_to_image, xyz_to_pointcloud2
    from .graph_client import stamp_msg

    ros_args = ["--ros-args", "-r", f"__ns:=/{args.namespace.strip('/')}"] if args.namespace else []
    rclpy.init(args=["rgbd_player", *ros_args, *getattr(args, "ros_args", [])])
    node = Node("rgbd_player")
    topics = InputTopics()
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pub_color = node.create_publisher(Image, topics.color, qos)
    pub_info = node.create_publisher(CameraInfo, topics.camera_info, qos)
    pub_depth = None if args.no_depth else node.create_publisher(Image, topics.depth, qos)
    pub_points = node.create_publisher(PointCloud2, topics.points, qos) if args.points else None
    log = node.get_logger()
    log.info(f"playing {len(source)} frames of {source.path} ({source.kind}) at {args.rate:g} Hz"
             f"{' in a loop' if args.loop else ''} on {pub_color.topic_name}")
    if args.wait_subscribers > 0:
        end = time.monotonic() + args.wait_subscribers
        while pub_color.get_subscription_count() == 0 and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    cache: dict[int, tuple] = {}
    period = 1.0 / args.rate
    published, i = 0, 0
    next_t = time.monotonic()
    try:
        while rclpy.ok():
            if i >= len(source):
                if not args.loop:
                    break
                i = 0
            if i not in cache:
                f = source[i]
                cache[i] = (f.rgb, f.depth, f.intrinsics, f.name)
            rgb, depth, intr, name = cache[i]
            header = Header(stamp=stamp_msg(time.time_ns()), frame_id=name if args.frame_id_from_name else args.frame_id)
            pub_info.publish(intrinsics_to_camera_info(intr, header))
            if pub_depth is not None and depth is not None:
                pub_depth.publish(depth_to_image(depth, header, "16UC1"))
            if pub_points is not None and depth is not None:
                pub_points.publish(xyz_to_pointcloud2(cloud_from_depth(depth, intr), header))
            pub_color.publish(rgb_to_image(rgb, header))
            published += 1
            i += 1
            if args.count and published >= args.count:
                break
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:  # fell behind (slow disk / loaded CPU): do not burst to catch up
                next_t = time.monotonic()
            rclpy.spin_once(node, timeout_sec=max(0.0, delay))
    except KeyboardInterrupt:
        pass
    finally:
        log.info(f"published {published} frames")
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`ros2 run spatial_vlm_ros rgbd_player --input DIR [--rate 30] [--loop]` (ROS arguments are ignored)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:  # remappings from `ros2 run` / launch go to rclpy
        argv, ros_args = argv[: argv.index("--ros-args")], argv[argv.index("--ros-args"):]
    parser = argparse.ArgumentParser(prog="rgbd_player", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.ros_args = ros_args
    try:
        return run(args)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"rgbd_player: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
