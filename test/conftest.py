"""Shared pytest fixtures.

`make test` runs inside scripts/env.sh (venv + colcon install + shared-memory Fast DDS profile).
Each test session gets its own ROS_DOMAIN_ID so parallel runs on one machine never cross-talk.
"""
from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPATIAL_VLM_SHARED", REPO.parent / "shared"))
REALDATA = SHARED / "realdata"

# Child processes started by tests inherit this.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def load_script(name: str):
    """A scripts/NAME.py measurement script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata; tests that need real frames skip when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real RGB-D frames not found at {REALDATA}")
    return REALDATA


@pytest.fixture(scope="session")
def student_dir() -> Path:
    return REPO / "resource" / "models" / "student"


@pytest.fixture(scope="session")
def teacher_dir() -> Path:
    return REPO / "resource" / "models" / "teacher"


@pytest.fixture(scope="session")
def bare_model_dir(tmp_path_factory) -> Path:
    """A tiny saved model with no region head: what the commands that add a head to one must refuse."""
    from spatial_vlm_ros.model.build import new_model, save_model, tokenizer_for
    from spatial_vlm_ros.model.configuration_spatial_vlm import DEFAULT_CATEGORIES, DEFAULT_COLORS

    tok = tokenizer_for([], DEFAULT_CATEGORIES, DEFAULT_COLORS)
    model = new_model(tok, image_height=48, image_width=64, encoder_dim=32, encoder_depth=2, encoder_heads=2, dpt_dim=8,
                      detection_dim=8, lm_hidden_size=32, lm_layers=1, lm_heads=2, lm_intermediate_size=64,
                      use_roi_features=False)
    return save_model(model, tok, tmp_path_factory.mktemp("bare"))


@pytest.fixture(scope="session")
def generated_split(tmp_path_factory):
    """Factory for small freshly generated splits (the procedural generator, svlm-scenes-1 format)."""
    def make(split: str, seed: int, n_scenes: int, **kwargs) -> Path:
        from spatial_vlm_training.data.generator import GenerateConfig, generate_split

        out = tmp_path_factory.mktemp(f"{split}_{seed}") / split
        generate_split(GenerateConfig(out, split, seed, n_scenes, **kwargs))
        return out

    return make


@pytest.fixture
def cli_error_line(capsys):
    """Run `spatial-vlm ARGS`, check it fails, and return its one `spatial-vlm ...` error line."""
    def run(argv: list[str]) -> str:
        from spatial_vlm_ros.cli import main

        assert main(argv) != 0
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("spatial-vlm")]
        assert len(err) == 1, err
        return err[0]

    return run
