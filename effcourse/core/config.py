"""One place that maps a chapter to its subpackage, and (chapter, scale) to a configuration.

Each chapter's method lives in one subpackage (:data:`CHAPTER_PACKAGES`); its configuration is that subpackage's
``config.py`` (``08-avagrad`` -> ``effcourse/avagrad/config.py``), three dicts ``SMOKE``, ``BOOK`` and ``FULL``
with the same keys.  A notebook reads ``cfg = config("08-avagrad", SCALE)`` (or ``Run(...).cfg``), then
``cfg.epochs`` etc.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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


CHAPTER_PACKAGES: dict[str, str] = {
    "01-implicit-models": "implicit",
    "02-mezo-svrg": "mezo",
    "03-dco": "dco",
    "04-scq": "scq",
    "05-soft-sharing": "soft_sharing",
    "06-continuous-sparsification": "sparsification",
    "07-smol": "smol",
    "08-avagrad": "avagrad",
}


FILE_DATASETS = ("mnist", "fashion-mnist", "cifar10")  # read from $EFFCOURSE_DATA, never downloaded


def package_name(chapter: str) -> str:
    """The subpackage of ``chapter``, given as its id (``"08-avagrad"``) or its name (``"avagrad"``)."""
    if not isinstance(chapter, str) or not re.fullmatch(r"(\d\d-)?[a-z][a-z0-9-]*", chapter):
        raise ValueError(f"chapter must look like '08-avagrad' or 'avagrad'; got {chapter!r}")
    for cid, pkg in CHAPTER_PACKAGES.items():
        if chapter in (cid, cid[3:]):
            return pkg
    raise ValueError(f"no chapter {chapter!r}; chapters: {list(CHAPTER_PACKAGES)}")


def config(chapter: str, scale: str) -> Config:
    """The configuration of ``chapter`` at ``scale`` (one of ``smoke``, ``book``, ``full``)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    pkg = package_name(chapter)
    mod = importlib.import_module(f"effcourse.{pkg}.config")
    return Config(pkg, scale, getattr(mod, scale.upper()))


@dataclass(frozen=True)
class Deviation:
    """One way a chapter departs from its thesis: the topic, what the thesis does, what the chapter does, and why.

    Each subpackage's ``config.py`` lists its chapter's in ``DEVIATIONS``: the one source that the chapter shows
    (``run.deviations_table()``) and that the reproduction report lists.
    """

    topic: str
    thesis: str
    here: str
    why: str

    def __post_init__(self) -> None:
        for name in ("topic", "thesis", "here", "why"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"Deviation.{name} must be a non-empty string; got {v!r}")


def deviations(chapter: str) -> tuple[Deviation, ...]:
    """The chapter's departures from its thesis (``DEVIATIONS`` in its subpackage's ``config.py``)."""
    mod = importlib.import_module(f"effcourse.{package_name(chapter)}.config")
    devs = tuple(getattr(mod, "DEVIATIONS", ()))
    bad = [d for d in devs if not isinstance(d, Deviation)]
    if bad:
        raise TypeError(f"effcourse.{package_name(chapter)}.config.DEVIATIONS must hold Deviation objects; "
                        f"got {bad[0]!r}")
    return devs
