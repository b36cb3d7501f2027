"""Counters of the node and their /diagnostics message (rate, latency, drops, errors per kind, device)."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header


@dataclass
class NodeStats:
    device: str = "cpu"
    model: str = ""
    window_s: float = 10.0
    frames_in: int = 0
    frames_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # stale, out_of_order, duplicate, sync_overflow
    errors: dict[str, int] = field(default_factory=dict)  # per kind: bad_encoding, misaligned_depth, ...
    queries: int = 0
    queries_failed: int = 0
    _done: deque = field(default_factory=lambda: deque(maxlen=512))  # (wall time, latency ms)
    _stages: dict = field(default_factory=dict)  # stage -> deque of recent ms
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def count_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def set_dropped(self, kind: str, value: int) -> None:
        with self._lock:
            self.dropped[kind] = int(value)

    def frame_done(self, latency_ms: float) -> None:
        with self._lock:
            self.frames_out += 1
            self._done.append((time.monotonic(), float(latency_ms)))

    def add_stages(self, stages_ms: dict[str, float]) -> None:
        """Per-frame milliseconds of each stage (assembly, the engine's own stages, cross-check, publish):
        /diagnostics reports their medians over the last 100 frames, so a slow stage shows by name."""
        with self._lock:
            for name, ms in stages_ms.items():
                self._stages.setdefault(name, deque(maxlen=100)).append(float(ms))

    def stage_medians_ms(self) -> dict[str, float]:
        with self._lock:
            return {name: float(np.median(v)) for name, v in self._stages.items() if v}

    def rate_hz(self) -> float:
        with self._lock:
            now = time.monotonic()
            recent = [t for t, _ in self._done if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-6, recent[-1] - recent[0])

    def latency_ms(self) -> tuple[float, float]:
        """Mean and p95 of the recent end-to-end latencies (source stamp -> publish)."""
        with self._lock:
            lat = [x for _, x in self._done]
        if not lat:
            return float("nan"), float("nan")
        return float(np.mean(lat[-100:])), float(np.percentile(lat[-100:], 95))

    def to_msg(self, stamp, node_name: str, healthy: bool = True) -> DiagnosticArray:
        mean, p95 = self.latency_ms()
        rate = self.rate_hz()
        with self._lock:
            values = {
                "device": self.device, "model": self.model, "rate_hz": f"{rate:.2f}",
                "latency_mean_ms": f"{mean:.1f}", "latency_p95_ms": f"{p95:.1f}",
                "frames_in": str(self.frames_in), "frames_out": str(self.frames_out),
                "queries": str(self.queries), "queries_failed": str(self.queries_failed),
            }
            values.update({f"dropped_{k}": str(v) for k, v in sorted(self.dropped.items())})
            values.update({f"errors_{k}": str(v) for k, v in sorted(self.errors.items())})
            values.update({f"stage_{k}_ms": f"{v:.1f}" for k, v in self.stage_medians_ms().items()})
            n_err = sum(self.errors.values())
        status = DiagnosticStatus(name=f"{node_name}: perception", hardware_id=self.device)
        if not healthy:
            status.level, status.message = DiagnosticStatus.ERROR, "model not loaded"
        elif n_err:
            status.level, status.message = DiagnosticStatus.WARN, f"{n_err} input/inference errors so far"
        else:
            status.level, status.message = DiagnosticStatus.OK, "ok"
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return DiagnosticArray(header=Header(stamp=stamp), status=[status])


def parse_values(msg: DiagnosticArray) -> dict[str, str]:
    """Key/values of the first status (for clients and tests)."""
    return {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}
