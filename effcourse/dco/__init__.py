"""Chapter 3 (Gautam 2024, ch. 4): meta-learned optimizers through differentiable convex optimization (DCO).

Modules: :mod:`~effcourse.dco.layers` (the DCO update rules (4.13)-(4.16) as convex programs, closed form or
cvxpylayers), :mod:`~effcourse.dco.tasks` (batched task families (4.17), (4.22)-(4.24)),
:mod:`~effcourse.dco.baselines` (tuned SGD, Adam, RMSProp), :mod:`~effcourse.dco.meta` (Algorithm 7 and the
evaluation of a learned rule), :mod:`~effcourse.dco.theory` (Theorem 6), :mod:`~effcourse.dco.experiments` (the
chapter's experiments), :mod:`~effcourse.dco.figures` (its figures) and :mod:`~effcourse.dco.sweep` (the
``full`` scale's comparisons as a resumable sweep, imported on its own).
"""

from .baselines import BASELINES, run_baseline, tune_baseline
from .layers import DCOGeneralDescent, DCOGradient, DCOMomentum, DCOOptimizer
from .meta import MetaResult, evaluate_optimizer, meta_train, unroll
from .tasks import (
    LeastSquaresTasks,
    MLPRegressionTasks,
    Tasks,
    beverton_holt_tasks,
    interpolation_tasks,
    least_squares_tasks,
    shifted_least_squares_tasks,
)

__all__ = [
    "BASELINES",
    "DCOGeneralDescent",
    "DCOGradient",
    "DCOMomentum",
    "DCOOptimizer",
    "LeastSquaresTasks",
    "MLPRegressionTasks",
    "MetaResult",
    "Tasks",
    "beverton_holt_tasks",
    "evaluate_optimizer",
    "interpolation_tasks",
    "least_squares_tasks",
    "meta_train",
    "run_baseline",
    "shifted_least_squares_tasks",
    "tune_baseline",
    "unroll",
]
