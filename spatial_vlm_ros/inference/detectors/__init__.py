"""2D object detectors that feed the geometry engine (no ROS, no torch)."""
