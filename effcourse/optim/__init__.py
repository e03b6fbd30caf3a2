"""Optimizers built in the book (each a ``torch.optim.Optimizer``) and the comparison's constructor."""

from .avagrad import AvaGrad, AvaGradW, DelayedAdam, EMAMomentumSGD
from .zoo import OPTIMIZERS, make_optimizer

__all__ = ["OPTIMIZERS", "AvaGrad", "AvaGradW", "DelayedAdam", "EMAMomentumSGD", "make_optimizer"]
