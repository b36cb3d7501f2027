from .attention_block import AttentionBlock
from .patch_embed import PatchEmbed

__all__ = ["AttentionBlock", "PatchEmbed"]
