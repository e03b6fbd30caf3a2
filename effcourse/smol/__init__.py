"""Chapter 7 (Savarese 2025, ch. 5): SMOL, learned mixed-precision quantization."""

from .smol import SMOL, ActivationSMOL, smol_pipeline

__all__ = ["SMOL", "ActivationSMOL", "smol_pipeline"]
