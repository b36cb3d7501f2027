"""ros2 launch spatial_vlm_ros demo.launch.py input:=/path/to/sequence [rate:=30.0] [use_rviz:=true]

The demo on a real ROS 2 install: the RGB-D player publishes a recorded or generated sequence in a
loop, the perception node processes it, RViz shows image, depth and markers. (`spatial-vlm demo`
does the same without launch and also asks the query service and prints a summary.)
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("spatial_vlm_ros")
    params_file = os.path.join(share, "config", "spatial_vlm.yaml")
    rviz_config = os.path.join(share, "config", "spatial_vlm.rviz")
    default_input = os.path.join(share, "resource", "sequences", "demo")
    return LaunchDescription([
        DeclareLaunchArgument("input", default_value=default_input,
                              description="scene folder (meta.json + samples.jsonl), .mcap, or realdata folder"),
        DeclareLaunchArgument("rate", default_value="30.0", description="player frame rate (Hz)"),
        DeclareLaunchArgument("use_rviz", default_value="true", description="start RViz"),
        Node(package="spatial_vlm_ros", executable="spatial_vlm_node", name="spatial_vlm_node",
             parameters=[params_file], output="screen", emulate_tty=True),
        Node(package="spatial_vlm_ros", executable="rgbd_player", name="rgbd_player", output="screen",
             arguments=["--input", LaunchConfiguration("input"), "--rate", LaunchConfiguration("rate"), "--loop"]),
        Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", rviz_config],
             condition=IfCondition(LaunchConfiguration("use_rviz")), output="screen"),
    ])
