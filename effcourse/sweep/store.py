"""A sweep's folder: ``<out>/<chapter>/manifest.json`` and one folder per run, ``<out>/<chapter>/<run-id>/``.

A run's folder holds ``spec.json``; then ``running.json`` (host, pid, start) while it runs, its checkpoints, and in
the end ``result.json`` (done) or ``error.json`` (failed, with the traceback).  The manifest records the chapter,
base seed, dry-run flag and the hash of the configuration: a folder never mixes the results of two configurations.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import RunSpec, SweepConfigError, chapter_id

__all__ = ["STATES", "Results", "Store", "SweepResultsMissing"]

STATES = ("done", "running", "failed", "interrupted", "pending")


class SweepResultsMissing(FileNotFoundError):
    """A notebook at ``full`` scale asked for results that the sweep has not produced (yet)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))  # key order kept: a result's dicts read back as the run wrote them
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Store:
    """The results folder of one chapter's sweep: ``<out>/<chapter id>``."""

    out: Path
    chapter: str

    def __post_init__(self) -> None:
        self.chapter = chapter_id(self.chapter)
        self.out = Path(self.out).resolve()

    @property
    def root(self) -> Path:
        return self.out / self.chapter

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text())

    def open(self, config_hash: str, seed: int, dry_run: bool, cfg: Mapping[str, Any],
             specs: Sequence[RunSpec], numerics: Mapping[str, Any] | None = None) -> None:
        """Create the folder for this configuration, or check that it already holds this configuration's results.

        ``numerics`` (the training steps' precision and memory format) is recorded; a folder whose runs were made
        with other numerics is refused, since bf16 and fp32 results are not one sweep.
        """
        m = self.manifest()
        numerics = dict(numerics or {})
        if m is not None and m.get("numerics", {}) != numerics:
            raise SweepConfigError(f"{self.root} holds runs made with numerics {m.get('numerics', {})}; this sweep "
                                   f"asks for {numerics}. Pass another --out, or the same --precision/--channels-last")
        if m is not None and m["config_hash"] != config_hash:
            raise SweepConfigError(
                f"{self.root} holds results of another configuration (config hash {m['config_hash']}: base seed "
                f"{m['seed']}, dry_run={m['dry_run']}); this sweep's is {config_hash} (base seed {seed}, "
                f"dry_run={dry_run}). Results of two configurations are never mixed: pass another --out, or remove "
                f"{self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        from .. import __version__

        known = {s["run_id"] for s in (m or {}).get("runs", [])}
        runs = list((m or {}).get("runs", [])) + [s.as_dict() for s in specs if s.run_id not in known]
        _write_json(self.manifest_path, {"chapter": self.chapter, "config_hash": config_hash, "seed": seed,
                                         "dry_run": bool(dry_run), "cfg": dict(cfg), "numerics": numerics,
                                         "runs": runs,
                                         "created": (m or {}).get("created", _now()), "effcourse": __version__})

    def run_dir(self, spec: RunSpec) -> Path:
        return self.root / spec.run_id

    def state(self, spec: RunSpec) -> tuple[str, dict[str, Any]]:
        """``(state, details)`` of a run: one of :data:`STATES`."""
        d = self.run_dir(spec)
        if (d / "result.json").exists():
            return "done", {}
        if (d / "running.json").exists():
            info = json.loads((d / "running.json").read_text())
            if info.get("host") != socket.gethostname() or _alive(int(info.get("pid", -1))):
                return "running", info
            return "interrupted", info
        if (d / "error.json").exists():
            return "failed", json.loads((d / "error.json").read_text())
        if any(d.glob("checkpoint-*.pt")):
            return "interrupted", {}
        return "pending", {}

    def states(self, specs: Sequence[RunSpec]) -> dict[str, list[RunSpec]]:
        out: dict[str, list[RunSpec]] = {s: [] for s in STATES}
        for spec in specs:
            out[self.state(spec)[0]].append(spec)
        return out

    def mark_running(self, spec: RunSpec, device: str) -> None:
        d = self.run_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        _write_json(d / "spec.json", spec.as_dict())
        (d / "error.json").unlink(missing_ok=True)
        _write_json(d / "running.json", {"host": socket.gethostname(), "pid": os.getpid(), "device": device,
                                         "started": _now()})

    def finish(self, spec: RunSpec, result: Mapping[str, Any], info: Mapping[str, Any], keep_checkpoints: bool) -> None:
        d = self.run_dir(spec)
        _write_json(d / "result.json", {"spec": spec.as_dict(), "result": dict(result), **info, "finished": _now()})
        (d / "running.json").unlink(missing_ok=True)
        if not keep_checkpoints:
            for p in d.glob("checkpoint-*.pt"):
                p.unlink()

    def fail(self, spec: RunSpec, error: str, trace: str) -> None:
        d = self.run_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        _write_json(d / "error.json", {"spec": spec.as_dict(), "error": error, "traceback": trace,
                                       "host": socket.gethostname(), "finished": _now()})
        (d / "running.json").unlink(missing_ok=True)

    def result(self, spec: RunSpec) -> dict[str, Any]:
        return json.loads((self.run_dir(spec) / "result.json").read_text())


class Results(Mapping[str, Mapping[str, Any]]):
    """The finished runs of a sweep: ``results[run_id]`` is a run's result; :meth:`where` selects by experiment and
    parameters.  Built by :func:`effcourse.sweep.load_results`, which checks that every planned run is there."""

    def __init__(self, store: Store, specs: Sequence[RunSpec]):
        self.store = store
        self.specs = list(specs)
        self._by_id = {s.run_id: s for s in self.specs}
        self._cache: dict[str, dict[str, Any]] = {}

    def __getitem__(self, run_id: str) -> Mapping[str, Any]:
        if run_id not in self._cache:
            self._cache[run_id] = self.store.result(self._by_id[run_id])["result"]
        return self._cache[run_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def run_dir(self, run_id: str) -> Path:
        """The folder of run ``run_id``, for what a run keeps beside its ``result.json`` (e.g. ``model.pt``)."""
        if run_id not in self._by_id:
            raise KeyError(f"no run {run_id!r} in this sweep")
        return self.store.run_dir(self._by_id[run_id])

    def where(self, experiment: str, **params: Any) -> list[tuple[RunSpec, Mapping[str, Any]]]:
        """``(spec, result)`` of the runs of ``experiment`` whose parameters include ``params``, in plan order."""
        if not any(s.experiment == experiment for s in self.specs):
            raise KeyError(f"no experiment {experiment!r}; experiments: {sorted({s.experiment for s in self.specs})}")
        return [(s, self[s.run_id]) for s in self.specs
                if s.experiment == experiment and all(s.params.get(k) == v for k, v in params.items())]

    def one(self, experiment: str, **params: Any) -> Mapping[str, Any]:
        """The result of the single run of ``experiment`` with ``params`` (an error if there are none or several)."""
        got = self.where(experiment, **params)
        if len(got) != 1:
            raise KeyError(f"{len(got)} runs of {experiment!r} match {params}; expected one")
        return got[0][1]
