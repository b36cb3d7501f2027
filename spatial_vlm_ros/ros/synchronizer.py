"""Approximate-time synchronisation of several streams (colour + depth + camera info [+ cloud]).

message_filters is not installable from PyPI (see ../shared/ENVIRONMENT.md), so this is a small
replacement with the same knobs: `queue_size` messages are kept per stream, and a set is emitted
when every stream has a message within `slop_s` of the pivot stream's message (the first key,
normally colour). The newest complete set wins and everything older is discarded, so a slow
consumer never sees a backlog. Messages older than the last emitted set are dropped and counted
as out-of-order, repeats of its stamp as duplicates. Pure Python, no ROS: stamps are nanoseconds.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncStats:
    received: dict[str, int] = field(default_factory=dict)
    emitted: int = 0
    out_of_order: int = 0
    duplicate: int = 0
    overflow: int = 0  # messages pushed out of a full queue without ever matching


class ApproximateTimeSynchronizer:
    def __init__(self, keys: list[str], slop_s: float = 0.05, queue_size: int = 10,
                 callback: Callable[[dict[str, Any], int], None] | None = None):
        if not keys:
            raise ValueError("synchronizer needs at least one stream")
        if slop_s < 0 or queue_size < 1:
            raise ValueError(f"invalid synchronizer settings slop={slop_s} queue_size={queue_size}")
        self.keys = list(keys)
        self.slop_ns = int(slop_s * 1e9)
        self.queue_size = int(queue_size)
        self.callback = callback
        self.stats = SyncStats(received={k: 0 for k in self.keys})
        self._queues: dict[str, deque[tuple[int, Any]]] = {k: deque() for k in self.keys}
        self._last_emitted_ns: int | None = None
        self._lock = threading.Lock()

    def add(self, key: str, stamp_ns: int, msg: Any) -> dict[str, Any] | None:
        """Offer one message; returns (and passes to the callback) the matched set, if one completes."""
        if key not in self._queues:
            raise KeyError(f"unknown stream '{key}' (streams: {', '.join(self.keys)})")
        with self._lock:
            self.stats.received[key] += 1
            last = self._last_emitted_ns
            if last is not None and stamp_ns <= last - self.slop_ns:
                self.stats.out_of_order += 1
                return None
            q = self._queues[key]
            if any(s == stamp_ns for s, _ in q) or (key == self.keys[0] and last is not None and stamp_ns == last):
                self.stats.duplicate += 1
                return None
            q.append((stamp_ns, msg))
            # Keep the queue sorted by stamp even when the transport reorders messages.
            if len(q) > 1 and q[-2][0] > stamp_ns:
                self._queues[key] = q = deque(sorted(q, key=lambda item: item[0]))
            while len(q) > self.queue_size:
                q.popleft()
                self.stats.overflow += 1
            matched = self._match()
        if matched is not None and self.callback is not None:
            self.callback(matched[0], matched[1])
        return matched[0] if matched is not None else None

    def _match(self) -> tuple[dict[str, Any], int] | None:
        pivot_key = self.keys[0]
        for pivot_stamp, pivot_msg in reversed(self._queues[pivot_key]):
            chosen = {pivot_key: (pivot_stamp, pivot_msg)}
            for key in self.keys[1:]:
                best = min(self._queues[key], key=lambda item: abs(item[0] - pivot_stamp), default=None)
                if best is None or abs(best[0] - pivot_stamp) > self.slop_ns:
                    break
                chosen[key] = best
            else:
                for key, (stamp, _) in chosen.items():
                    q = self._queues[key]
                    while q and q[0][0] <= stamp:
                        q.popleft()
                self._last_emitted_ns = pivot_stamp
                self.stats.emitted += 1
                return {k: m for k, (_, m) in chosen.items()}, pivot_stamp
        return None

    def reset(self) -> None:
        with self._lock:
            for q in self._queues.values():
                q.clear()
            self._last_emitted_ns = None
