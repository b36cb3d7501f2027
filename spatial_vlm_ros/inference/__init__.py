"""Plain data types, geometry and the inference engine: no ROS imports."""
