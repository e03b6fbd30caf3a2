"""Chapter 8 (Savarese 2025, ch. 6): AvaGrad, Adam's epsilon, and the optimizers they are compared with.

Modules, in the chapter's order: ``limit`` (the eps -> infinity limit, eq. 6.8), ``counterexample`` (Theorem 6.1),
``optim`` (AvaGrad, AvaGradW, Delayed Adam: Algs. 6-7), ``properties`` (Alg. 7 checked exactly), ``tuning``
((alpha, eps) grids and the Table 6.1 protocol), ``pitfall`` (where separability breaks), ``zoo`` (the compared
optimizers), ``models`` (the network of each scale), ``figures``.
"""

from .models import MODELS, model_factory
from .optim import AvaGrad, AvaGradW, DelayedAdam, EMAMomentumSGD
from .zoo import OPTIMIZERS, THESIS_CIFAR10_ERR, make_optimizer, optimizer_factory

__all__ = ["MODELS", "OPTIMIZERS", "THESIS_CIFAR10_ERR", "AvaGrad", "AvaGradW", "DelayedAdam", "EMAMomentumSGD",
           "make_optimizer", "model_factory", "optimizer_factory"]
