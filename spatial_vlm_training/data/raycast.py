"""open3d ray-casting thread count shared by the generator's modules.

0 lets open3d use every core (one process); generator workers set 1 so N processes do not each
spawn N threads on an N-core machine.
"""
from __future__ import annotations

import numpy as np
import open3d as o3d

THREADS = {"n": 0}


def set_threads(n: int) -> None:
    THREADS["n"] = int(n)


def cast_rays(scene: o3d.t.geometry.RaycastingScene, rays: np.ndarray) -> dict:
    return scene.cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays, dtype=np.float32)), nthreads=THREADS["n"])


def compute_distance(scene: o3d.t.geometry.RaycastingScene, points: np.ndarray) -> np.ndarray:
    return scene.compute_distance(o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32)),
                                  nthreads=THREADS["n"]).numpy()
