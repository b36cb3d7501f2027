"""The one thread that owns the engine.

ROS callbacks only hand over the newest frame (`submit`); a frame that was still waiting when a newer
one arrived is stale and is dropped and counted, so latency never grows with a backlog. Service
requests that need the model (`call`) run on the same thread, ahead of frames, because torch modules
are not safe to drive from two threads at once. `max_rate_hz` caps how often frames are processed.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class WorkerStats:
    submitted: int = 0
    processed: int = 0
    dropped_stale: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


class InferenceWorker:
    def __init__(self, process: Callable[[Any], None], max_rate_hz: float = 0.0,
                 on_error: Callable[[str, Exception], None] | None = None, name: str = "inference"):
        self._process = process
        self._min_period_s = 1.0 / max_rate_hz if max_rate_hz and max_rate_hz > 0 else 0.0
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: Any = None
        self._has_pending = False
        self._calls: list[tuple[Callable[[], Any], Future]] = []
        self._stop = False
        self._last_start = 0.0
        self.stats = WorkerStats()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        with self._cond:
            self.stats.submitted += 1
            if self._has_pending:
                self.stats.dropped_stale += 1
            self._pending, self._has_pending = item, True
            self._cond.notify()

    def call(self, fn: Callable[[], Any], timeout_s: float | None = None) -> Any:
        """Run `fn` on the worker thread and return its result (re-raising its exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        fut: Future = Future()
        with self._cond:
            if self._stop:
                raise RuntimeError("inference worker is stopped")
            self._calls.append((fn, fut))
            self._cond.notify()
        return fut.result(timeout=timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._calls and not self._has_pending:
                    self._cond.wait()
                if self._stop:
                    for _, fut in self._calls:
                        fut.set_exception(RuntimeError("inference worker stopped"))
                    return
                if self._calls:
                    fn, fut = self._calls.pop(0)
                    item, is_frame = None, False
                else:
                    wait = self._last_start + self._min_period_s - time.monotonic()
                    if wait > 0:
                        self._cond.wait(wait)
                        continue
                    item, is_frame = self._pending, True
                    self._pending, self._has_pending = None, False
            if not is_frame:
                try:
                    fut.set_result(fn())
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    fut.set_exception(exc)
                continue
            self._last_start = time.monotonic()
            try:
                self._process(item)
                self.stats.processed += 1
            except Exception as exc:  # noqa: BLE001 - one bad frame must not kill the thread
                kind = type(exc).__name__
                self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
                self.stats.last_error = f"{kind}: {exc}"
                if self._on_error is not None:
                    self._on_error(kind, exc)
