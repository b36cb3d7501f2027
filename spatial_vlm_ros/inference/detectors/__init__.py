"""2D object detectors that feed the geometry engine (no ROS, no torch).

`load_detector("oid_ssd")` gives an object with `detect(rgb) -> list[Detection]`, the interface the
student engine takes for the node's `detector: both` mode."""
from __future__ import annotations


def load_detector(name: str = "oid_ssd", **kwargs):
    if name == "oid_ssd":
        from .oid_ssd import OidSsdDetector

        return OidSsdDetector(**kwargs)
    raise ValueError(f"unknown detector {name!r} (available: oid_ssd)")
