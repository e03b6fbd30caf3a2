"""What every chapter shares: the run harness, configurations, data, the one training loop, models, plots, tables."""

from .config import CHAPTER_PACKAGES, SCALES, Config, Deviation, config, deviations, package_name
from .data import Split, dataset
from .harness import ClaimFailed, Run, resolve_device, resolve_scale, seed_everything
from .train import History, evaluate, fit

__all__ = ["CHAPTER_PACKAGES", "SCALES", "ClaimFailed", "Config", "Deviation", "History", "Run", "Split", "config",
           "dataset", "deviations",
           "evaluate", "fit", "package_name", "resolve_device", "resolve_scale", "seed_everything"]
