"""Chapter 8 (Savarese 2025, ch. 6): AvaGrad, Adam's epsilon, and the optimizers they are compared with."""

from .optim import AvaGrad, AvaGradW, DelayedAdam, EMAMomentumSGD
from .zoo import OPTIMIZERS, make_optimizer

__all__ = ["OPTIMIZERS", "AvaGrad", "AvaGradW", "DelayedAdam", "EMAMomentumSGD", "make_optimizer"]
