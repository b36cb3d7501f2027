"""One rendered view of a layout -> a `SceneSample` (visible objects, masks, boxes, relations, QA)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatial_vlm_ros.inference.types import Box3D, CameraIntrinsics

from .camera import camera_up
from .ground_truth import SceneTruth
from .qa import build_description, build_qa, build_relations
from .renderer import RenderResult
from .sample import SceneObject, SceneSample
from .scene_layout import PlacedObject, SceneLayout

MIN_VISIBLE_FRACTION = 1.5e-4  # of the image area (~46 px at 640x480): smaller objects are left out


@dataclass
class FrameImages:
    """What storage writes next to the sample line."""

    rgb: np.ndarray
    sensor_depth_mm: np.ndarray
    depth: np.ndarray
    instance: np.ndarray


def box3d_in_camera(obj: PlacedObject, pose: np.ndarray) -> Box3D:
    """The object's local bounding box, oriented with the object and expressed in the camera frame."""
    lo, hi = obj.mesh.lower, obj.mesh.upper
    center_world = obj.rotation @ ((lo + hi) / 2) + obj.position
    r_cw = pose[:3, :3]
    return Box3D(r_cw.T @ (center_world - pose[:3, 3]), hi - lo, r_cw.T @ obj.rotation)


def build_frame(sample_id: str, scene_index: int, layout: SceneLayout, truth: SceneTruth, render: RenderResult,
                intrinsics: CameraIntrinsics, pose: np.ndarray, rng: np.random.Generator,
                per_type: int = 3) -> tuple[SceneSample, FrameImages]:
    geom = render.geometry
    min_px = max(20, int(MIN_VISIBLE_FRACTION * intrinsics.width * intrinsics.height))
    counts = np.bincount(geom[geom > 0].ravel(), minlength=len(layout.objects) + 1)
    instance = np.zeros(geom.shape, dtype=np.uint8)
    objects: list[SceneObject] = []
    for k, obj in enumerate(layout.objects):
        px = int(counts[k + 1])
        if px < min_px:
            continue
        mask = geom == k + 1
        inst = len(objects) + 1
        instance[mask] = inst
        ys, xs = np.nonzero(mask)
        box2d = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        objects.append(SceneObject(obj.id, obj.category, obj.color, obj.description, inst, box2d, px,
                                   box3d_in_camera(obj, pose), truth.resting_on[obj.id]))
    ids = [o.id for o in objects]
    relations = build_relations(ids, truth.gap, lambda a, b: truth.labels(a, b)["on"])
    visible = set(ids)
    hidden_gap = {a: min((truth.gap(a, b) for b in truth.ids if b not in visible and b != a), default=np.inf)
                  for a in ids}
    qa = build_qa(objects, relations, rng, per_type=per_type, hidden_gap=hidden_gap)
    sample = SceneSample(
        id=sample_id,
        scene=scene_index,
        rgb=f"frames/{sample_id.split('_')[-1]}_rgb.png",
        depth=f"frames/{sample_id.split('_')[-1]}_depth.png",
        gt=f"frames/{sample_id.split('_')[-1]}_gt.npz",
        intrinsics=intrinsics,
        up=camera_up(pose),
        camera_pose=pose,
        objects=objects,
        relations=relations,
        qa=qa,
        description=build_description(objects, relations),
    )
    return sample, FrameImages(render.rgb, render.sensor_depth_mm, render.depth, instance)
