"""SSD anchor generation, as TensorFlow's `multiple_grid_anchor_generator` (and MediaPipe's
SsdAnchorsCalculator) build them for SSD-MobileNetV2 at 300x300.

The OIDv4 .tflite carries no anchors: its 1917 raw outputs are offsets from these. The config is the
standard `ssd_anchor_generator` block of the TF Object Detection API's ssd_mobilenet_v2 configs (and of
MediaPipe's object_detection_oid_v4 graph): 6 layers on strides 16..512 -> feature maps 19, 10, 5, 3,
2, 1; scales linear in [0.2, 0.95]; aspect ratios {1, 2, 1/2, 3, 1/3} plus one interpolated square
anchor; the lowest layer keeps only 3 boxes. 19*19*3 + (10*10 + 5*5 + 3*3 + 2*2 + 1) * 6 = 1917.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SsdAnchorConfig:
    input_size: int = 300
    min_scale: float = 0.2
    max_scale: float = 0.95
    strides: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = field(default=(1.0, 2.0, 0.5, 3.0, 0.3333))
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True
    anchor_offset: float = 0.5  # anchor centres sit in the middle of their feature-map cell

    def scale(self, layer: int) -> float:
        n = len(self.strides)
        return self.min_scale + (self.max_scale - self.min_scale) * layer / (n - 1)

    def feature_map_sizes(self) -> list[int]:
        return [math.ceil(self.input_size / s) for s in self.strides]


def layer_box_specs(config: SsdAnchorConfig, layer: int) -> list[tuple[float, float]]:
    """(scale, aspect_ratio) of each anchor at one cell of `layer`, in output order."""
    scale = config.scale(layer)
    if layer == 0 and config.reduce_boxes_in_lowest_layer:
        return [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
    specs = [(scale, ar) for ar in config.aspect_ratios]
    if config.interpolated_scale_aspect_ratio > 0:
        next_scale = 1.0 if layer == len(config.strides) - 1 else config.scale(layer + 1)
        specs.append((math.sqrt(scale * next_scale), config.interpolated_scale_aspect_ratio))
    return specs


def generate_anchors(config: SsdAnchorConfig = SsdAnchorConfig()) -> np.ndarray:
    """(N, 4) anchors as (y_center, x_center, height, width), normalised to [0, 1] of the input.

    Order matches the network's outputs: layer, then row, then column, then box spec."""
    anchors = []
    for layer, fm in enumerate(config.feature_map_sizes()):
        specs = layer_box_specs(config, layer)
        for row in range(fm):
            yc = (row + config.anchor_offset) / fm
            for col in range(fm):
                xc = (col + config.anchor_offset) / fm
                for scale, ar in specs:
                    ratio = math.sqrt(ar)
                    anchors.append((yc, xc, scale / ratio, scale * ratio))
    return np.asarray(anchors, dtype=np.float32)
