"""The student's depth on real NYUv2 frames (AbsRel), next to a nearest-neighbour hole-filling baseline.
Numbers are measured and reported (docs/real_world.md), not asserted against a target."""
from __future__ import annotations

import math

import pytest

from spatial_vlm_training.data.realdata import measure_depth_completion, read_nyu_frames


class MeasuredDepthOnly:
    """An engine whose depth is the measurement alone (no prediction): holes stay holes."""

    def infer(self, frame):
        import numpy as np

        from spatial_vlm_ros.inference.types import SceneResult

        depth = frame.depth if frame.depth is not None else np.full(frame.rgb.shape[:2], 2.0, np.float32)
        return SceneResult([], [], "", depth=depth)


def test_measurement_protocol_on_a_constant_engine(realdata):
    frames = read_nyu_frames(realdata / "nyuv2_metric3d_unidepth")[:2]
    scores = measure_depth_completion(MeasuredDepthOnly(), frames)
    for s in scores:
        assert 0.2 < s.abs_rel_rgb_only < 1.0  # a constant 2 m against 1-8 m rooms
        assert s.abs_rel_nearest_fill < 0.1
        assert math.isnan(s.abs_rel_completion)  # nothing was filled in


def test_student_depth_abs_rel_on_nyu(realdata, student_dir):
    if not (student_dir / "config.json").is_file():
        pytest.skip("no student checkpoint in resource/models/student")
    from spatial_vlm_ros.inference.engine import load_engine

    scores = measure_depth_completion(load_engine(student_dir), read_nyu_frames(realdata / "nyuv2_metric3d_unidepth"))
    for s in scores:
        assert math.isfinite(s.abs_rel_rgb_only) and math.isfinite(s.abs_rel_completion)
        print(f"{s.frame}: AbsRel rgb-only {s.abs_rel_rgb_only:.3f} (median-scaled {s.abs_rel_median_scaled:.3f}), "
              f"completion {s.abs_rel_completion:.3f}, nearest-fill baseline {s.abs_rel_nearest_fill:.3f}")
