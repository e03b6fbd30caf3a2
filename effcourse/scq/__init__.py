"""Chapter 4 (Gautam 2024, ch. 5): soft convex quantization (SCQ) against vector quantization."""

from .autoencoder import VQAutoencoder
from .quantizers import SimVQ, SoftConvexQuantizer, VectorQuantizer, make_quantizer
from .simplex import project_simplex

__all__ = ["SimVQ", "SoftConvexQuantizer", "VQAutoencoder", "VectorQuantizer", "make_quantizer", "project_simplex"]
