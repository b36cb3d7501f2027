"""Ray-cast RGB-D rendering of a layout: shaded RGB, exact depth, a sensor depth model, geometry ids.

One open3d RaycastingScene per layout renders every view. Rays go through integer pixel
coordinates, matching `geometry.backproject`, and their camera-frame z component is 1, so the hit
distance is the optical-frame depth itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import open3d as o3d

from spatial_vlm_ros.inference.geometry import depth_noise_sigma
from spatial_vlm_ros.inference.types import CameraIntrinsics

from .meshes import COLORS
from .raycast import cast_rays
from .scene_layout import SceneLayout

FLOOR_ID = 0  # in RenderResult.geometry: -1 = nothing hit, 0 = floor, k + 1 = layout.objects[k]
SENSOR_MIN_M, SENSOR_MAX_M = 0.25, 5.0
_NOISE_BANKS: dict[int, np.ndarray] = {}


@dataclass
class RenderResult:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 exact metres, NaN where nothing was hit
    sensor_depth_mm: np.ndarray  # (H, W) uint16 millimetres, 0 = hole
    geometry: np.ndarray  # (H, W) int16, see FLOOR_ID


@dataclass
class Lighting:
    direction: np.ndarray  # unit vector towards the light (world)
    ambient: float
    diffuse: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Lighting:
        elev, azim = np.deg2rad(rng.uniform(40, 80)), rng.uniform(-np.pi, np.pi)
        d = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
        return cls(d, float(rng.uniform(0.3, 0.45)), float(rng.uniform(0.5, 0.7)))


class LayoutRenderer:
    def __init__(self, layout: SceneLayout, rng: np.random.Generator, shadows: bool = True):
        self.layout = layout
        self.scene = o3d.t.geometry.RaycastingScene()
        floor_v = np.array([[-10, -10, 0], [10, -10, 0], [10, 10, 0], [-10, 10, 0]], dtype=np.float32)
        floor_t = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.uint32)
        ids = [self.scene.add_triangles(o3d.core.Tensor(floor_v), o3d.core.Tensor(floor_t))]
        for obj in layout.objects:
            ids.append(self.scene.add_triangles(o3d.core.Tensor(obj.world_vertices.astype(np.float32)),
                                                o3d.core.Tensor(obj.mesh.triangles.astype(np.uint32))))
        if ids != list(range(len(ids))):
            raise RuntimeError("open3d geometry ids are not sequential")
        # Albedo per geometry index (floor first), with a slight per-object tint so equal colours differ.
        albedo = [np.asarray(layout.floor_albedo, float)]
        for obj in layout.objects:
            tint = rng.uniform(0.9, 1.1, size=3)
            albedo.append(np.clip(np.asarray(COLORS[obj.color], float) * tint, 0, 255))
        self.albedo = (np.asarray(albedo) / 255.0).astype(np.float32)
        self.lighting = Lighting.sample(rng)
        self.shadows = shadows
        self.tile_m = float(rng.uniform(0.3, 0.6))

    def render(self, intrinsics: CameraIntrinsics, pose: np.ndarray, rng: np.random.Generator) -> RenderResult:
        w, h = intrinsics.width, intrinsics.height
        u = (np.arange(w, dtype=np.float32) - intrinsics.cx) / intrinsics.fx
        v = (np.arange(h, dtype=np.float32) - intrinsics.cy) / intrinsics.fy
        rot = pose[:3, :3].astype(np.float32)
        rays = np.empty((h, w, 6), dtype=np.float32)
        rays[..., :3] = pose[:3, 3].astype(np.float32)
        # World direction of pixel (u, v): u * right + v * down + forward (camera z component 1).
        rays[..., 3:] = (u[None, :, None] * rot[:, 0] + v[:, None, None] * rot[:, 1]) + rot[:, 2]
        rays = rays.reshape(-1, 6)
        dirs = rays[:, 3:]
        hit = cast_rays(self.scene, rays)
        t_hit = hit["t_hit"].numpy()
        geom = hit["geometry_ids"].numpy().astype(np.int64)
        miss = ~np.isfinite(t_hit)
        geom[miss] = -1
        normals = hit["primitive_normals"].numpy()

        depth = np.where(miss, np.nan, t_hit).astype(np.float32)
        rgb = self._shade(rays, t_hit, geom, normals, miss, rng).reshape(h, w, 3)
        sensor = self._sensor(depth.reshape(h, w), normals, dirs, miss, rng)
        return RenderResult(rgb, depth.reshape(h, w), sensor, geom.reshape(h, w).astype(np.int16))

    def _shade(self, rays, t_hit, geom, normals, miss, rng) -> np.ndarray:
        dirs = rays[:, 3:]
        # Light the side the camera sees: flip normals that face away from it.
        side = np.where(np.einsum("ij,ij->i", normals, dirs) > 0, np.float32(-1), np.float32(1))
        light = self.lighting
        ld = light.direction.astype(np.float32)
        # Column-wise dot products: a (N, 3) @ (3,) matvec is several times slower in numpy.
        lambert = np.clip(side * (normals[:, 0] * ld[0] + normals[:, 1] * ld[1] + normals[:, 2] * ld[2]), 0.0, None)
        hit_pts = rays[:, :3] + dirs * np.where(miss, np.float32(0), t_hit)[:, None]
        if self.shadows:
            # Every pixel casts (misses are cheap), which avoids gathering the lit ones.
            shadow_rays = np.empty_like(rays)
            shadow_rays[:, :3] = hit_pts + normals * (side * np.float32(1e-3))[:, None]
            shadow_rays[:, 3:] = ld
            lambert[np.isfinite(cast_rays(self.scene, shadow_rays)["t_hit"].numpy())] = 0.0
        shade = light.ambient + light.diffuse * lambert
        albedo = np.take(self.albedo, np.clip(geom, 0, None), axis=0)
        floor = geom == FLOOR_ID
        if floor.any():
            tiles = (np.floor(hit_pts[floor, 0] / self.tile_m) + np.floor(hit_pts[floor, 1] / self.tile_m)) % 2
            albedo[floor] *= (0.92 + 0.16 * tiles)[:, None]
        color = albedo * shade[:, None]
        # Background: a plain wall-like gradient where no geometry was hit.
        color[miss] = (0.55 + 0.15 * dirs[miss, 2:3].clip(-1, 1))
        color = color.reshape(-1) * 255.0 + self._pixel_noise(color.size, rng)
        return np.clip(color, 0, 255).astype(np.uint8)

    @staticmethod
    def _pixel_noise(size: int, rng: np.random.Generator) -> np.ndarray:
        """Camera noise (sigma 2.5 levels): a random window into a fixed bank, ~10x cheaper than fresh draws."""
        if size not in _NOISE_BANKS:
            # A fixed seed keeps the bytes independent of which process renders which scene.
            _NOISE_BANKS[size] = np.random.default_rng(20261126).standard_normal(2 * size, dtype=np.float32) * 2.5
        start = int(rng.integers(0, size))
        return _NOISE_BANKS[size][start:start + size]

    @staticmethod
    def _sensor(depth: np.ndarray, normals: np.ndarray, dirs: np.ndarray, miss: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        """Structured-light style depth: range-dependent noise, holes at edges, grazing angles and far range."""
        h, w = depth.shape
        z = np.nan_to_num(depth, nan=0.0).astype(np.float32)
        sigma = depth_noise_sigma(z)
        noisy = z + rng.standard_normal(z.shape, dtype=np.float32) * sigma
        hole = miss.reshape(h, w) | (z < SENSOR_MIN_M) | (z > SENSOR_MAX_M)
        kernel = np.ones((3, 3), np.uint8)
        z_far = np.where(hole, 0.0, z).astype(np.float32)
        spread = cv2.dilate(z_far, kernel) - cv2.erode(np.where(hole, 1e3, z).astype(np.float32), kernel)
        edge = (spread > 0.04 * np.maximum(z, 0.5)) & (rng.random(z.shape, dtype=np.float32) < 0.6)
        cos = np.abs(np.einsum("ij,ij->i", normals, dirs)) / np.sqrt(np.einsum("ij,ij->i", dirs, dirs))
        grazing = cos.reshape(h, w) < 0.12
        dropout = rng.random(z.shape, dtype=np.float32) < 0.003
        hole |= edge | grazing | dropout
        mm = np.round(noisy * 1000.0)
        mm[hole] = 0
        return np.clip(mm, 0, 65535).astype(np.uint16)
