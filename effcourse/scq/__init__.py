"""Chapter 4 (Gautam 2024, ch. 5): soft convex quantization (SCQ) against vector quantization.

Modules: :mod:`.codebook` (initialization, nearest code (5.1), usage), :mod:`.simplex` (simplex projections,
Alg. 9 steps 4-5), :mod:`.solvers` (the convex program (5.8): Alg. 8, Alg. 9, projected gradient),
:mod:`.compiled` (Alg. 9 fused by ``torch.compile``: the ``full``-scale path on an accelerator),
:mod:`.quantizers` (VQ, SimVQ, SCQ layers and the loss (5.5)), :mod:`.autoencoder` (the VQ-VAE of Table 5.3,
its training loop and Table 5.1's metrics), :mod:`.experiments` and :mod:`.figures` (the chapter's drivers,
tables and plots), :mod:`.config` (the three scales).
"""

from .autoencoder import VQAutoencoder, evaluate_autoencoder, train_autoencoder
from .codebook import codes_used, init_codebook, nearest_code, perplexity
from .quantizers import SimVQ, SoftConvexQuantizer, VectorQuantizer, make_quantizer, vq_loss
from .simplex import project_simplex, project_simplex_alternating
from .solvers import scq_exact, scq_objective, scq_projected_gradient, scq_ridge, scq_scalable

__all__ = [
    "SimVQ",
    "SoftConvexQuantizer",
    "VQAutoencoder",
    "VectorQuantizer",
    "codes_used",
    "evaluate_autoencoder",
    "init_codebook",
    "make_quantizer",
    "nearest_code",
    "perplexity",
    "project_simplex",
    "project_simplex_alternating",
    "scq_exact",
    "scq_objective",
    "scq_projected_gradient",
    "scq_ridge",
    "scq_scalable",
    "train_autoencoder",
    "vq_loss",
]
