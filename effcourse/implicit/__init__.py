"""Chapter 1 (Gautam 2024, ch. 2): implicit models and their sequential blockwise training.

* :mod:`.model`: the implicit model (2.2)-(2.3), fixed points and well-posedness (Theorem 1), implicit
  differentiation, the projection onto ``||A||_inf <= kappa`` and end-to-end training (2.4);
* :mod:`.blockwise`: strictly block-triangular models (2.5), sequential training (Algorithms 1-2) and the counts
  of Remark 5;
* :mod:`.selfloops`: blocks with self-loops and their reduction to strict blocks (Theorems 2-3, (2.14));
* :mod:`.experiments`: the chapter's sweeps (1-D interpolation, digits), their tables and figures;
* :mod:`.config`: the three scales.
"""

from .blockwise import BlockTriangularModel, SequentialResult, partition, train_sequential
from .experiments import digits_sweep, interpolation_sweep, theorem_errors
from .model import (
    E2EHistory,
    FixedPointError,
    IllPosedError,
    ImplicitModel,
    append_ones,
    fixed_point,
    implicit_fixed_point,
    inf_norm,
    pf_eigenvalue,
    project_inf_ball,
    train_projected,
)

__all__ = [
    "BlockTriangularModel",
    "E2EHistory",
    "FixedPointError",
    "IllPosedError",
    "ImplicitModel",
    "SequentialResult",
    "append_ones",
    "digits_sweep",
    "fixed_point",
    "implicit_fixed_point",
    "inf_norm",
    "interpolation_sweep",
    "partition",
    "pf_eigenvalue",
    "project_inf_ball",
    "theorem_errors",
    "train_projected",
    "train_sequential",
]
