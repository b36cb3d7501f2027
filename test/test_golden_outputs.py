"""The golden outputs (test/golden_capture.py): every backend answers the fixed frames exactly as stored.

A failure lists the first differences. If the change is intended, say in the commit which numbers
change and why, and regenerate: `source scripts/env.sh && python test/golden_capture.py --write`."""
from __future__ import annotations

import json

import pytest
from golden_capture import GOLDEN_DIR, capture_real, capture_synthetic, differences


def _check(name: str, actual: dict) -> None:
    expected = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    assert actual["frames_sha256"] == expected["frames_sha256"], (
        f"the {name} golden frames changed (generator or reader, not the engines): regenerate the golden outputs")
    diff = differences(expected, actual)
    assert not diff, f"{name} golden outputs differ:\n" + "\n".join(diff)


@pytest.mark.timeout(600)
def test_generated_frames_give_the_golden_outputs():
    _check("synthetic", capture_synthetic())


@pytest.mark.timeout(600)
def test_real_frames_give_the_golden_outputs(realdata):
    _check("real", capture_real(realdata))
