"""RViz markers for one scene: 3D boxes coloured by class, text labels, relation lines.

Contact/support lines are thick and red, proximity lines thin and green, so the two read apart at a
glance. Markers live until deleted: `MarkerTracker` remembers what it published and emits DELETE
for objects and relations that vanished, instead of relying on lifetimes that flicker at low rates.
"""
from __future__ import annotations

import colorsys
import hashlib

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ..inference.types import Detection, Relation, RelationType
from .scene_messages import box_to_pose

NS_BOX, NS_LABEL, NS_RELATION = "boxes", "labels", "relations"
CONTACT_STYLE = (ColorRGBA(r=0.95, g=0.1, b=0.1, a=1.0), 0.012)
NEAR_STYLE = (ColorRGBA(r=0.1, g=0.85, b=0.2, a=0.9), 0.004)


def class_color(label: str, alpha: float = 0.4) -> ColorRGBA:
    """A stable colour per class name (same class -> same colour in every frame and run)."""
    hue = int(hashlib.md5(label.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def relation_style(rel: Relation) -> tuple[ColorRGBA, float] | None:
    """Line style of a relation, or None when nothing should be drawn (far / not holding)."""
    if not rel.holds or rel.predicate == "far":
        return None
    if rel.type in (RelationType.CONTACT, RelationType.SUPPORT):
        return CONTACT_STYLE
    return NEAR_STYLE


class MarkerTracker:
    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._live: set[tuple[str, int]] = set()

    def _id(self, ns: str, key: str) -> int:
        return self._ids.setdefault((ns, key), len(self._ids))

    def build(self, detections: list[Detection], relations: list[Relation], header) -> MarkerArray:
        markers: list[Marker] = []
        centers = {}
        for det in detections:
            if det.box3d is None:
                continue
            pose, size = box_to_pose(det.box3d)
            if not all(np.isfinite([pose.position.x, pose.position.y, pose.position.z, size.x, size.y, size.z])):
                continue
            centers[det.id] = pose.position
            box = Marker(header=header, ns=NS_BOX, id=self._id(NS_BOX, det.id), type=Marker.CUBE, action=Marker.ADD)
            box.pose, box.scale = pose, size
            box.color = class_color(det.label)
            label = Marker(header=header, ns=NS_LABEL, id=self._id(NS_LABEL, det.id), type=Marker.TEXT_VIEW_FACING,
                           action=Marker.ADD)
            label.pose.position = Point(x=pose.position.x, y=pose.position.y - size.y / 2 - 0.03, z=pose.position.z)
            label.pose.orientation.w = 1.0
            label.scale.z = 0.04
            label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
            label.text = f"{det.description} {det.score:.2f}"
            markers += [box, label]
        for rel in relations:
            style = relation_style(rel)
            if style is None or rel.subject_id not in centers or rel.object_id not in centers:
                continue
            key = f"{rel.subject_id}|{rel.object_id}|{int(rel.type)}"
            line = Marker(header=header, ns=NS_RELATION, id=self._id(NS_RELATION, key), type=Marker.LINE_LIST,
                          action=Marker.ADD)
            line.pose.orientation.w = 1.0
            line.points = [centers[rel.subject_id], centers[rel.object_id]]
            line.color, line.scale.x = style
            markers.append(line)
        live = {(m.ns, m.id) for m in markers}
        for ns, mid in sorted(self._live - live):
            markers.append(Marker(header=header, ns=ns, id=mid, action=Marker.DELETE))
        self._live = live
        return MarkerArray(markers=markers)

    def clear(self, header) -> MarkerArray:
        self._live = set()
        return MarkerArray(markers=[Marker(header=header, action=Marker.DELETEALL)])
