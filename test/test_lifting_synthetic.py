"""Lifting and the plane/box geometry on a synthetic RGB-D scene with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from spatial_vlm_ros.inference.geometry import (
    backproject,
    find_scene_planes,
    fit_dominant_planes,
    oriented_box_gap,
    robust_surface_gap,
    support_gap,
    support_geometry,
)
from spatial_vlm_ros.inference.lifting import gravity_aligned_box, lift_detections
from spatial_vlm_ros.inference.types import Box3D, CameraIntrinsics, Detection

K = CameraIntrinsics(250.0, 250.0, 159.5, 119.5, 320, 240)
UP = np.array([0.0, -1.0, 0.0])
FLOOR_Y = 0.8  # floor 0.8 m below the camera (y down)


def raycast(boxes: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Depth of a level camera looking at a floor, a back wall at z=4 and axis-aligned boxes (lo, hi)."""
    u = (np.arange(K.width) - K.cx) / K.fx
    v = (np.arange(K.height) - K.cy) / K.fy
    rays = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((K.height, K.width))), -1)
    depth = np.full((K.height, K.width), 4.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(rays[..., 1] > 0, FLOOR_Y / rays[..., 1], np.inf)
    depth = np.minimum(depth, t_floor)
    for lo, hi in boxes:
        with np.errstate(divide="ignore", invalid="ignore"):
            t0, t1 = (lo - 0) / rays, (hi - 0) / rays
        tmin = np.nanmax(np.minimum(t0, t1), axis=-1)
        tmax = np.nanmin(np.maximum(t0, t1), axis=-1)
        hit = (tmax >= tmin) & (tmin > 0)
        depth = np.where(hit, np.minimum(depth, tmin), depth)
    return depth.astype(np.float32)


def box2d_of(lo: np.ndarray, hi: np.ndarray) -> tuple[float, float, float, float]:
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    u = corners[:, 0] / corners[:, 2] * K.fx + K.cx
    v = corners[:, 1] / corners[:, 2] * K.fy + K.cy
    return (float(u.min()), float(v.min()), float(u.max()), float(v.max()))


# A table-like block standing on the floor, a small box on it, and a separate box 0.6 m to the left.
TABLE = (np.array([-0.4, 0.4, 2.0]), np.array([0.4, FLOOR_Y, 2.6]))
CUBE = (np.array([-0.1, 0.25, 2.1]), np.array([0.1, 0.4, 2.3]))
SIDE = (np.array([-1.15, 0.5, 2.0]), np.array([-1.0, FLOOR_Y, 2.3]))


@pytest.fixture(scope="module")
def scene():
    depth = raycast([TABLE, CUBE, SIDE])
    dets = [Detection("table_0", "table", 1.0, box2d_of(*TABLE)), Detection("box_0", "box", 1.0, box2d_of(*CUBE)),
            Detection("box_1", "box", 1.0, box2d_of(*SIDE))]
    return depth, dets, lift_detections(depth, K, dets, UP)


def test_floor_and_wall_are_found_as_structure(scene):
    planes = find_scene_planes(backproject(scene[0], K), UP)
    assert planes.floor is not None and abs(planes.floor.offset - FLOOR_Y) < 0.02
    assert len(planes.walls) == 1 and abs(abs(planes.walls[0].normal[2]) - 1) < 0.02


def test_plane_fit_is_repeatable_and_exact_on_a_noisy_floor_and_wall(scene):
    rng = np.random.default_rng(0)
    depth = scene[0] * (1 + rng.normal(0, 0.003, scene[0].shape)).astype(np.float32)  # ~7 mm at 2.5 m
    points = backproject(depth, K)
    runs = [fit_dominant_planes(points, seed=3) for _ in range(3)]
    assert all([(tuple(p.normal), p.offset) for p in r] == [(tuple(p.normal), p.offset) for p in runs[0]]
               for r in runs[1:])  # same points, same seed: the same planes, bit for bit
    floor = next(p for p in runs[0] if abs(p.normal @ UP) > 0.99)
    wall = next(p for p in runs[0] if abs(p.normal[2]) > 0.99)
    assert abs(floor.offset - FLOOR_Y) < 0.01 and abs(wall.offset - 4.0) < 0.03  # least-squares refit
    assert all(p.offset > 0 for p in runs[0])  # the camera on each plane's positive side
    assert fit_dominant_planes(points, seed=4) != [] and fit_dominant_planes(points[:5, :5]) == []


def test_a_noisy_floor_cut_into_ransac_slabs_is_one_floor(scene):
    """Sequential RANSAC cuts a noisy floor into parallel slabs a few cm apart: the floor is the
    best-supported slab of the lowest surface, not the lowest slab, and a far floor's own noise does not
    count as points 'behind' it."""
    from spatial_vlm_ros.inference.geometry import PlaneFit, backproject

    points = backproject(scene[0], K)
    far = points[..., 2] > 3.0
    rng = np.random.default_rng(0)
    points[far, 1] += rng.normal(0.0, 0.04, int(far.sum()))  # ~4 cm of depth noise on the far floor and wall
    up_normal = UP  # facing the camera: n . p + d = 0 with d = FLOOR_Y for the floor
    slabs = [PlaneFit(up_normal, FLOOR_Y, 0.45), PlaneFit(up_normal, FLOOR_Y + 0.04, 0.05),
             PlaneFit(up_normal, FLOOR_Y - 0.035, 0.04), PlaneFit(up_normal, FLOOR_Y - 0.4, 0.10)]  # + the table top
    planes = find_scene_planes(points, UP, planes=slabs)
    assert planes.floor is not None and planes.floor.offset == pytest.approx(FLOOR_Y)
    alone = find_scene_planes(points, UP, planes=slabs[:1] + slabs[3:], slab_m=0.0)
    assert alone.floor is not None and alone.floor.offset == pytest.approx(FLOOR_Y)


def test_lifted_boxes_sit_on_the_visible_surfaces(scene):
    _, _, lifted = scene
    assert all(obj is not None for obj in lifted)
    cube = lifted[1]
    # Visible surfaces of the cube: its front face (z=2.1) and top (y=0.25); x spans -0.1..0.1.
    lo, hi = np.percentile(cube.points, [0, 100], axis=0)
    assert lo[0] == pytest.approx(-0.1, abs=0.01) and hi[0] == pytest.approx(0.1, abs=0.01)
    assert lo[1] == pytest.approx(0.25, abs=0.01)
    assert lo[2] == pytest.approx(2.1, abs=0.01)
    # The table's mask never takes the cube standing on it, nor the floor.
    assert not (lifted[0].mask & cube.mask).any()
    assert lifted[0].points[:, 1].max() <= FLOOR_Y - 0.02


def test_metric_relations_from_lifted_clouds(scene):
    _, _, (table, cube, side) = scene
    # The table top inside the cube's box goes to the cube (smaller, nested box) and is then cut as its support
    # plane, so the nearest remaining table pixels are one box-margin (~3 cm here) in front of the cube.
    assert robust_surface_gap(cube.points, table.points) < 0.04
    assert robust_surface_gap(side.points, table.points) == pytest.approx(0.6, abs=0.03)  # x: -1.0 vs -0.4
    on = support_geometry(cube.points, table.points, UP, subject_bottom_m=cube.bottom_height(UP))
    assert on.probability() > 0.9
    assert support_geometry(table.points, cube.points, UP).probability() == 0.0
    assert support_geometry(side.points, table.points, UP).probability() == 0.0


def test_box_geometry_helpers():
    a = Box3D(np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]))
    b = Box3D(np.array([1.3, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]))
    assert oriented_box_gap(a, b) == pytest.approx(0.3, abs=0.02)
    assert oriented_box_gap(a, Box3D(np.array([0.5, 0.0, 0.0]), np.ones(3))) == 0.0
    up = np.array([0.0, 0.0, 1.0])
    top = Box3D(np.array([0.0, 0.0, 0.98]), np.array([0.4, 0.4, 1.0]))  # bottom at 0.48, 2 cm into a
    assert support_gap(top, a, up) == pytest.approx(-0.02, abs=1e-9)
    assert support_gap(a, top, up) is None
    assert support_gap(Box3D(np.array([3.0, 0.0, 1.0]), np.ones(3)), a, up) is None  # not above a


def test_gravity_aligned_box_of_a_rotated_cloud():
    rng = np.random.default_rng(0)
    local = rng.uniform(-0.5, 0.5, (4000, 3)) * np.array([0.6, 0.2, 0.4])
    yaw = np.deg2rad(30)
    # up = -y (camera frame); rotate the cloud about it.
    rot = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    pts = local[:, [0, 2, 1]] @ rot.T + np.array([0.2, 0.1, 2.0])
    box = gravity_aligned_box(pts, UP, percentiles=(0.0, 100.0))
    np.testing.assert_allclose(box.center, [0.2, 0.1, 2.0], atol=0.02)
    assert sorted(np.round(box.size, 2)) == pytest.approx([0.2, 0.4, 0.6], abs=0.02)


def test_bad_depth_is_rejected():
    with pytest.raises(ValueError):
        lift_detections(np.zeros((4, 4, 3), np.float32), K, [], UP)
    with pytest.raises(ValueError):
        lift_detections(np.ones((240, 320), np.float32), K, [Detection("x", "x", 1.0, (np.nan, 0, 5, 5))], UP)
