"""Camera stand-in for the node benchmark: publishes 640x480 RGB-D (+ camera info) at a fixed rate.

Runs as its own process (as a camera driver would) with the sensor-data QoS of camera drivers; each
tick stamps colour, depth and camera info with the same wall-clock time, so a subscriber can measure
stamp-to-output latency. Prints one JSON line at the end: the stamps it published.
Usage: python -m bench.node_publisher --namespace NS --frames-dir DIR [--hz 30] [--duration 40]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.node_publisher", description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--frames-dir", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of streaming after the node is seen")
    parser.add_argument("--wait-subscriber-s", type=float, default=120.0)
    parser.add_argument("--depth-encoding", default="16UC1", choices=("16UC1", "32FC1"))
    args = parser.parse_args(argv)
    if args.hz <= 0 or args.duration <= 0:
        print("bench.node_publisher: error: --hz and --duration must be > 0", file=sys.stderr)
        return 1

    import rclpy
    from builtin_interfaces.msg import Time
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from bench.common import load_frames
    from spatial_vlm_ros.ros.conversions import depth_to_image, intrinsics_to_camera_info, rgb_to_image

    frames = load_frames(args.frames_dir, args.frames)
    if not frames:
        print(f"bench.node_publisher: error: no frames in {args.frames_dir}", file=sys.stderr)
        return 1
    # Serialised once: a camera driver hands over ready buffers too (msg.data = bytes is ~free).
    messages = [(rgb_to_image(f.rgb), depth_to_image(f.depth, encoding=args.depth_encoding),
                 intrinsics_to_camera_info(f.intrinsics)) for f in frames]
    frame_id = "camera_color_optical_frame"

    from rclpy.signals import SignalHandlerOptions

    # Our own SIGINT handling: the benchmark stops the stream with SIGINT and still wants the stamps.
    rclpy.init(args=["bench_camera"], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_camera", namespace=args.namespace)
    pubs = (node.create_publisher(Image, "camera/color/image_raw", qos_profile_sensor_data),
            node.create_publisher(Image, "camera/aligned_depth_to_color/image_raw", qos_profile_sensor_data),
            node.create_publisher(CameraInfo, "camera/color/camera_info", qos_profile_sensor_data))
    stamps: list[int] = []
    try:
        deadline = time.monotonic() + args.wait_subscriber_s
        while min(p.get_subscription_count() for p in pubs) < 1:
            if time.monotonic() > deadline:
                print("bench.node_publisher: error: no subscriber appeared", file=sys.stderr)
                return 1
            time.sleep(0.05)
        try:
            _stream(pubs, messages, frame_id, 1.0 / args.hz, args.duration, stamps, Time)
        except KeyboardInterrupt:
            pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps({"published": len(stamps), "hz": args.hz, "stamps_ns": stamps}))
    return 0


def _stream(pubs, messages, frame_id: str, period: float, duration: float, stamps: list[int], time_msg) -> None:
    """Publish on an absolute schedule (no drift); appends each tick's stamp to `stamps`."""
    start = time.monotonic()
    tick = 0
    while True:
        due = start + tick * period
        if due - start >= duration:
            return
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        now_ns = time.time_ns()
        stamp = time_msg(sec=now_ns // 1_000_000_000, nanosec=now_ns % 1_000_000_000)
        for pub, msg in zip(pubs, messages[tick % len(messages)], strict=True):
            msg.header.stamp = stamp
            msg.header.frame_id = frame_id
            pub.publish(msg)
        stamps.append(now_ns)
        tick += 1


if __name__ == "__main__":
    sys.exit(main())
