"""The fast paths of the shared geometry give the floats of the plain numpy/scipy formulas: nearest_distances
searches within a radius, yet the smallest distances it returns (what gaps and their low percentiles
read) are exactly those of a full nearest-neighbour search."""
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


def test_finite_rows_and_the_range_sum_match_numpy():
    from spatial_vlm_ros.inference.geometry import finite_rows

    rng = np.random.default_rng(5)
    p = rng.normal(size=(500, 3)).astype(np.float32)
    p[rng.random(p.shape) < 0.05] = np.nan
    p[3, 1] = np.inf
    assert np.array_equal(finite_rows(p), np.isfinite(p).all(1))
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    assert np.array_equal(np.sqrt(x * x + y * y + z * z), np.linalg.norm(p, axis=-1), equal_nan=True)


def test_object_statistics_equal_the_plain_formulas():
    """object_points takes its medians and percentiles per axis on a contiguous copy: same floats."""
    import math

    from spatial_vlm_ros.inference.object_features import gravity_basis, object_points

    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    points = rng.normal(size=(24, 32, 3)).astype(np.float32) + np.float32(2.0)
    points[rng.random((24, 32)) < 0.1] = np.nan
    basis = gravity_basis(np.array([0.0, -1.0, 0.0]))
    for n in (1, 2, 7, 60, 400):
        mask = np.zeros((24, 32), bool)
        mask.flat[rng.choice(mask.size, n, replace=False)] = True
        obj = object_points(rgb, points, mask, basis)
        pts = points[mask]
        pts = pts[np.isfinite(pts).all(1)]
        if not len(pts):
            continue
        local = pts @ basis.T
        lo, hi = np.percentile(local, [10, 90], axis=0)
        want = np.array([*np.median(local, 0), *(hi - lo), *np.percentile(local[:, 2], [3, 97]), np.median(pts[:, 2]),
                         math.log1p(len(pts)) / 10, len(pts) / n], np.float32)
        assert np.array_equal(obj.geometry, want)
        assert np.array_equal(obj.points, pts) and obj.n_pixels == n


def test_label_compaction_and_component_sizes_equal_np_unique():
    from spatial_vlm_ros.inference.class_agnostic import compact_labels
    from spatial_vlm_ros.inference.region_proposals import _component_masks

    rng = np.random.default_rng(2)
    for n_ids in (0, 1, 5, 300):
        comp = rng.integers(-1, n_ids, (24, 32)) if n_ids else np.full((24, 32), -1)
        comp[rng.random(comp.shape) < 0.3] = -1
        ids, compact = compact_labels(comp)
        want_ids, inverse = np.unique(comp[comp >= 0], return_inverse=True)
        assert np.array_equal(ids, want_ids) and np.array_equal(compact[comp >= 0], inverse)
        assert np.all(compact[comp < 0] == -1)
        want, counts = np.unique(comp[comp >= 0], return_counts=True)
        keep = want[(counts >= 3) & (counts <= 0.6 * comp.size)]
        masks = _component_masks(comp, 3, 0.6)
        assert len(masks) == len(keep)
        assert all(np.array_equal(m, comp == i) for m, i in zip(masks, keep, strict=True))
