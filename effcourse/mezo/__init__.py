"""Chapter 2 (Gautam 2024, ch. 3): zeroth-order fine-tuning with MeZO and MeZO-SVRG."""

from .optim import ZOSVRG, MeZO, MeZOSVRG, Trajectory, rebuild

__all__ = ["ZOSVRG", "MeZO", "MeZOSVRG", "Trajectory", "rebuild"]
