"""Chapter 1 (Gautam 2024, ch. 2): implicit models and their sequential blockwise training."""

from .blockwise import BlockTriangularModel, train_sequential
from .model import ImplicitModel, fixed_point, train_projected

__all__ = ["BlockTriangularModel", "ImplicitModel", "fixed_point", "train_projected", "train_sequential"]
