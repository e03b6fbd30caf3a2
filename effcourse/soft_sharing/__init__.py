"""Chapter 5 (Savarese 2025, ch. 3): soft parameter sharing through template banks.

* :mod:`.templates`: template banks and the layers that mix them (eq. 3.11);
* :mod:`.similarity`: the layer similarity matrix (eq. 3.13) and the recurrence regularizer (eq. 3.19);
* :mod:`.folding`: Proposition 3.1, the thesis's least-squares rounding, our scaled rounding, folding a model;
* :mod:`.swrn`: SWRN-L-w-k (Sec. 3.3.2); :mod:`.residual_cnn`: the digits-sized model and its folded program;
* :mod:`.shortest_path`: the synthetic task of Sec. 3.4.3; :mod:`.training`: the thesis's recipes through ``fit``;
* :mod:`.augment`: cutout (Table 3.3); :mod:`.experiments` and :mod:`.figures`: the chapter's drivers and plots;
* :mod:`.sweep`: the ``full`` scale as a resumable sweep (``python -m effcourse.sweep run 05-soft-sharing``).
"""

from .augment import CropFlipCutout, cutout
from .folding import (
    fold_bank,
    fold_network,
    group_layers,
    least_squares_rounding,
    program_order,
    recalibrate_batchnorm,
    reparameterize,
    scaled_rounding,
)
from .residual_cnn import FoldedResidualCNN, SharedResidualCNN, fold_program
from .shortest_path import PathCNN, curriculum, f1_score, f1_thesis, sample_paths
from .similarity import layer_similarity, mean_offdiagonal, recurrence_regularizer, weight_similarity
from .swrn import SWRN, swrn_parameter_count
from .templates import SConv2d, SLinear, TemplateBank, sharing_groups, stack_coefficients
from .training import train_classifier, train_curriculum

__all__ = [
    "SWRN",
    "CropFlipCutout",
    "FoldedResidualCNN",
    "PathCNN",
    "SConv2d",
    "SLinear",
    "SharedResidualCNN",
    "TemplateBank",
    "curriculum",
    "cutout",
    "f1_score",
    "f1_thesis",
    "fold_bank",
    "fold_network",
    "fold_program",
    "group_layers",
    "layer_similarity",
    "least_squares_rounding",
    "mean_offdiagonal",
    "program_order",
    "recalibrate_batchnorm",
    "recurrence_regularizer",
    "reparameterize",
    "sample_paths",
    "scaled_rounding",
    "sharing_groups",
    "stack_coefficients",
    "swrn_parameter_count",
    "train_classifier",
    "train_curriculum",
    "weight_similarity",
]
