"""Approximate-time synchroniser and the inference worker (no ROS graph needed)."""
from __future__ import annotations

import threading
import time

import pytest

from spatial_vlm_ros.ros.inference_worker import InferenceWorker
from spatial_vlm_ros.ros.synchronizer import ApproximateTimeSynchronizer

MS = 1_000_000


def test_matches_within_slop_and_reports_set():
    got = []
    sync = ApproximateTimeSynchronizer(["color", "depth", "info"], slop_s=0.01, callback=lambda m, s: got.append((m, s)))
    assert sync.add("color", 100 * MS, "c1") is None
    assert sync.add("depth", 104 * MS, "d1") is None
    assert sync.add("info", 98 * MS, "i1") == {"color": "c1", "depth": "d1", "info": "i1"}
    assert got == [({"color": "c1", "depth": "d1", "info": "i1"}, 100 * MS)]
    assert sync.stats.emitted == 1


def test_no_match_outside_slop():
    sync = ApproximateTimeSynchronizer(["color", "depth"], slop_s=0.01)
    sync.add("color", 100 * MS, "c")
    assert sync.add("depth", 120 * MS, "d") is None
    assert sync.stats.emitted == 0


def test_newest_complete_set_wins_and_older_are_discarded():
    sync = ApproximateTimeSynchronizer(["color", "depth"], slop_s=0.005)
    for t in (100, 133, 166):
        sync.add("color", t * MS, f"c{t}")
    assert sync.add("depth", 165 * MS, "d165") == {"color": "c166", "depth": "d165"}
    # c100/c133 were older than the emitted set: they can no longer match
    assert sync.add("depth", 133 * MS, "d133") is None
    assert sync.stats.out_of_order == 1


def test_duplicates_and_out_of_order_are_dropped_and_counted():
    sync = ApproximateTimeSynchronizer(["color", "depth"], slop_s=0.005)
    sync.add("color", 200 * MS, "a")
    sync.add("color", 200 * MS, "a-again")
    assert sync.stats.duplicate == 1
    assert sync.add("depth", 200 * MS, "d") == {"color": "a", "depth": "d"}
    sync.add("color", 200 * MS, "late duplicate of the emitted stamp")
    sync.add("color", 100 * MS, "old")
    assert sync.stats.duplicate == 2 and sync.stats.out_of_order == 1


def test_reordered_arrivals_still_match():
    sync = ApproximateTimeSynchronizer(["color", "depth"], slop_s=0.002, queue_size=5)
    sync.add("color", 300 * MS, "c300")
    sync.add("color", 250 * MS, "c250")  # transport reordered; newer than nothing emitted yet
    assert sync.add("depth", 250 * MS, "d250") == {"color": "c250", "depth": "d250"}
    assert sync.add("depth", 300 * MS, "d300") == {"color": "c300", "depth": "d300"}


def test_queue_size_bounds_memory():
    sync = ApproximateTimeSynchronizer(["color", "depth"], slop_s=0.001, queue_size=3)
    for i in range(10):
        sync.add("color", i * 100 * MS, i)
    assert sync.stats.overflow == 7
    assert sync.add("depth", 100 * MS, "too old: pushed out of the queue") is None
    assert sync.add("depth", 900 * MS, "d") == {"color": 9, "depth": "d"}


def test_bad_settings_and_unknown_stream():
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizer([], 0.1)
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizer(["a"], -1.0)
    with pytest.raises(KeyError):
        ApproximateTimeSynchronizer(["a"]).add("b", 0, None)


def test_worker_drops_stale_frames_and_keeps_the_newest():
    release = threading.Event()
    seen = []

    def process(item):
        release.wait(5)
        seen.append(item)

    worker = InferenceWorker(process)
    try:
        worker.submit(1)
        time.sleep(0.2)  # 1 is now being processed
        for i in (2, 3, 4):
            worker.submit(i)
        release.set()
        deadline = time.monotonic() + 5
        while worker.stats.processed < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [1, 4]
        assert worker.stats.dropped_stale == 2
    finally:
        worker.stop()


def test_worker_max_rate_limits_processing():
    seen = []
    worker = InferenceWorker(lambda item: seen.append(time.monotonic()), max_rate_hz=5.0)
    try:
        for i in range(30):
            worker.submit(i)
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        worker.stop()
    gaps = [b - a for a, b in zip(seen[:-1], seen[1:], strict=True)]
    assert len(seen) >= 2 and min(gaps) >= 0.19
    assert worker.stats.dropped_stale >= 20


def test_worker_survives_errors_and_runs_calls_on_its_thread():
    names = []

    def process(item):
        if item == "bad":
            raise RuntimeError("boom")
        names.append(threading.current_thread().name)

    errors = []
    worker = InferenceWorker(process, on_error=lambda kind, exc: errors.append(kind), name="inference")
    try:
        worker.submit("bad")
        assert worker.call(lambda: threading.current_thread().name, timeout_s=5) == "inference"
        worker.submit("good")
        deadline = time.monotonic() + 5
        while not names and time.monotonic() < deadline:
            time.sleep(0.01)
        assert names == ["inference"] and errors == ["RuntimeError"] and worker.stats.errors == {"RuntimeError": 1}
        with pytest.raises(ZeroDivisionError):
            worker.call(lambda: 1 / 0, timeout_s=5)
    finally:
        worker.stop()
    assert not worker.alive
