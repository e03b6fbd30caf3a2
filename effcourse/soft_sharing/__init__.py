"""Chapter 5 (Savarese 2025, ch. 3): soft parameter sharing through template banks."""

from .swrn import SWRN, SharedResidualCNN
from .templates import SConv2d, SLinear, TemplateBank

__all__ = ["SWRN", "SConv2d", "SLinear", "SharedResidualCNN", "TemplateBank"]
