"""Spin an executor through rclpy's destruction race instead of dying of it.

rclpy's executors list a node's waitables (the QoS event handlers every publisher and subscription
owns) before entering them; one destroyed in between is skipped when entered but still added to the
wait set, and `InvalidHandle` ("destruction was requested") escapes `spin()`: ros2/rclpy#1206, #1284,
#1355, still in Kilted's wheels. The node destroys its sensor subscriptions on deactivate (and its
publishers on cleanup) from a service callback on another executor thread, so a lifecycle transition
under a streaming camera killed the process, once in a CI run.

Spinning again is safe: the error is raised while the wait set is built, before anything is taken,
and the destroyed entity has already left the node's lists, so the next wait set is whole and no
message or request is lost. A handle error that keeps coming back is not this race, so it is raised.
"""
from __future__ import annotations

import time

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

# The extension module's own class: the same name on Humble, Jazzy and Kilted, whichever module re-exports it.
InvalidHandle = _rclpy.InvalidHandle

MAX_RACES_PER_S = 50


def spin_through_destruction_races(executor, logger, max_per_s: int = MAX_RACES_PER_S) -> int:
    """`executor.spin()` until shutdown, surviving the race; returns how many times it was survived."""
    races, recent = 0, []
    while True:
        try:
            executor.spin()
            return races
        except InvalidHandle as exc:
            races += 1
            now = time.monotonic()
            recent = [t for t in recent if now - t < 1.0] + [now]
            if len(recent) > max_per_s:
                raise
            if races == 1 or races % 100 == 0:
                logger.warning(f"executor: an entity was destroyed while a wait set was built ({exc}); "
                               f"spinning on (rclpy#1284), {races} so far")
