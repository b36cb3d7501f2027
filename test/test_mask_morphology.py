"""dilate/erode on a mask's box give scipy's whole-image results, at the image border too."""
import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion

from spatial_vlm_ros.inference.mask_morphology import dilate, erode

EIGHT = np.ones((3, 3), bool)


def masks():
    rng = np.random.default_rng(0)
    out = [np.zeros((24, 32), bool), np.ones((24, 32), bool)]
    for _ in range(60):
        m = np.zeros((24, 32), bool)
        y, x = rng.integers(-3, 24, 2)
        h, w = rng.integers(1, 12, 2)
        m[max(y, 0):y + h, max(x, 0):x + w] = True
        m &= rng.random(m.shape) > 0.15  # holes and ragged edges
        out.append(m)
    return out


@pytest.mark.parametrize("structure", [None, EIGHT])
def test_same_pixels_as_scipy(structure):
    for m in masks():
        for iterations in (1, 2, 3):
            assert np.array_equal(dilate(m, structure, iterations), binary_dilation(m, structure, iterations=iterations))
        assert np.array_equal(erode(m, structure), binary_erosion(m, structure))
