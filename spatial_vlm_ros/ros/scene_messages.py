"""SceneResult / Relation (inference/types.py) <-> the package's messages. No node, no graph."""
from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Pose, Vector3
from transforms3d.quaternions import mat2quat, quat2mat

from ..inference.types import Box3D, Detection, Relation, RelationType, SceneResult
from ..msg import Detection as DetectionMsg
from ..msg import DetectionArray, SpatialRelation, SpatialRelationArray


def box_to_pose(box: Box3D) -> tuple[Pose, Vector3]:
    pose = Pose()
    c = np.asarray(box.center, dtype=np.float64)
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in c)
    rot = np.asarray(box.rotation, dtype=np.float64)
    # A reflection or a degenerate matrix has no quaternion: fall back to identity rather than fail.
    if rot.shape != (3, 3) or not np.isfinite(rot).all() or np.linalg.det(rot) <= 0:
        rot = np.eye(3)
    w, x, y, z = mat2quat(rot)
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = float(w), float(x), float(y), float(z)
    s = np.asarray(box.size, dtype=np.float64)
    return pose, Vector3(x=float(s[0]), y=float(s[1]), z=float(s[2]))


def pose_to_box(pose: Pose, size: Vector3) -> Box3D:
    q = pose.orientation
    return Box3D(center=np.array([pose.position.x, pose.position.y, pose.position.z]),
                 size=np.array([size.x, size.y, size.z]), rotation=quat2mat([q.w, q.x, q.y, q.z]))


def detection_to_msg(det: Detection) -> DetectionMsg:
    msg = DetectionMsg()
    msg.id, msg.label, msg.description = str(det.id), str(det.label), str(det.description)
    msg.score = float(det.score)
    x0, y0, x1, y1 = (float(v) for v in det.box2d)
    msg.x_min, msg.y_min, msg.width, msg.height = x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)
    box_ok = det.box3d is not None and np.isfinite(np.asarray(det.box3d.center, dtype=float)).all() \
        and np.isfinite(np.asarray(det.box3d.size, dtype=float)).all()
    msg.has_3d = bool(box_ok)
    if box_ok:
        msg.center, msg.size = box_to_pose(det.box3d)
    return msg


def msg_to_detection(msg: DetectionMsg) -> Detection:
    return Detection(id=msg.id, label=msg.label, score=float(msg.score), description=msg.description,
                     box2d=(msg.x_min, msg.y_min, msg.x_min + msg.width, msg.y_min + msg.height),
                     box3d=pose_to_box(msg.center, msg.size) if msg.has_3d else None)


def relation_to_msg(rel: Relation) -> SpatialRelation:
    msg = SpatialRelation()
    msg.subject_id, msg.object_id = str(rel.subject_id), str(rel.object_id)
    msg.subject, msg.object = str(rel.subject), str(rel.object)
    msg.type = int(rel.type)
    msg.predicate = str(rel.predicate)
    msg.holds = bool(rel.holds)
    msg.confidence = float(rel.confidence)
    msg.distance_m = float(rel.distance_m) if rel.distance_m is not None else math.nan
    msg.source = str(rel.source)
    msg.text = rel.text
    return msg


def msg_to_relation(msg: SpatialRelation) -> Relation:
    return Relation(subject_id=msg.subject_id, object_id=msg.object_id, subject=msg.subject, object=msg.object,
                    type=RelationType(msg.type), predicate=msg.predicate, holds=bool(msg.holds),
                    confidence=float(msg.confidence), distance_m=float(msg.distance_m), source=msg.source)


def scene_to_msgs(scene: SceneResult, relations: list[Relation], header) -> tuple[DetectionArray, SpatialRelationArray]:
    dets = DetectionArray(header=header, detections=[detection_to_msg(d) for d in scene.detections])
    rels = SpatialRelationArray(header=header, relations=[relation_to_msg(r) for r in relations],
                                description=str(scene.description))
    return dets, rels
