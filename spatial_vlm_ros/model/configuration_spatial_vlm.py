"""`SpatialVLMConfig`: every hyperparameter of the spatial VLM, with defaults that build the student."""
from __future__ import annotations

from transformers import PretrainedConfig

DEFAULT_CATEGORIES = ["mug", "bottle", "book", "box", "ball", "can", "bowl", "laptop", "plate", "table", "desk", "shelf"]
DEFAULT_COLORS = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black", "gray", "brown", "pink", "cyan"]

OBJECT_GEOMETRY_DIM = 11  # see spatial_vlm_ros.inference.object_features.object_geometry
OBJECT_COLOR_DIM = 7
PAIR_FEATURE_DIM = 12
REGION_CHANNELS = 5  # RGB, proposal mask, depth relative to the region's median (inference.region_inputs)
REGION_SCALAR_DIM = OBJECT_GEOMETRY_DIM + OBJECT_COLOR_DIM + 5
PIECE_PAIR_DIM = 20  # spatial_vlm_ros.inference.piece_pairs.pair_features
SHADE_BRIGHTNESS_DIM = 6  # spatial_vlm_ros.inference.shade_inputs.BRIGHTNESS_PERCENTILES


class SpatialVLMConfig(PretrainedConfig):
    model_type = "spatial_vlm"

    def __init__(
        self,
        image_height: int = 120,
        image_width: int = 160,
        patch_size: int = 8,
        use_depth_input: bool = True,
        encoder_dim: int = 128,
        encoder_depth: int = 4,
        encoder_heads: int = 4,
        mlp_ratio: float = 2.0,
        num_register_tokens: int = 2,
        max_frames: int = 4,
        dpt_layers: list[int] | None = None,
        dpt_dim: int = 32,
        use_depth_head: bool = True,
        use_segmentation_head: bool = True,
        use_detection_head: bool = True,
        use_language_head: bool = True,
        detection_stride: int = 4,
        detection_dim: int = 64,
        categories: list[str] | None = None,
        colors: list[str] | None = None,
        roi_size: int = 2,
        use_roi_features: bool = True,
        use_focus_tokens: bool = False,
        dense_output_stride: int = 1,
        lm_type: str = "qwen2",
        lm_hidden_size: int = 128,
        lm_layers: int = 2,
        lm_heads: int = 4,
        lm_intermediate_size: int = 256,
        lm_max_positions: int = 512,
        vocab_size: int = 128,
        hidden_cot_k: int = 4,
        max_objects: int = 12,
        max_answer_tokens: int = 6,
        depth_min_m: float = 0.1,
        depth_max_m: float = 10.0,
        pad_token_id: int = 0,
        unk_token_id: int = 1,
        bos_token_id: int = 2,
        eos_token_id: int = 3,
        answer_token_id: int = 4,
        category_token_ids: list[list[int]] | None = None,
        color_token_ids: list[list[int]] | None = None,
        use_region_head: bool = False,
        region_crop_size: int = 24,
        region_widths: list[int] | None = None,
        region_hidden: int = 128,
        max_trained_depth_m: float | None = None,
        use_piece_head: bool = False,
        piece_head_hidden: int = 32,
        piece_head_threshold: float = 0.5,
        use_shade_head: bool = False,
        shade_colors: list[str] | None = None,
        **kwargs,
    ):
        self.image_height = image_height
        self.image_width = image_width
        self.patch_size = patch_size
        self.use_depth_input = use_depth_input
        self.encoder_dim = encoder_dim
        self.encoder_depth = encoder_depth
        self.encoder_heads = encoder_heads
        self.mlp_ratio = mlp_ratio
        self.num_register_tokens = num_register_tokens
        self.max_frames = max_frames
        self.dpt_layers = list(dpt_layers) if dpt_layers is not None else None
        self.dpt_dim = dpt_dim
        self.use_depth_head = use_depth_head
        self.use_segmentation_head = use_segmentation_head
        self.use_detection_head = use_detection_head
        self.use_language_head = use_language_head
        self.detection_stride = detection_stride
        self.detection_dim = detection_dim
        self.categories = list(categories) if categories else list(DEFAULT_CATEGORIES)
        self.colors = list(colors) if colors else list(DEFAULT_COLORS)
        self.roi_size = roi_size
        # Without RoI features the language path needs no image forward, so on a CPU budget it can
        # train on many more questions than the perception heads see images.
        self.use_roi_features = use_roi_features
        # Focus tokens: copies of the object and pair tokens a question mentions, placed before the
        # question (mentions come from matching the referring expressions in the text).
        self.use_focus_tokens = use_focus_tokens
        # Dense heads predict at input/stride and are upsampled bilinearly (4x cheaper at stride 2).
        self.dense_output_stride = dense_output_stride
        self.lm_type = lm_type
        self.lm_hidden_size = lm_hidden_size
        self.lm_layers = lm_layers
        self.lm_heads = lm_heads
        self.lm_intermediate_size = lm_intermediate_size
        self.lm_max_positions = lm_max_positions
        self.vocab_size = vocab_size
        self.hidden_cot_k = hidden_cot_k
        self.max_objects = max_objects
        self.max_answer_tokens = max_answer_tokens
        self.depth_min_m = depth_min_m
        self.depth_max_m = depth_max_m
        # Token ids follow spatial_vlm_ros.model.tokenizer.SPECIAL_TOKENS; the name ids are filled in
        # when the model is built for a trained tokenizer.
        self.unk_token_id = unk_token_id
        self.answer_token_id = answer_token_id
        self.category_token_ids = category_token_ids
        self.color_token_ids = color_token_ids
        # Region head: names (or rejects) class-agnostic region proposals from crops + 3D statistics.
        # When present the engine detects with it instead of the CenterNet head (FINDINGS.md).
        self.use_region_head = use_region_head
        self.region_crop_size = region_crop_size
        self.region_widths = list(region_widths) if region_widths else [16, 32, 64]
        self.region_hidden = region_hidden
        # How far in front of the camera the region head has seen objects: 10 % beyond the deepest object centre
        # of its training frames (spatial-vlm train-regions records it). The engine scores no proposal
        # whose median depth lies beyond it: there the head only ever met background, and it named far
        # walls as desks.
        self.max_trained_depth_m = max_trained_depth_m
        # Piece head: judges whether two touching detections are pieces of one object (the engine keeps
        # the best-scored piece); the threshold on its probability is chosen on val pairs when it is
        # trained (spatial-vlm train-pieces).
        self.use_piece_head = use_piece_head
        self.piece_head_hidden = piece_head_hidden
        self.piece_head_threshold = piece_head_threshold
        # Shade head: re-decides between the colours that differ only in brightness (white, gray, black)
        # from the brightness of the object's best-lit pixels, trained on the model's own detections
        # (spatial-vlm train-shades).
        self.use_shade_head = use_shade_head
        self.shade_colors = list(shade_colors) if shade_colors else ["white", "gray", "black"]
        # Through the base class, as transformers' own configs do: 4.x's base __init__ resets these three.
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        self.validate_spatial()

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.image_height // self.patch_size, self.image_width // self.patch_size

    @property
    def resolved_dpt_layers(self) -> list[int]:
        if self.dpt_layers:
            return list(self.dpt_layers)
        d = self.encoder_depth
        return sorted({max(0, d // 4 - 1), max(0, d // 2 - 1), max(0, 3 * d // 4 - 1), d - 1})

    def validate_spatial(self) -> None:
        """Inconsistent settings fail here, at load time, with one line naming the setting."""
        problems = []
        if self.image_height % self.patch_size or self.image_width % self.patch_size:
            problems.append(f"image size {self.image_width}x{self.image_height} is not a multiple of patch_size {self.patch_size}")
        if self.encoder_dim % self.encoder_heads:
            problems.append(f"encoder_dim {self.encoder_dim} is not divisible by encoder_heads {self.encoder_heads}")
        if self.lm_hidden_size % self.lm_heads:
            problems.append(f"lm_hidden_size {self.lm_hidden_size} is not divisible by lm_heads {self.lm_heads}")
        if self.patch_size % self.detection_stride:
            problems.append(f"detection_stride {self.detection_stride} must divide patch_size {self.patch_size}")
        if self.dense_output_stride not in (1, 2, 4) or self.dense_output_stride > self.patch_size:
            problems.append(f"dense_output_stride must be 1, 2 or 4 (<= patch_size), got {self.dense_output_stride}")
        if self.hidden_cot_k < 0:
            problems.append(f"hidden_cot_k must be >= 0, got {self.hidden_cot_k}")
        if self.dpt_layers and max(self.dpt_layers) >= self.encoder_depth:
            problems.append(f"dpt_layers {self.dpt_layers} exceed encoder_depth {self.encoder_depth}")
        if self.region_crop_size < 2 ** len(self.region_widths):
            problems.append(f"region_crop_size {self.region_crop_size} is too small for {len(self.region_widths)} pooling stages")
        if self.max_trained_depth_m is not None and not self.max_trained_depth_m > 0:
            problems.append(f"max_trained_depth_m must be > 0 (or null), got {self.max_trained_depth_m}")
        if not 0.0 < self.piece_head_threshold <= 1.0:
            problems.append(f"piece_head_threshold must be in (0, 1], got {self.piece_head_threshold}")
        if self.use_shade_head and (len(self.shade_colors) < 2 or not set(self.shade_colors) <= set(self.colors)):
            problems.append(f"shade_colors {self.shade_colors} must be at least two of colors {self.colors}")
        if self.lm_type not in ("qwen2", "llama"):
            problems.append(f"lm_type must be qwen2 or llama, got {self.lm_type!r}")
        if problems:
            raise ValueError("inconsistent SpatialVLMConfig: " + "; ".join(problems))
