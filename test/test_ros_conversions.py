"""Image / CameraInfo / PointCloud2 conversions: round trips, every encoding, bad input, and a fuzzer."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("rclpy")
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField  # noqa: E402

from spatial_vlm_ros.inference.types import CameraIntrinsics  # noqa: E402
from spatial_vlm_ros.ros.conversions import (  # noqa: E402
    ConversionError,
    camera_info_to_intrinsics,
    depth_to_image,
    image_to_depth_m,
    image_to_rgb,
    intrinsics_to_camera_info,
    pointcloud2_to_xyz,
    rgb_to_image,
    xyz_to_pointcloud2,
)


def wire(msg):
    """What a subscriber receives: the message after CDR serialisation."""
    return deserialize_message(serialize_message(msg), type(msg))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_color_round_trip_every_encoding(encoding):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    assert np.array_equal(image_to_rgb(wire(rgb_to_image(rgb, encoding=encoding))), rgb)


def test_mono8_becomes_grey_rgb():
    rgb = np.full((4, 6, 3), 90, np.uint8)
    out = image_to_rgb(wire(rgb_to_image(rgb, encoding="mono8")))
    assert out.shape == (4, 6, 3) and (out == 90).all()


def test_padded_rows_and_big_endian_depth():
    depth_mm = np.array([[1000, 2000, 0], [1500, 65535, 3]], dtype=np.uint16)
    msg = Image(height=2, width=3, encoding="16UC1", is_bigendian=1, step=8)
    rows = [depth_mm[r].astype(">u2").tobytes() + b"\x00\x00" for r in range(2)]
    msg.data = b"".join(rows)
    d = image_to_depth_m(msg)
    assert d[0, 0] == pytest.approx(1.0) and d[1, 1] == pytest.approx(65.535) and np.isnan(d[0, 2])


def test_depth_32fc1_invalid_values_become_nan():
    d = np.array([[1.0, np.nan, np.inf], [0.0, -1.0, 2.5]], np.float32)
    out = image_to_depth_m(wire(depth_to_image(d)))
    assert out[0, 0] == 1.0 and out[1, 2] == 2.5
    assert np.isnan(out[0, 1:]).all() and np.isnan(out[1, :2]).all()


def test_depth_16uc1_round_trip_in_millimetres():
    d = np.array([[0.5, 1.234], [np.nan, 3.0]], np.float32)
    out = image_to_depth_m(wire(depth_to_image(d, encoding="16UC1")))
    assert np.allclose(out[[0, 0, 1], [0, 1, 1]], [0.5, 1.234, 3.0], atol=1e-3) and np.isnan(out[1, 0])


@pytest.mark.parametrize("bad", [
    dict(encoding="yuv422", height=2, width=2, step=4, data=bytes(8)),
    dict(encoding="rgb8", height=2, width=2, step=6, data=bytes(5)),
    dict(encoding="rgb8", height=2, width=2, step=3, data=bytes(12)),
    dict(encoding="rgb8", height=0, width=2, step=6, data=b""),
])
def test_bad_color_images_raise_one_line_errors(bad):
    with pytest.raises(ConversionError) as err:
        image_to_rgb(Image(**bad))
    assert "\n" not in str(err.value)


def test_depth_rejects_color_encoding():
    with pytest.raises(ConversionError, match="depth encoding"):
        image_to_depth_m(rgb_to_image(np.zeros((2, 2, 3), np.uint8)))


def test_camera_info_round_trip_and_invalid():
    intr = CameraIntrinsics(500.0, 501.0, 320.5, 240.5, 640, 480)
    assert camera_info_to_intrinsics(wire(intrinsics_to_camera_info(intr))) == intr
    with pytest.raises(ConversionError, match="invalid camera intrinsics"):
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))
    bad = intrinsics_to_camera_info(intr)
    bad.k[0] = float("nan")
    with pytest.raises(ConversionError):
        camera_info_to_intrinsics(bad)


def test_cloud_round_trip_with_colours_and_organised():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(12, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (12, 3)).astype(np.uint8)
    xyz, rgb = pointcloud2_to_xyz(wire(xyz_to_pointcloud2(pts, rgb=cols, organised_hw=(3, 4))), with_rgb=True)
    assert np.allclose(xyz, pts) and np.array_equal(rgb, cols)


def test_cloud_drops_nan_points_and_handles_empty_and_foreign_layouts():
    pts = np.array([[0, 0, 1], [np.nan, 0, 1], [1, 2, 3]], np.float32)
    assert pointcloud2_to_xyz(wire(xyz_to_pointcloud2(pts))).shape == (2, 3)
    assert pointcloud2_to_xyz(xyz_to_pointcloud2(np.zeros((0, 3)))).shape == (0, 3)
    # float64 fields, padded point_step, fields out of order: what other drivers publish
    rec = np.zeros(2, dtype=[("z", "<f8"), ("pad", "<u4"), ("x", "<f8"), ("y", "<f8")])
    rec["x"], rec["y"], rec["z"] = [1, 2], [3, 4], [5, 6]
    msg = PointCloud2(height=1, width=2, point_step=rec.dtype.itemsize, row_step=2 * rec.dtype.itemsize,
                      fields=[PointField(name="x", offset=12, datatype=PointField.FLOAT64, count=1),
                              PointField(name="y", offset=20, datatype=PointField.FLOAT64, count=1),
                              PointField(name="z", offset=0, datatype=PointField.FLOAT64, count=1)])
    msg.data = rec.tobytes()
    assert np.allclose(pointcloud2_to_xyz(msg), [[1, 3, 5], [2, 4, 6]])


def test_cloud_without_xyz_or_short_data_raises():
    with pytest.raises(ConversionError, match="no x/y/z"):
        pointcloud2_to_xyz(PointCloud2(height=1, width=1, point_step=4))
    msg = xyz_to_pointcloud2(np.ones((4, 3)))
    msg.data = bytes(msg.data)[:20]
    with pytest.raises(ConversionError, match="bytes"):
        pointcloud2_to_xyz(msg)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoding=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "16UC1", "32FC1", "yuv422", ""]),
       height=st.integers(-1, 9), width=st.integers(-1, 9), step=st.integers(-4, 64),
       data=st.binary(max_size=400), big=st.booleans())
def test_fuzz_image_decoders_never_crash(encoding, height, width, step, data, big):
    msg = Image(encoding=encoding, height=max(0, height), width=max(0, width), step=max(0, step), is_bigendian=int(big))
    msg.data = data
    for decode in (image_to_rgb, image_to_depth_m):
        try:
            out = decode(msg)
        except ConversionError:
            continue
        assert out.shape[:2] == (msg.height, msg.width)
        if decode is image_to_depth_m:
            assert out.dtype == np.float32 and not (out[np.isfinite(out)] <= 0).any()
        else:
            assert out.dtype == np.uint8 and out.shape[2] == 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=st.integers(0, 4), width=st.integers(0, 6), point_step=st.integers(0, 40), row_step=st.integers(0, 200),
       offsets=st.lists(st.integers(0, 40), min_size=3, max_size=3),
       datatype=st.sampled_from([PointField.FLOAT32, PointField.FLOAT64, PointField.UINT8, 99]),
       data=st.binary(max_size=600), big=st.booleans())
def test_fuzz_cloud_decoder_never_crashes(height, width, point_step, row_step, offsets, datatype, data, big):
    fields = [PointField(name=n, offset=o, datatype=datatype, count=1) for n, o in zip("xyz", offsets, strict=True)]
    msg = PointCloud2(height=height, width=width, point_step=point_step, row_step=row_step, fields=fields,
                      is_bigendian=big)
    msg.data = data
    try:
        xyz = pointcloud2_to_xyz(msg)
    except ConversionError:
        return
    assert xyz.ndim == 2 and xyz.shape[1] == 3 and np.isfinite(xyz).all() and len(xyz) <= height * width


def test_a_cloud_without_depth_becomes_the_frames_measured_depth():
    """input.mode=points: the cloud, projected into the colour image, is the depth the engine measures
    its geometry on (holes where the cloud has no point); a cloud with no point in view leaves none."""
    from std_msgs.msg import Header

    from spatial_vlm_ros.ros.frame_assembly import assemble_frame
    from spatial_vlm_ros.ros.player import cloud_from_depth

    intr = CameraIntrinsics(100.0, 100.0, 32.0, 24.0, 64, 48)
    depth = np.full((48, 64), 1.5, np.float32)
    depth[:6, :8] = np.nan
    header = Header(frame_id="cam")
    rgb, info = rgb_to_image(np.zeros((48, 64, 3), np.uint8), header), intrinsics_to_camera_info(intr, header)
    frame = assemble_frame(wire(rgb), wire(info), None, wire(xyz_to_pointcloud2(cloud_from_depth(depth, intr), header)))
    assert frame.depth is not None and frame.points is not None
    assert np.isnan(frame.depth[:6, :8]).all() and np.allclose(frame.depth[6:, 8:], 1.5, atol=1e-4)
    behind = np.array([[0.0, 0.0, -1.0]], np.float32)  # behind the camera: nothing in view
    assert assemble_frame(wire(rgb), wire(info), None, wire(xyz_to_pointcloud2(behind, header))).depth is None
