"""nearest_distances searches within a radius, yet the smallest distances it returns (what gaps and
their low percentiles read) are exactly those of a full nearest-neighbour search."""
import numpy as np
from scipy.spatial import cKDTree

from spatial_vlm_ros.inference.geometry import nearest_distances, surface_gap


def point_sets():
    rng = np.random.default_rng(3)
    for _ in range(40):
        a = rng.normal(size=(int(rng.integers(1, 900)), 3)).astype(np.float32) * rng.uniform(0.01, 0.5)
        b = rng.normal(size=(int(rng.integers(1, 900)), 3)).astype(np.float32) * rng.uniform(0.01, 0.5)
        b += rng.uniform(-1, 1, 3).astype(np.float32)  # apart, overlapping or inside
        yield a, b
    shared = rng.normal(size=(300, 3)).astype(np.float32)
    yield shared, shared[::2].copy()  # touching sets: a radius of 0
    yield np.zeros((5, 3), np.float32), np.ones((1, 3), np.float32)


def test_smallest_distances_equal_a_full_search():
    for a, b in point_sets():
        full = cKDTree(b).query(a, k=1)[0]
        needed = int((len(a) - 1) * 0.01) + 2
        d = nearest_distances(a, b, needed)
        assert d.shape == full.shape
        assert d.min() == full.min()
        assert np.percentile(d, 1) == np.percentile(full, 1)
        assert np.array_equal(np.sort(d)[:needed], np.sort(full)[:needed])


def test_surface_gap_is_the_closest_distance():
    for a, b in point_sets():
        assert surface_gap(a, b) == cKDTree(b).query(a, k=1)[0].min()  # under 4,000 points: no subsample
    assert np.isnan(surface_gap(np.zeros((0, 3)), np.ones((3, 3))))
