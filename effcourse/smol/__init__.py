"""Chapter 7 (Savarese 2025, ch. 5): SMOL, learned mixed-precision quantization.

Modules: :mod:`.fixed_point` (the quantizer, ZPA, bits and bit-operations), :mod:`.precision` (the ``s <-> p`` maps
and the bit penalty), :mod:`.parametrization` (:class:`SMOL` on a model's weights), :mod:`.activations` (SMOL-A),
:mod:`.training` (precision training and fine-tuning, Algorithm 5), :mod:`.baselines` (uniform ``k``-bit and a
sensitivity allocation), :mod:`.quadratic` (the closed-form toy problem), :mod:`.models` (the chapter's networks),
:mod:`.experiments` and :mod:`.figures` (the chapter's drivers and plots).
"""

from .activations import ActivationSMOL, add_activation_smol
from .baselines import sensitivity_allocation, uniform_pipeline
from .fixed_point import bits_per_parameter, bops, model_bits, quantize, zero_precision_allocation
from .models import count_quantized, make_cnn, make_model, quantized_names
from .parametrization import SMOL, SMOLWeight
from .precision import integer_precision, precision_penalty, precision_to_s, s_to_precision
from .quadratic import SeparableQuadratic, learn_quadratic_precisions, optimal_precision
from .training import finetune, precision_training, smol_pipeline

__all__ = [
    "SMOL",
    "ActivationSMOL",
    "SMOLWeight",
    "SeparableQuadratic",
    "add_activation_smol",
    "bits_per_parameter",
    "bops",
    "count_quantized",
    "finetune",
    "integer_precision",
    "learn_quadratic_precisions",
    "make_cnn",
    "make_model",
    "model_bits",
    "optimal_precision",
    "precision_penalty",
    "precision_to_s",
    "precision_training",
    "quantize",
    "quantized_names",
    "s_to_precision",
    "sensitivity_allocation",
    "smol_pipeline",
    "uniform_pipeline",
    "zero_precision_allocation",
]
