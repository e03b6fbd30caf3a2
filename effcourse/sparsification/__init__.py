"""Chapter 6 (Savarese 2025, ch. 4): continuous sparsification (CS) and its pruning baselines.

``cs``: the relaxation, the temperature schedule, the round reset and Algs 1-2; ``masks``: which weights are
masked, snapshots, sparsity accounting, one round of training and tickets; ``baselines``: MP, GMP, IMP / IMP-C and
stochastic sparsification; ``l0``: the exact problem by enumeration; ``models``: the networks; ``experiments``:
the chapter's comparisons, figures and tables.
"""

from .baselines import (
    BernoulliMask,
    gradual_magnitude_pruning,
    iterative_magnitude_pruning,
    one_shot_magnitude_pruning,
    stochastic_sparsification,
)
from .cs import ContinuousSparsifier, SoftMask, continuous_sparsification, cs_ticket_search
from .masks import Ticket, TrainSpec, prunable_layers, sparsity_report, train_masked
from .models import make_model, masked_layers

__all__ = [
    "BernoulliMask",
    "ContinuousSparsifier",
    "SoftMask",
    "Ticket",
    "TrainSpec",
    "continuous_sparsification",
    "cs_ticket_search",
    "gradual_magnitude_pruning",
    "iterative_magnitude_pruning",
    "make_model",
    "masked_layers",
    "one_shot_magnitude_pruning",
    "prunable_layers",
    "sparsity_report",
    "stochastic_sparsification",
    "train_masked",
]
