"""effcourse: efficient deep learning, built from the equations of two theses (Gautam 2024, Savarese 2025).

The library computes; the chapters in ``chapters/`` explain and show.  Start a chapter with
``run = effcourse.Run("08-avagrad", scale=SCALE, seed=SEED, device=DEVICE)``.
"""

from .configs import Config, config
from .harness import SCALES, ClaimFailed, Run, resolve_device, resolve_scale, seed_everything

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
