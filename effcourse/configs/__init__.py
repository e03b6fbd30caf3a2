"""One place that maps (chapter, scale) to a configuration.

Each chapter has a module here named after its folder without the number (``08-avagrad`` ->
``effcourse/configs/avagrad.py``) that defines three dicts, ``SMOKE``, ``BOOK`` and ``FULL``, with the same keys.
A notebook reads ``cfg = config("08-avagrad", SCALE)`` (or ``Run(...).cfg``) and then ``cfg.epochs`` etc.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

SCALES = ("smoke", "book", "full")


class Config(Mapping[str, Any]):
    """A read-only mapping with attribute access; an unknown key is an error, not ``None``."""

    def __init__(self, name: str, scale: str, values: Mapping[str, Any]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"config {self._name!r} at scale {self._scale!r} has no key {key!r}; "
                                 f"keys: {sorted(self._values)}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("a Config is read-only; use cfg.replace(key=value) for a modified copy")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def replace(self, **changes: Any) -> Config:
        unknown = set(changes) - set(self._values)
        if unknown:
            raise KeyError(f"unknown config keys {sorted(unknown)}; keys: {sorted(self._values)}")
        return Config(self._name, self._scale, {**self._values, **changes})

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Config[{self._name}/{self._scale}]({body})"


def module_name(chapter: str) -> str:
    """``"08-avagrad"`` or ``"avagrad"`` -> ``"avagrad"``; ``"06-continuous-sparsification"`` ->
    ``"continuous_sparsification"``."""
    if not isinstance(chapter, str) or not re.fullmatch(r"(\d\d-)?[a-z][a-z0-9-]*", chapter):
        raise ValueError(f"chapter must look like '08-avagrad' or 'avagrad'; got {chapter!r}")
    return re.sub(r"^\d\d-", "", chapter).replace("-", "_")


def config(chapter: str, scale: str) -> Config:
    """The configuration of ``chapter`` at ``scale`` (one of ``smoke``, ``book``, ``full``)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    name = module_name(chapter)
    try:
        mod = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise ValueError(f"no configuration for chapter {chapter!r} (expected effcourse/configs/{name}.py)") from None
    return Config(name, scale, getattr(mod, scale.upper()))
