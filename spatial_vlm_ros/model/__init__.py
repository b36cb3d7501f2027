"""The spatial VLM: pure torch + transformers (no ROS)."""
from .configuration_spatial_vlm import SpatialVLMConfig
from .modeling_spatial_vlm import IMAGE_MEAN, IMAGE_STD, QAInputs, SpatialVLM, SpatialVLMOutput
from .object_tokens import ObjectInputs

__all__ = ["IMAGE_MEAN", "IMAGE_STD", "ObjectInputs", "QAInputs", "SpatialVLM", "SpatialVLMConfig", "SpatialVLMOutput"]
