"""How a run computes: deterministic kernels for the book's runs, the accelerator's fast paths at ``full``.

* :func:`set_deterministic` -- on (``smoke`` and ``book``, and every run on a CPU): deterministic algorithms, no
  cuDNN autotuning, IEEE fp32 matmuls and convolutions (no TF32), and ``CUBLAS_WORKSPACE_CONFIG`` set so that
  cuBLAS can be deterministic; a rerun repeats bit for bit.  Off (the default at ``full``): cuDNN picks the
  fastest kernels and fp32 matmuls/convolutions use TF32 on GPUs that have it.
* :func:`training_numerics` -- the precision and memory format of :func:`effcourse.core.train.fit`'s steps for
  the code inside it: ``precision="bf16"`` runs each forward pass and loss under ``torch.autocast`` in bfloat16
  (weights, gradients and optimizer state stay fp32), ``channels_last=True`` stores the model's and the batches'
  4-d tensors channels-last (what tensor cores prefer for convolutions).  ``python -m effcourse.sweep run
  --precision bf16 --channels-last`` turns both on for a sweep; they change results in the last digits, so a
  sweep records them in its configuration.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = ["DETERMINISTIC_ENV", "PRECISIONS", "Numerics", "current_numerics", "resolve_deterministic",
           "set_deterministic", "training_numerics"]

DETERMINISTIC_ENV = "EFFCOURSE_DETERMINISTIC"
CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs to be deterministic (CUDA's reproducibility notes)
PRECISIONS = ("fp32", "bf16")
_TRUE, _FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def resolve_deterministic(value: bool | str | None, scale: str) -> bool:
    """``value`` (a bool, or a string such as ``"1"``/``"off"``), else ``$EFFCOURSE_DETERMINISTIC``, else on below
    ``full`` and off at ``full``."""
    if value is None:
        value = os.environ.get(DETERMINISTIC_ENV) or None
    if value is None:
        return scale != "full"
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"deterministic (or ${DETERMINISTIC_ENV}) must be a bool or one of {_TRUE + _FALSE}; "
                     f"got {value!r}")


def set_deterministic(on: bool) -> None:
    """Deterministic kernels and IEEE fp32 (``on``), or cuDNN autotuning and TF32 (off); see the module's notes.

    ``CUBLAS_WORKSPACE_CONFIG`` is read when cuBLAS starts: call this before the first CUDA matmul.
    """
    if not isinstance(on, bool):
        raise TypeError(f"on must be a bool; got {on!r}")
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    # warn_only: a few CUDA kernels have no deterministic variant; the CPU path is deterministic throughout
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.benchmark = not on
    torch.backends.cudnn.deterministic = on
    fp32 = "ieee" if on else "tf32"
    torch.backends.cuda.matmul.fp32_precision = fp32
    torch.backends.cudnn.conv.fp32_precision = fp32


@dataclass(frozen=True)
class Numerics:
    """The precision and memory format of :func:`effcourse.core.train.fit`'s training steps."""

    precision: str = "fp32"
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}; got {self.precision!r}")
        if not isinstance(self.channels_last, bool):
            raise TypeError(f"channels_last must be a bool; got {self.channels_last!r}")

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """``torch.autocast`` in bfloat16 on ``device`` for ``bf16``; nothing for ``fp32``."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def record(self) -> dict[str, object]:
        """What a sweep's manifest records: ``{}`` for the default (fp32, contiguous), else both fields."""
        return {} if self == Numerics() else {"precision": self.precision, "channels_last": self.channels_last}

    def flags(self) -> str:
        """The ``sweep run`` options that ask for these numerics (``""`` for the default)."""
        return (f" --precision {self.precision}" if self.precision != "fp32" else "") + (
            " --channels-last" if self.channels_last else "")

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` channels-last when asked for and 4-d; otherwise ``x`` itself."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x


_DEFAULT = Numerics()
_CURRENT: contextvars.ContextVar[Numerics | None] = contextvars.ContextVar("effcourse_numerics", default=None)


def current_numerics() -> Numerics:
    """What :func:`training_numerics` set here (default: fp32, contiguous)."""
    return _CURRENT.get() or _DEFAULT


@contextlib.contextmanager
def training_numerics(precision: str = "fp32", channels_last: bool = False) -> Iterator[Numerics]:
    """Within the block, :func:`effcourse.core.train.fit` trains in ``precision`` and, with ``channels_last``, in
    the channels-last memory format (a sweep's runs use it; a call to ``fit`` can still pass its own)."""
    token = _CURRENT.set(Numerics(precision, channels_last))
    try:
        yield current_numerics()
    finally:
        _CURRENT.reset(token)
