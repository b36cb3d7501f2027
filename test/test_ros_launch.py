"""Launch files and the RViz config: launch/launch_ros/rviz2 cannot run here, so check that they
compile, declare the documented arguments, and reference files and executables that exist."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

LAUNCH_FILES = ["spatial_vlm.launch.py", "demo.launch.py"]


def parse(path: Path) -> ast.Module:
    source = path.read_text()
    compile(source, str(path), "exec")
    return ast.parse(source)


def string_constants(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def keyword(call: ast.Call, key: str):
    for kw in call.keywords:
        if kw.arg == key and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_compiles_and_defines_generate_launch_description(repo_root, name):
    tree = parse(repo_root / "launch" / name)
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in funcs


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_nodes_reference_installed_executables(repo_root, name):
    tree = parse(repo_root / "launch" / name)
    cmake = (repo_root / "CMakeLists.txt").read_text()
    for call in calls(tree, "Node"):
        package, executable = keyword(call, "package"), keyword(call, "executable")
        assert package and executable
        if package == "spatial_vlm_ros":
            assert (repo_root / "scripts" / executable).is_file(), executable
            assert f"scripts/{executable}" in cmake, f"{executable} is not installed by CMakeLists.txt"
    for rel in ("config/spatial_vlm.yaml", "config/spatial_vlm.rviz"):
        parts = rel.split("/")
        if all(p in string_constants(tree) for p in parts):
            assert (repo_root / rel).is_file()
    assert "install(DIRECTORY launch config" in cmake


def test_main_launch_declares_documented_arguments(repo_root):
    tree = parse(repo_root / "launch" / "spatial_vlm.launch.py")
    declared = {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")}
    assert {"camera_namespace", "params_file", "use_rviz"} <= declared
    assert "spatial_vlm.yaml" in string_constants(tree) and "spatial_vlm.rviz" in string_constants(tree)


def test_demo_launch_runs_player_and_node(repo_root):
    tree = parse(repo_root / "launch" / "demo.launch.py")
    executables = {keyword(c, "executable") for c in calls(tree, "Node")}
    assert {"spatial_vlm_node", "rgbd_player", "rviz2"} <= executables


def test_rviz_config_shows_image_depth_and_markers(repo_root):
    cfg = yaml.safe_load((repo_root / "config" / "spatial_vlm.rviz").read_text())
    displays = cfg["Visualization Manager"]["Displays"]
    topics = {d["Class"].split("/")[-1] + ":" + d.get("Topic", {}).get("Value", "") for d in displays}
    assert "Image:/spatial_vlm_node/debug_image" in topics and "Image:/spatial_vlm_node/depth" in topics
    assert "MarkerArray:/spatial_vlm_node/markers" in topics


def test_scripts_point_at_real_entry_points(repo_root):
    import importlib

    for script in ("spatial_vlm_node", "rgbd_player", "query_client"):
        text = (repo_root / "scripts" / script).read_text()
        module, func = re.search(r"from (\S+) import (\w+)", text).groups()
        assert callable(getattr(importlib.import_module(module), func))


def test_node_cli_builds_ros_arguments(repo_root):
    import argparse

    from spatial_vlm_ros.ros import node

    parser = argparse.ArgumentParser()
    node.add_arguments(parser)
    args = parser.parse_args(["--model", "/m", "--namespace", "cam/", "--record", "/tmp/r.mcap", "--",
                              "-p", "model.device:=cpu"])
    out = node.ros_arguments(args, str(repo_root / "config" / "spatial_vlm.yaml"))
    assert out[:3] == ["--ros-args", "--params-file", str(repo_root / "config" / "spatial_vlm.yaml")]
    assert "model.path:=/m" in out and "__ns:=/cam" in out and "record.mcap_path:=/tmp/r.mcap" in out
    assert out[-2:] == ["-p", "model.device:=cpu"] and "--" not in out
    with pytest.raises(FileNotFoundError):
        node.ros_arguments(parser.parse_args(["--params-file", "/no/such.yaml"]))
