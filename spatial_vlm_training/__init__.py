"""Training package: data generation, teachers, distillation, evaluation. Imports spatial_vlm_ros.model/inference, never spatial_vlm_ros.ros."""
