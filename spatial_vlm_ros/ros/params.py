"""Every parameter of the node: name, default, meaning; read into one typed dataclass.

config/spatial_vlm.yaml lists the same names (a test keeps the two in step). Names are grouped with
dots (`model.device`), which the YAML file writes as nested keys.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..inference.factory import BACKENDS, PRECISIONS, EngineSpec
from ..inference.geometry import RelationThresholds
from ..inference.types import DEFAULT_SCORE_THRESHOLD
from .fusion import DEFAULT_FUSION_RULE, FUSION_RULES

INPUT_MODES = ("depth", "points", "color_only")

# name -> (default, description)
PARAMETERS: dict[str, tuple[object, str]] = {
    "autostart": (True, "configure and activate on start (for graphs without a lifecycle manager)"),
    "model.backend": ("student", f"engine: {' | '.join(BACKENDS)}"),
    "model.path": ("", "student checkpoint directory; empty = the embedded default student"),
    "model.annotations_path": ("", "backend annotations: realdata folder whose annotated 2D boxes are the detections"),
    "model.device": ("auto", "auto | cpu | cuda | cuda:N"),
    "model.precision": ("fp32", f"{' | '.join(PRECISIONS)}"),
    "model.input_width": (0, "resize frames to this width before the engine; 0 = source size"),
    "model.input_height": (0, "resize frames to this height before the engine; 0 = source size"),
    "model.score_threshold": (DEFAULT_SCORE_THRESHOLD, "minimum detection score"),
    "model.max_objects": (12, "most objects per frame"),
    "model.hidden_cot_k": (-1, "Hidden CoT latent steps; -1 = the checkpoint's own"),
    "model.drop_pieces": (True, "drop detections the checkpoint's piece head judges pieces of a better-scored one"),
    "model.max_depth_m": (-1.0, "score no region whose median depth is beyond this (metres); -1 = the depth the "
                                "checkpoint's region head was trained to, 0 = no limit"),
    "thresholds.contact_m": (0.01, "surface gap at or below which objects touch"),
    "thresholds.no_contact_m": (0.03, "gap at or above which they clearly do not"),
    "thresholds.near_m": (0.25, "gap at or below which objects are near"),
    "thresholds.far_m": (0.5, "gap at or above which they are far"),
    "input.mode": ("depth", f"{' | '.join(INPUT_MODES)} (color_only: the model predicts depth)"),
    "topics.color": ("camera/color/image_raw", "colour image"),
    "topics.depth": ("camera/aligned_depth_to_color/image_raw", "depth aligned to colour (16UC1 mm or 32FC1 m)"),
    "topics.camera_info": ("camera/color/camera_info", "intrinsics of the colour image"),
    "topics.points": ("camera/depth/color/points", "PointCloud2 in the colour optical frame (input.mode=points)"),
    "frames.default_frame_id": ("camera_color_optical_frame", "frame_id used when the source header has none"),
    "qos.reliable": (False, "reliable subscriptions instead of SensorDataQoS (best effort)"),
    "qos.depth": (5, "subscription and publisher queue depth"),
    "sync.slop_s": (0.05, "approximate-time slop between colour, depth and camera info"),
    "sync.queue_size": (10, "messages kept per stream while matching"),
    "rate.max_hz": (10.0, "most frames processed per second; 0 = as fast as possible"),
    "rate.diagnostics_period_s": (1.0, "period of /diagnostics"),
    "fusion.rule": (DEFAULT_FUSION_RULE, f"model vs metric geometry: {' | '.join(FUSION_RULES)} (model: the service's answers "
                             "were right more often, scripts/measure_service_answers.py)"),
    "query.second_look": (False, "a question naming an object the latest detections lack waits for the inference "
                                 "thread (up to one frame) while the engine looks again among the regions it did not keep"),
    "query.queue_depth": (100, "questions the ~/query service keeps while the executor is busy (the ROS default "
                               "for services, 10, drops the oldest of a burst)"),
    "outputs.debug_image": (True, "publish ~/debug_image"),
    "outputs.markers": (True, "publish ~/markers"),
    "record.mcap_path": ("", "record inputs and outputs to this MCAP file; empty = off"),
}


@dataclass
class NodeParams:
    autostart: bool
    backend: str
    model_path: str
    annotations_path: str
    device: str
    precision: str
    input_width: int
    input_height: int
    score_threshold: float
    max_objects: int
    hidden_cot_k: int
    drop_pieces: bool
    max_depth_m: float
    thresholds: RelationThresholds
    input_mode: str
    topic_color: str
    topic_depth: str
    topic_camera_info: str
    topic_points: str
    default_frame_id: str
    qos_reliable: bool
    qos_depth: int
    sync_slop_s: float
    sync_queue_size: int
    max_rate_hz: float
    diagnostics_period_s: float
    fusion_rule: str
    second_look: bool
    query_queue_depth: int
    publish_debug_image: bool
    publish_markers: bool
    record_mcap_path: str

    def engine_spec(self) -> EngineSpec:
        return EngineSpec(backend=self.backend, model_path=self.model_path, device=self.device,
                          precision=self.precision, score_threshold=self.score_threshold,
                          hidden_cot_k=self.hidden_cot_k, max_objects=self.max_objects, thresholds=self.thresholds,
                          drop_pieces=self.drop_pieces, max_depth_m=self.max_depth_m)


def from_values(v: dict[str, object]) -> NodeParams:
    """Typed, validated parameters from a name -> value dict (missing names take their defaults)."""
    def get(name: str):
        return v.get(name, PARAMETERS[name][0])

    p = NodeParams(
        autostart=bool(get("autostart")), backend=str(get("model.backend")), model_path=str(get("model.path")),
        annotations_path=str(get("model.annotations_path")),
        device=str(get("model.device")), precision=str(get("model.precision")),
        input_width=int(get("model.input_width")), input_height=int(get("model.input_height")),
        score_threshold=float(get("model.score_threshold")), max_objects=int(get("model.max_objects")),
        hidden_cot_k=int(get("model.hidden_cot_k")), drop_pieces=bool(get("model.drop_pieces")),
        max_depth_m=float(get("model.max_depth_m")),
        thresholds=RelationThresholds(contact_m=float(get("thresholds.contact_m")),
                                      no_contact_m=float(get("thresholds.no_contact_m")),
                                      near_m=float(get("thresholds.near_m")), far_m=float(get("thresholds.far_m"))),
        input_mode=str(get("input.mode")), topic_color=str(get("topics.color")), topic_depth=str(get("topics.depth")),
        topic_camera_info=str(get("topics.camera_info")), topic_points=str(get("topics.points")),
        default_frame_id=str(get("frames.default_frame_id")), qos_reliable=bool(get("qos.reliable")),
        qos_depth=int(get("qos.depth")), sync_slop_s=float(get("sync.slop_s")),
        sync_queue_size=int(get("sync.queue_size")), max_rate_hz=float(get("rate.max_hz")),
        diagnostics_period_s=float(get("rate.diagnostics_period_s")), fusion_rule=str(get("fusion.rule")),
        second_look=bool(get("query.second_look")), query_queue_depth=int(get("query.queue_depth")),
        publish_debug_image=bool(get("outputs.debug_image")), publish_markers=bool(get("outputs.markers")),
        record_mcap_path=str(get("record.mcap_path")),
    )
    validate(p)
    return p


def validate(p: NodeParams) -> None:
    if p.input_mode not in INPUT_MODES:
        raise ValueError(f"input.mode '{p.input_mode}' is not one of {', '.join(INPUT_MODES)}")
    if p.fusion_rule not in FUSION_RULES:
        raise ValueError(f"fusion.rule '{p.fusion_rule}' is not one of {', '.join(FUSION_RULES)}")
    if (p.input_width > 0) != (p.input_height > 0) or p.input_width < 0 or p.input_height < 0:
        raise ValueError("model.input_width and model.input_height must both be 0 or both positive")
    if p.sync_slop_s < 0 or p.sync_queue_size < 1 or p.qos_depth < 1 or p.query_queue_depth < 1:
        raise ValueError("sync.slop_s must be >= 0, sync.queue_size, qos.depth and query.queue_depth >= 1")
    if p.max_rate_hz < 0 or p.diagnostics_period_s <= 0:
        raise ValueError("rate.max_hz must be >= 0 and rate.diagnostics_period_s > 0")
    if not p.topic_color or not p.topic_camera_info:
        raise ValueError("topics.color and topics.camera_info must be set")
    if p.backend == "annotations" and not p.annotations_path:
        raise ValueError("model.backend 'annotations' needs model.annotations_path")
    if p.input_mode == "depth" and not p.topic_depth:
        raise ValueError("input.mode 'depth' needs topics.depth")
    if p.input_mode == "points" and not p.topic_points:
        raise ValueError("input.mode 'points' needs topics.points")
