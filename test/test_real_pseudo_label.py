"""`spatial-vlm pseudo-label` on an unlabeled ROS 2 recording (MCAP) made from a real TUM frame."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from spatial_vlm_training.data.realdata import read_recording, read_tum_frame
from spatial_vlm_training.data.sample import load_split

pytest.importorskip("ai_edge_litert")
mcap_ros2_writer = pytest.importorskip("mcap_ros2.writer")

TIME = "int32 sec\nuint32 nanosec"
HEADER = "builtin_interfaces/Time stamp\nstring frame_id"
SEP = "\n" + "=" * 80 + "\n"
IMAGE = ("std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step\n"
         "uint8[] data" + SEP + "MSG: std_msgs/Header\n" + HEADER + SEP + "MSG: builtin_interfaces/Time\n" + TIME)
INFO = ("std_msgs/Header header\nuint32 height\nuint32 width\nstring distortion_model\nfloat64[] d\nfloat64[9] k\n"
        "float64[9] r\nfloat64[12] p\nuint32 binning_x\nuint32 binning_y\nsensor_msgs/RegionOfInterest roi"
        + SEP + "MSG: std_msgs/Header\n" + HEADER + SEP + "MSG: builtin_interfaces/Time\n" + TIME
        + SEP + "MSG: sensor_msgs/RegionOfInterest\nuint32 x_offset\nuint32 y_offset\nuint32 height\nuint32 width\n"
        "bool do_rectify")


def write_recording(path, frame, n: int = 2) -> None:
    """A RealSense-style recording: bgr8 colour, 16UC1 depth (mm) and CameraInfo at 10 Hz."""
    h, w = frame.depth.shape
    k = frame.intrinsics
    depth_mm = np.nan_to_num(frame.depth * 1000, nan=0).astype("<u2")
    with path.open("wb") as f:
        writer = mcap_ros2_writer.Writer(f)
        image_schema = writer.register_msgdef("sensor_msgs/msg/Image", IMAGE)
        info_schema = writer.register_msgdef("sensor_msgs/msg/CameraInfo", INFO)
        for i in range(n):
            t = 1_000_000_000 + i * 100_000_000
            header = {"stamp": {"sec": t // 10**9, "nanosec": t % 10**9}, "frame_id": "camera_color_optical_frame"}
            writer.write_message("/camera/color/image_raw", image_schema, {
                "header": header, "height": h, "width": w, "encoding": "bgr8", "is_bigendian": 0, "step": w * 3,
                "data": frame.rgb[:, :, ::-1].tobytes()}, log_time=t, publish_time=t)
            writer.write_message("/camera/aligned_depth_to_color/image_raw", image_schema, {
                "header": header, "height": h, "width": w, "encoding": "16UC1", "is_bigendian": 0, "step": w * 2,
                "data": depth_mm.tobytes()}, log_time=t + 5_000_000, publish_time=t)
            writer.write_message("/camera/color/camera_info", info_schema, {
                "header": header, "height": h, "width": w, "distortion_model": "plumb_bob", "d": [0.0] * 5,
                "k": [k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1], "r": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                "p": [k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0], "binning_x": 0, "binning_y": 0,
                "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False}},
                log_time=t, publish_time=t)
        writer.finish()


def test_mcap_recording_round_trips_frames(realdata, tmp_path):
    tum = read_tum_frame(realdata / "open3d_testdata")
    rec = tmp_path / "desk.mcap"
    write_recording(rec, tum)
    frames = list(read_recording(rec))
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0].rgb, tum.rgb)
    assert np.nanmax(np.abs(frames[0].depth - tum.depth)) < 0.0006
    assert frames[0].intrinsics == tum.intrinsics


def test_pseudo_label_command_writes_a_loadable_split(realdata, tmp_path):
    from spatial_vlm_training.data import pseudo_label

    rec = tmp_path / "desk.mcap"
    write_recording(rec, read_tum_frame(realdata / "open3d_testdata"))
    out = tmp_path / "split"
    parser = argparse.ArgumentParser()
    pseudo_label.add_arguments(parser)
    assert pseudo_label.run(parser.parse_args(["--input", str(rec), "--out", str(out), "--limit", "1"])) == 0
    split = load_split(out)
    assert split.meta.extra["source"] == "pseudo-label" and len(split) == 1
    sample = split.samples[0]
    cats = {o.category for o in sample.objects}
    assert "chair" in cats and ({"desk", "table"} & cats)
    depth, instance = sample.load_gt()
    assert instance.max() == len(sample.objects) and depth.shape == (480, 640)
    assert len(sample.relations) == len(sample.objects) * (len(sample.objects) - 1)
    assert sample.qa and all(q.answer for q in sample.qa)
    # A second run into the same folder is refused without --overwrite.
    with pytest.raises(ValueError, match="not empty"):
        pseudo_label.run(parser.parse_args(["--input", str(rec), "--out", str(out)]))


def test_bad_recordings_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_recording(tmp_path / "none.mcap"))
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"not an mcap file")
    with pytest.raises(ValueError, match="unreadable MCAP"):
        list(read_recording(junk))
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ValueError, match="not a recording"):
        list(read_recording(other))
