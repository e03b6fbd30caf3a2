"""Chapter 3 (Gautam 2024, ch. 4): meta-learned optimizers through differentiable convex optimization (DCO)."""

from .layers import DCOGeneralDescent, DCOGradient, DCOMomentum, DCOOptimizer
from .meta import meta_train

__all__ = ["DCOGeneralDescent", "DCOGradient", "DCOMomentum", "DCOOptimizer", "meta_train"]
