"""effcourse: efficient deep learning, built from the equations of two theses (Gautam 2024, Savarese 2025).

The library computes; the chapters in ``chapters/`` explain and show.  One subpackage per chapter's method
(``implicit``, ``mezo``, ``dco``, ``scq``, ``soft_sharing``, ``sparsification``, ``smol``, ``avagrad``), what they
share in ``core``, the book tooling in ``book``.  Start a chapter with
``run = effcourse.Run("08-avagrad", scale=SCALE, seed=SEED, device=DEVICE)``.
"""

from .core import SCALES, ClaimFailed, Config, Run, config, resolve_device, resolve_scale, seed_everything

__version__ = "0.1.0"

__all__ = [
    "SCALES",
    "ClaimFailed",
    "Config",
    "Run",
    "config",
    "resolve_device",
    "resolve_scale",
    "seed_everything",
]
