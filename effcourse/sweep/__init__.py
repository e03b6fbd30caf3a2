"""A chapter's ``full`` scale as a resumable sweep of independent runs (``python -m effcourse.sweep``).

Each chapter declares its thesis-scale experiments in ``effcourse/<subpackage>/sweep.py`` (see :mod:`.spec`);
``sweep run`` executes the runs not yet finished on every local GPU or a Ray cluster, each checkpointing so that a
killed run resumes where it stopped, and the chapter's notebook at ``full`` reads the results
(:func:`load_results`, through ``Run.sweep_results()``) instead of training inline.
"""

from .context import RunContext
from .runner import DRY_RUN_ENV, H100_FLOPS, RESULTS_ENV, Sweep, load_results
from .spec import RunSpec, SweepConfigError, experiment_seeds, training_flops
from .store import Results, Store, SweepResultsMissing

__all__ = ["DRY_RUN_ENV", "H100_FLOPS", "RESULTS_ENV", "Results", "RunContext", "RunSpec", "Store", "Sweep",
           "SweepConfigError", "SweepResultsMissing", "experiment_seeds", "load_results", "training_flops"]
