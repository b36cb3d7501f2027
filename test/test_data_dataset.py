"""The torch Dataset, the sample JSON round trip, the sequence mode and the generator CLI's errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from spatial_vlm_training.data.dataset import SceneDataset
from spatial_vlm_training.data.generator import GenerateConfig, generate_sequence, generate_split
from spatial_vlm_training.data.resize import frame_from_sample, resized_intrinsics
from spatial_vlm_training.data.sample import SceneSample, SplitFormatError, iter_samples, load_split


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "val"
    generate_split(GenerateConfig(out, "val", 5, 3, views=2, width=320, height=240))
    return out


def test_items_have_consistent_shapes(split_dir):
    ds = SceneDataset(split_dir)
    assert len(ds) == 6
    item = ds[1]
    assert item["rgb"].shape == (3, 240, 320) and item["rgb"].dtype == torch.uint8
    assert item["depth"].shape == item["gt_depth"].shape == item["instance"].shape == (240, 320)
    assert torch.isnan(item["depth"]).any()
    assert item["instance"].max().item() == len(item["objects"])
    assert ds.sample(0).scene == ds.sample(1).scene  # two views per scene


def test_resize_keeps_intrinsics_and_boxes_consistent(split_dir):
    full, small = SceneDataset(split_dir)[0], SceneDataset(split_dir, size=(160, 120))[0]
    assert small["rgb"].shape == (3, 120, 160) and small["instance"].shape == (120, 160)
    k0, k1 = full["intrinsics"], small["intrinsics"]
    for o0, o1 in zip(full["objects"], small["objects"], strict=True):
        c = np.asarray(o0.box3d.center)
        u0 = k0.fx * c[0] / c[2] + k0.cx
        u1 = k1.fx * c[0] / c[2] + k1.cx
        assert u1 == pytest.approx((u0 + 0.5) * 0.5 - 0.5, abs=1e-6)
        assert o1.box2d[2] == pytest.approx(o0.box2d[2] / 2)
        # The resized instance mask still sits inside the scaled 2D box.
        ys, xs = np.nonzero(small["instance"].numpy() == o1.instance)
        if len(xs):
            assert xs.min() >= o1.box2d[0] - 1 and xs.max() <= o1.box2d[2] + 1
    assert resized_intrinsics(k0, 320, 240) == k0


def test_dataloader_batches_with_a_custom_collate(split_dir):
    loader = torch.utils.data.DataLoader(SceneDataset(split_dir, limit=4), batch_size=2, collate_fn=list)
    batches = list(loader)
    assert len(batches) == 2 and all(len(b) == 2 for b in batches)


def test_frame_from_sample(split_dir):
    s = load_split(split_dir).samples[0]
    f = frame_from_sample(s, size=(160, 120))
    assert f.rgb.shape == (120, 160, 3) and f.depth.shape == (120, 160) and f.intrinsics.width == 160
    assert f.frame_id == s.id and np.allclose(np.linalg.norm(f.up), 1.0, atol=1e-4)


def test_json_round_trip(split_dir):
    s = next(iter_samples(split_dir))
    again = SceneSample.from_json(json.loads(s.to_line()), s.root)
    assert again.to_line() == s.to_line()


def test_bad_inputs_raise_one_clear_error(tmp_path, split_dir):
    with pytest.raises(SplitFormatError, match="meta.json"):
        load_split(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "svlm-scenes-0"}))
    with pytest.raises(SplitFormatError, match="expected 'svlm-scenes-1'"):
        load_split(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(SplitFormatError, match="corrupt"):
        load_split(tmp_path)
    s = load_split(split_dir).samples[0]
    s.gt = "frames/nope_gt.npz"
    with pytest.raises(SplitFormatError, match="nope_gt.npz"):
        s.load_gt()


def test_sequence_moves_smoothly(tmp_path):
    out = tmp_path / "seq"
    generate_sequence(GenerateConfig(out, "test", 0, 1, width=320, height=240), n_frames=6)
    samples = load_split(out).samples
    assert len(samples) == 6 and {s.scene for s in samples} == {0}
    eyes = np.array([s.camera_pose[:3, 3] for s in samples])
    steps = np.linalg.norm(np.diff(eyes, axis=0), axis=1)
    # One smooth orbit: equal steps (no jumps), about 100 degrees in total.
    assert (steps > 0).all() and steps.max() < 1.5 * steps.min()
    assert all(len(s.objects) >= 2 for s in samples)


def test_cli_rejects_bad_arguments_in_one_line(tmp_path, repo_root):
    proc = subprocess.run([sys.executable, "-m", "spatial_vlm_ros.cli", "generate", "--out", str(tmp_path / "x"),
                           "--scenes", "0"], capture_output=True, text=True, cwd=repo_root)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "--scenes must be >= 1" in proc.stderr


def test_cli_writes_a_split_with_a_preview(tmp_path, repo_root):
    import cv2

    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "spatial_vlm_ros.cli", "generate", "--out", str(out), "--scenes", "2",
                           "--width", "160", "--height", "120", "--split", "val"], capture_output=True, text=True,
                          cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 frames" in proc.stdout
    assert len(load_split(out)) == 2
    preview = cv2.imread(str(out / "preview.png"))
    assert preview is not None and preview.shape[0] > 100
