"""spin_through_destruction_races: a MultiThreadedExecutor whose callbacks destroy and re-create
subscriptions while messages stream in (what lifecycle deactivate/activate does) keeps spinning."""
from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from spatial_vlm_ros.ros.spin import InvalidHandle, spin_through_destruction_races  # noqa: E402

pytestmark = pytest.mark.ros


def test_executor_survives_subscriptions_destroyed_while_images_stream():
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("spin_race", context=context)
    source = rclpy.create_node("spin_race_source", context=context)
    topic = f"spin_race/image_{time.monotonic_ns()}"
    pub = source.create_publisher(Image, topic, qos_profile_sensor_data)
    group = ReentrantCallbackGroup()
    state = {"subs": [], "cycles": 0, "received": 0, "received_at_last_cycle": 0}

    def on_image(msg) -> None:
        state["received"] += 1

    def cycle() -> None:  # on_deactivate + on_activate, from an executor thread
        for sub in state["subs"]:
            node.destroy_subscription(sub)
        state["subs"] = [node.create_subscription(Image, topic, on_image, qos_profile_sensor_data,
                                                  callback_group=group) for _ in range(3)]
        state["cycles"] += 1
        state["received_at_last_cycle"] = state["received"]

    timer = node.create_timer(0.003, cycle, callback_group=MutuallyExclusiveCallbackGroup())
    streaming = threading.Event()
    streaming.set()

    def stream() -> None:
        msg = Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(12))
        while streaming.is_set():
            pub.publish(msg)
            time.sleep(0.001)

    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    outcome = {}

    def spin() -> None:
        try:
            outcome["races"] = spin_through_destruction_races(executor, node.get_logger())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    threading.Thread(target=stream, daemon=True).start()
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        time.sleep(8.0)
        node.destroy_timer(timer)
        settled = state["received"]
        end = time.monotonic() + 15.0  # the last subscriptions still have to discover the publisher
        while state["received"] <= settled and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        streaming.clear()
        executor.shutdown(timeout_sec=2.0)
        spinner.join(10)
        node.destroy_node()
        source.destroy_node()
        rclpy.shutdown(context=context)
    assert "error" not in outcome, f"the executor died: {outcome.get('error')!r}"
    assert outcome["races"] >= 0 and state["cycles"] >= 10, state
    assert state["received"] > settled, "the last subscriptions stopped receiving"


def test_a_handle_error_that_keeps_coming_back_is_raised():
    class AlwaysInvalid:  # a stand-in executor: a broken handle on every spin
        spins = 0

        def spin(self) -> None:
            self.spins += 1
            raise InvalidHandle("destruction was requested")

    class Log:
        def warning(self, message: str) -> None:
            pass

    executor = AlwaysInvalid()
    with pytest.raises(InvalidHandle):
        spin_through_destruction_races(executor, Log(), max_per_s=5)
    assert executor.spins == 6
