"""Every parameter group of config/spatial_vlm.yaml takes effect (one test per group).

The lifecycle node runs in this process here (real rclpy, real student engine), so each test can look
at what a parameter changed: the engine's settings, the subscriptions' topics and QoS, the published
relations, the MCAP written. Cross-process behaviour is covered by test_node_integration.py."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
import torch  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import ReliabilityPolicy  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from test_node_integration import random_student  # noqa: E402

from spatial_vlm_ros.inference.geometry import RelationThresholds  # noqa: E402
from spatial_vlm_ros.inference.types import CameraIntrinsics  # noqa: E402
from spatial_vlm_ros.ros.conversions import depth_to_image, intrinsics_to_camera_info, rgb_to_image  # noqa: E402
from spatial_vlm_ros.ros.graph_client import stamp_msg  # noqa: E402
from spatial_vlm_ros.ros.node import SpatialVlmNode, autostart  # noqa: E402

pytestmark = pytest.mark.ros
INTR = CameraIntrinsics(300.0, 300.0, 160.0, 120.0, 320, 240)
_count = 0


@pytest.fixture(scope="module")
def model_path(student_dir, tmp_path_factory) -> str:
    if (student_dir / "config.json").is_file():
        return str(student_dir)
    return str(random_student(tmp_path_factory.mktemp("student")))


@pytest.fixture(scope="module", autouse=True)
def ros_context():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture
def make_node(model_path):
    nodes = []

    def make(**params) -> SpatialVlmNode:
        global _count
        _count += 1
        values = {"model.path": model_path, "model.score_threshold": 0.0, "model.max_objects": 3, "autostart": False}
        values.update(params)
        node = SpatialVlmNode(f"svlm_params_{_count}",
                              parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node._active = False
        node._release()
        node.destroy_node()


def up(node: SpatialVlmNode) -> SpatialVlmNode:
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    return node


def scene_msgs(frame_id: str = "cam", size=(320, 240)):
    w, h = size
    rgb = np.full((h, w, 3), 180, np.uint8)
    rgb[h // 3: h // 2, w // 5: w // 3] = (220, 20, 20)
    depth = np.full((h, w), 1.5, np.float32)
    depth[h // 3: h // 2, w // 5: w // 3] = 1.2
    header = Header(stamp=stamp_msg(time.time_ns()), frame_id=frame_id)
    intr = INTR.scaled(w, h)
    return {"color": rgb_to_image(rgb, header), "camera_info": intrinsics_to_camera_info(intr, header),
            "depth": depth_to_image(depth, header, "16UC1")}


def process(node: SpatialVlmNode, msgs: dict, timeout_s: float = 120.0):
    """Hand one synchronised set to the node's inference thread, as the synchroniser does; wait for the scene."""
    node._latest = None
    node._on_synced(msgs, 0)
    end = time.monotonic() + timeout_s
    while node._latest is None and time.monotonic() < end:
        time.sleep(0.05)
    assert node._latest is not None, f"frame not processed; worker errors: {node._worker.stats.errors}"
    return node._latest


def test_model_group(make_node, tmp_path, model_path):
    missing = make_node(**{"model.path": str(tmp_path / "nowhere")})
    assert missing.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert missing.engine_info is None and missing._worker is None  # stays alive, unconfigured
    missing.set_parameters([Parameter("model.path", value=model_path)])
    assert missing.trigger_configure() == TransitionCallbackReturn.SUCCESS  # fixable without a restart

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)
    assert make_node(**{"model.path": str(corrupt)}).trigger_configure() == TransitionCallbackReturn.FAILURE
    if not torch.cuda.is_available():
        assert make_node(**{"model.device": "cuda"}).trigger_configure() == TransitionCallbackReturn.FAILURE
    assert make_node(**{"model.backend": "nonsense"}).trigger_configure() == TransitionCallbackReturn.FAILURE

    node = up(make_node(**{"model.precision": "bf16", "model.hidden_cot_k": 2, "model.score_threshold": 0.05,
                           "model.max_objects": 2, "model.input_width": 160, "model.input_height": 120,
                           "model.drop_pieces": False, "model.max_depth_m": 2.5}))
    engine = node.engine_info.engine
    assert engine.dtype == torch.bfloat16 and engine.hidden_cot_k == 2
    assert not engine.drop_pieces and engine.model.piece_head is not None  # the checkpoint has one
    assert engine.score_threshold == pytest.approx(0.05) and engine.max_objects == 2
    assert engine.max_depth_m == 2.5
    seen_sizes = []
    infer = engine.infer
    engine.infer = lambda frame: (seen_sizes.append(frame.size), infer(frame))[1]
    state = process(node, scene_msgs())
    assert seen_sizes == [(160, 120)]  # the engine saw the input size ...
    assert len(state.scene.detections) <= 2 and all(d.score >= 0.05 for d in state.scene.detections)
    for d in state.scene.detections:  # ... and the boxes come back in source pixels
        assert 0 <= d.box2d[0] <= d.box2d[2] <= 320 and 0 <= d.box2d[1] <= d.box2d[3] <= 240


def test_thresholds_group(make_node):
    node = up(make_node(**{"thresholds.contact_m": 0.002, "thresholds.no_contact_m": 0.004,
                           "thresholds.near_m": 0.1, "thresholds.far_m": 0.2}))
    expected = RelationThresholds(contact_m=0.002, no_contact_m=0.004, near_m=0.1, far_m=0.2)
    assert node.params.thresholds == expected and node.engine_info.engine.thresholds == expected
    bad = make_node(**{"thresholds.near_m": 0.9, "thresholds.far_m": 0.5})
    assert bad.trigger_configure() == TransitionCallbackReturn.FAILURE


def test_input_topics_qos_sync_group(make_node):
    node = up(make_node(**{"topics.color": "cam/rgb", "topics.camera_info": "cam/info", "topics.depth": "cam/depth",
                           "qos.reliable": True, "qos.depth": 3, "sync.slop_s": 0.02, "sync.queue_size": 4}))
    subs = {s.topic_name: s for s in node._subs}
    assert set(subs) == {"/cam/rgb", "/cam/info", "/cam/depth"}
    info = node.get_subscriptions_info_by_topic("/cam/rgb")[0]
    assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE and subs["/cam/rgb"].qos_profile.depth == 3
    assert node._sync.slop_ns == 20_000_000 and node._sync.queue_size == 4
    best_effort = up(make_node(**{"input.mode": "color_only"}))
    assert {s.topic_name for s in best_effort._subs} == {"/camera/color/image_raw", "/camera/color/camera_info"}
    be_info = best_effort.get_subscriptions_info_by_topic("/camera/color/image_raw")
    assert any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in be_info)
    points = up(make_node(**{"input.mode": "points", "topics.points": "cam/cloud"}))
    assert "/cam/cloud" in {s.topic_name for s in points._subs}
    assert make_node(**{"input.mode": "stereo"}).trigger_configure() == TransitionCallbackReturn.FAILURE


def test_frames_group(make_node):
    node = up(make_node(**{"frames.default_frame_id": "my_optical_frame"}))
    state = process(node, scene_msgs(frame_id=""))
    assert state.frame.frame_id == "my_optical_frame"


def test_rate_group(make_node):
    node = up(make_node(**{"rate.max_hz": 4.0, "rate.diagnostics_period_s": 0.25}))
    assert node._worker._min_period_s == pytest.approx(0.25)
    assert node._diag_timer.timer_period_ns == 250_000_000
    assert up(make_node(**{"rate.max_hz": 0.0}))._worker._min_period_s == 0.0


def test_fusion_group(make_node):
    sources = {}
    for rule in ("geometry", "model"):
        node = up(make_node(**{"fusion.rule": rule, "model.max_objects": 3}))
        state = process(node, scene_msgs())
        sources[rule] = {r.source for r in state.relations}
    if sources["geometry"]:  # the untrained detector may find no pair; a trained one always does here
        assert sources["geometry"] <= {"geometry"} and sources["model"] <= {"model"}
    assert make_node(**{"fusion.rule": "vote"}).trigger_configure() == TransitionCallbackReturn.FAILURE


def test_query_group(make_node):
    """query.second_look: a question naming a category the frame's detections lack goes to the engine
    (which looks again among the regions it did not keep) only when the parameter is on."""
    from spatial_vlm_ros.srv import QuerySpatialRelation

    for on in (True, False):
        node = up(make_node(**{"query.second_look": on}))
        state = process(node, scene_msgs())
        assert state.scene.detections, "score_threshold 0 keeps the best regions"
        engine, asked = node.engine_info.engine, []
        answer = engine.answer

        def counting(frame, scene, question, answer=answer, asked=asked):
            asked.append(question)
            return answer(frame, scene, question)

        engine.answer = counting
        present = {d.label for d in state.scene.detections}
        missing = next(c for c in engine.config.categories if c not in present)
        question = f"Is the {missing} near the {state.scene.detections[0].description}?"
        response = node._on_query(QuerySpatialRelation.Request(question=question), QuerySpatialRelation.Response())
        assert asked == ([question] if on else [])
        if not on:
            assert not response.success and f"no '{missing}'" in response.message


def test_query_queue_depth(make_node):
    """query.queue_depth: questions that arrive while the executor is busy wait in the service's queue. A
    burst of 30 sent before the node spins is answered whole with a queue of 40; a queue of 10 keeps only
    the newest 10 (the ROS default for services, which lost questions in bench node)."""
    import threading

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from spatial_vlm_ros.srv import QuerySpatialRelation

    answered = {}
    for depth in (40, 10):
        node = up(make_node(**{"query.queue_depth": depth}))
        assert node._service.qos_profile.depth == depth
        client_node = rclpy.create_node(f"svlm_params_burst_client_{depth}")
        cli = client_node.create_client(QuerySpatialRelation, f"{node.get_fully_qualified_name()}/query",
                                        qos_profile=QoSProfile(depth=100))
        client_exec = SingleThreadedExecutor()
        client_exec.add_node(client_node)
        threading.Thread(target=client_exec.spin, daemon=True).start()
        server_exec = SingleThreadedExecutor()
        server_exec.add_node(node)
        try:
            assert cli.wait_for_service(timeout_sec=20)
            futures = [cli.call_async(QuerySpatialRelation.Request(question=f"what is near the unicorn {i}?"))
                       for i in range(30)]
            time.sleep(1.0)  # all 30 reach the node's queue before it takes any
            threading.Thread(target=server_exec.spin, daemon=True).start()
            end = time.monotonic() + 20
            while sum(f.done() for f in futures) < 30 and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.5)
            answered[depth] = sum(f.done() for f in futures)
        finally:
            server_exec.shutdown(timeout_sec=5)
            client_exec.shutdown(timeout_sec=5)
            client_node.destroy_node()
    assert answered == {40: 30, 10: 10}


def test_outputs_group(make_node):
    node = up(make_node(**{"outputs.debug_image": False, "outputs.markers": False}))
    assert "debug_image" not in node._pubs and "markers" not in node._pubs
    full = up(make_node())
    assert {"debug_image", "markers", "detections", "relations", "depth"} <= set(full._pubs)


def test_record_group(make_node, tmp_path):
    from spatial_vlm_ros.ros.recorder import read_messages

    path = tmp_path / "rec" / "run.mcap"
    node = up(make_node(**{"record.mcap_path": str(path)}))
    msgs = scene_msgs()
    for key in ("camera_info", "depth", "color"):  # through the subscription callbacks, as from DDS
        callback = node._make_callback(key)
        callback(msgs[key])
    end = time.monotonic() + 120
    while node.stats.frames_out < 1 and time.monotonic() < end:
        time.sleep(0.05)
    node.trigger_deactivate()
    node.trigger_cleanup()  # closes the file
    topics = {t for t, _, _ in read_messages(path)}
    assert {"/camera/color/image_raw", "/camera/color/camera_info", "/camera/aligned_depth_to_color/image_raw"} <= topics
    assert any(t.endswith("/detections") for t in topics) and any(t.endswith("/relations") for t in topics)


def test_autostart_group(make_node):
    manual = make_node(autostart=False)
    assert autostart(manual) and manual.engine_info is None
    auto = make_node(autostart=True)
    assert autostart(auto) and auto._active and auto.engine_info is not None


def test_yaml_lists_every_parameter(repo_root: Path):
    import yaml

    from spatial_vlm_ros.ros.params import PARAMETERS

    data = yaml.safe_load((repo_root / "config" / "spatial_vlm.yaml").read_text())["/**"]["ros__parameters"]

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    values = dict(flat(data))
    assert set(values) == set(PARAMETERS)
    for name, (default, _) in PARAMETERS.items():
        assert values[name] == default, name


def test_service_answers_while_a_frame_is_being_inferred(make_node):
    """MultiThreadedExecutor + callback groups: a scene-state question is answered while the inference
    thread is busy with the next frame (ordering of events, not timing)."""
    import threading

    from rclpy.executors import MultiThreadedExecutor
    from spatial_vlm_ros.srv import QuerySpatialRelation

    node = up(make_node())
    process(node, scene_msgs())  # a first scene for the fast path
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    infer = node.engine_info.engine.infer

    def slow_infer(frame):
        started.set()
        release.wait(60)  # hold the inference thread until the answer has arrived
        try:
            return infer(frame)
        finally:
            finished.set()

    node.engine_info.engine.infer = slow_infer
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    client_node = rclpy.create_node("svlm_params_responsive_client")
    executor.add_node(client_node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        node._on_synced(scene_msgs(), 0)
        assert started.wait(60)
        cli = client_node.create_client(QuerySpatialRelation, f"{node.get_fully_qualified_name()}/query")
        assert cli.wait_for_service(timeout_sec=20)
        fut = cli.call_async(QuerySpatialRelation.Request(question="what is near the unicorn?"))
        end = time.monotonic() + 30
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.02)
        assert fut.done() and not finished.is_set(), "the service waited for inference"
        assert not fut.result().success and "unicorn" in fut.result().message
    finally:
        release.set()
        executor.shutdown(timeout_sec=5)
        client_node.destroy_node()
