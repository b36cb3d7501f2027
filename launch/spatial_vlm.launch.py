"""ros2 launch spatial_vlm_ros spatial_vlm.launch.py [camera_namespace:=camera] [params_file:=...] [use_rviz:=true]

Starts the perception node in the camera's namespace (its relative input topics then resolve to e.g.
/camera/color/image_raw when camera_namespace is empty and the camera publishes under /camera), and
optionally RViz with config/spatial_vlm.rviz.
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
    default_params = os.path.join(share, "config", "spatial_vlm.yaml")
    rviz_config = os.path.join(share, "config", "spatial_vlm.rviz")
    namespace = LaunchConfiguration("camera_namespace")
    params_file = LaunchConfiguration("params_file")
    use_rviz = LaunchConfiguration("use_rviz")
    return LaunchDescription([
        DeclareLaunchArgument("camera_namespace", default_value="",
                              description="namespace of the node; relative input topics resolve inside it"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML parameters of spatial_vlm_node"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="start RViz with the package's config"),
        Node(package="spatial_vlm_ros", executable="spatial_vlm_node", name="spatial_vlm_node",
             namespace=namespace, parameters=[params_file], output="screen", emulate_tty=True),
        Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", rviz_config],
             condition=IfCondition(use_rviz), output="screen"),
    ])
