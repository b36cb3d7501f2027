"""spatial_vlm_ros: 3D spatial-reasoning perception for ROS 2.

Sub-packages, imports flowing one way:
  model/      pure torch + transformers (config, encoder, heads, Hidden CoT); no ROS
  inference/  engine, 3D lifting, relation geometry, answer API; no ROS
  ros/        node, message conversions, service, markers; the only place rclpy is imported
The generated interfaces live in spatial_vlm_ros.msg / spatial_vlm_ros.srv after `colcon build`.
"""
# The generated msg/srv sub-packages are installed by colcon into the install tree; a source
# checkout on sys.path as well must not hide them.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
