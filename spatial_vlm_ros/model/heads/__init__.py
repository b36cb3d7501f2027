from .centernet_head import CenterNetHead
from .dpt_depth_head import DPTDepthHead, DPTHead
from .language_head import LanguageHead
from .piece_head import PieceHead
from .region_head import RegionHead
from .segmentation_head import SegmentationHead
from .shade_head import ShadeHead

__all__ = ["CenterNetHead", "DPTDepthHead", "DPTHead", "LanguageHead", "PieceHead", "RegionHead", "SegmentationHead",
           "ShadeHead"]
