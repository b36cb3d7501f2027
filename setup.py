"""pip install for machines without ROS: `pip install -e .[train]` gives the model, inference and
training packages (no messages, no node). On a ROS 2 machine build with colcon instead (CMakeLists.txt)."""
from setuptools import find_packages, setup

setup(
    name="spatial_vlm_ros",
    version="0.1.0",
    description="3D spatial-reasoning perception for ROS 2 with a distilled vision-language student",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["spatial_vlm_ros", "spatial_vlm_ros.*", "spatial_vlm_training", "spatial_vlm_training.*"],
                           exclude=["spatial_vlm_ros.ros", "spatial_vlm_ros.ros.*"]),
    package_data={"spatial_vlm_ros": ["py.typed"]},
    install_requires=["numpy", "scipy", "pyyaml", "torch>=2.1", "transformers>=4.57", "tokenizers", "safetensors",
                      "opencv-python-headless"],
    extras_require={
        "train": ["accelerate", "open3d-cpu", "tqdm", "rich", "mcap", "mcap-ros2-support"],
        "realsense": ["ai-edge-litert"],
        "test": ["pytest", "pytest-timeout", "hypothesis", "ruff"],
    },
    entry_points={"console_scripts": ["spatial-vlm=spatial_vlm_ros.cli:main"]},
)
