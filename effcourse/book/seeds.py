"""Hold rates: every chapter executed at several base seeds, and a claim x seed table of which claims held.

A claim asserted at ``book`` scale promises to hold for a reader's seed, not only for ours.  :func:`sweep` executes
chapters at base seeds ``A..B`` in parallel processes (each with ``EFFCOURSE_CLAIMS=report``, so a failed claim is
recorded and the chapter goes on), :func:`hold_rates` gathers the records into one table, and :func:`to_markdown`
renders it.  ``python -m effcourse.book.notebooks seeds`` and ``make seeds`` drive it; the report page shows the
latest published table (``book/hold-rates.json``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["ASSERT_RATE", "collect", "failing", "format_stats", "hold_rates", "parse_seeds", "sweep", "to_markdown",
           "write"]

ASSERT_RATE = 0.9  # an empirical claim is asserted only if it holds at >= 9 of 10 fresh base seeds


def parse_seeds(text: str) -> list[int]:
    """``"100-109"`` -> [100, ..., 109]; ``"1,4,7"`` -> [1, 4, 7]; ``"5"`` -> [5]."""
    out: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"seeds must look like '100-109' or '1,4,7' (non-negative, ascending ranges); "
                             f"got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        out += range(lo, hi + 1)
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must not repeat; got {text!r}")
    return out


def _one(chapter: str, scale: str, seed: int, out: Path, threads: int, device: str) -> dict[str, Any]:
    folder = out / f"seed-{seed}"
    cmd = [sys.executable, "-m", "effcourse.book.notebooks", "execute", chapter, "--scale", scale, "--seed",
           str(seed), "--threads", str(threads), "--device", device, "--claims", "report", "--out", str(folder),
           "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    metrics = folder / chapter / "metrics.json"
    rec = json.loads(metrics.read_text()) if metrics.exists() else None
    return {"chapter": chapter, "seed": seed, "ok": proc.returncode == 0, "record": rec,
            "error": None if proc.returncode == 0 else _first_error(proc.stderr)}


def _first_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    return next((ln.removeprefix("error: ") for ln in lines if ln.startswith("error: ")), lines[-1] if lines else "?")


def sweep(chapters: Sequence[str], seeds: Sequence[int], scale: str, out: Path, jobs: int = 1,
          threads: int = 1, device: str = "auto", progress: bool = True) -> list[dict[str, Any]]:
    """Execute each chapter at each base seed (``jobs`` at a time, ``threads`` each); return one result per run."""
    for name, v in (("jobs", jobs), ("threads", threads)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    out = Path(out).resolve()  # the runs are subprocesses; a relative folder must not depend on their cwd
    tasks = [(c, s) for c in chapters for s in seeds]
    results: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_one, c, scale, s, Path(out), threads, device) for c, s in tasks]
        for i, f in enumerate(futures, 1):
            r = f.result()
            results.append(r)
            if progress:
                rec = r["record"] or {"claims": []}
                held = sum(c["held"] for c in rec["claims"])
                state = "ok" if r["ok"] else f"FAILED: {r['error']}"
                print(f"[seeds {i}/{len(tasks)}] {r['chapter']} seed {r['seed']}: {held}/{len(rec['claims'])} "
                      f"claims held, {state}", flush=True)
    return results


def collect(chapters: Sequence[str], seeds: Sequence[int], out: Path) -> list[dict[str, Any]]:
    """The results of runs already in ``out`` (as :func:`sweep` left them), executing nothing.

    A run whose metrics file is missing raises ``FileNotFoundError``; one that has metrics but never finished
    (no ``key.txt``: the chapter stopped) is a crashed run.
    """
    results = []
    for c in chapters:
        for s in seeds:
            folder = Path(out) / f"seed-{s}" / c
            metrics = folder / "metrics.json"
            if not metrics.exists():
                raise FileNotFoundError(f"no run of {c} at seed {s} in {out} (expected {metrics})")
            done = (folder / "key.txt").exists()
            results.append({"chapter": c, "seed": s, "ok": done, "record": json.loads(metrics.read_text()),
                            "error": None if done else f"the run stopped before its end (see {folder})"})
    return results


def _stats(values: Iterable[Any]) -> dict[str, float] | None:
    xs = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    xs = [x for x in xs if math.isfinite(x)]
    if len(xs) < 2:
        return None
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return {"mean": mean, "std": std, "n": len(xs)}


def hold_rates(results: Iterable[Mapping[str, Any]], scale: str) -> dict[str, Any]:
    """One table from sweep results: per chapter, per claim, the outcome at every seed and the hold rate.

    A claim a run never reached (the chapter crashed before it) counts as not held at that seed.
    """
    results = list(results)
    seeds = sorted({r["seed"] for r in results})
    chapters: dict[str, Any] = {}
    for r in sorted(results, key=lambda r: (r["chapter"], r["seed"])):
        ch = chapters.setdefault(r["chapter"], {"claims": {}, "runs": {}})
        rec = r["record"] or {}
        ch["runs"][str(r["seed"])] = {"ok": r["ok"], "error": r["error"],
                                      "experiment_seeds": rec.get("experiment_seeds"),
                                      "seconds": rec.get("execution", {}).get("seconds"),
                                      "peak_rss_mb": rec.get("env", {}).get("peak_rss_mb"),
                                      "commit": rec.get("execution", {}).get("commit")}
        for c in (r["record"] or {}).get("claims", []):
            row = ch["claims"].setdefault(c["name"], {"kind": c.get("kind", "empirical"),
                                                     "asserted": c["asserted"], "held": {}})
            row["held"][str(r["seed"])] = bool(c["held"])
            row.setdefault("values", {})[str(r["seed"])] = c.get("value")
            row["asserted"] = row["asserted"] or c["asserted"]
    for ch in chapters.values():
        for row in ch["claims"].values():
            n_held = sum(row["held"].get(str(s), False) for s in seeds)
            row["hold_rate"] = n_held / len(seeds) if seeds else 0.0
            row["held_count"] = n_held
            row["value_stats"] = _stats(row.get("values", {}).values())  # mean +- std of the claim's value
    return {"scale": scale, "seeds": seeds, "assert_rate": ASSERT_RATE, "chapters": chapters}


def failing(table: Mapping[str, Any]) -> list[str]:
    """Asserted claims whose hold rate is below :data:`ASSERT_RATE`, and runs that crashed."""
    out = []
    for cid, ch in table["chapters"].items():
        out += [f"{cid}: seed {s} crashed: {run['error']}" for s, run in ch["runs"].items()
                if not run["ok"] and run["error"] and "ClaimFailed" not in run["error"]]
        out += [f"{cid}: {name} held at {row['held_count']} of {len(table['seeds'])} seeds"
                for name, row in ch["claims"].items() if row["asserted"] and row["hold_rate"] < ASSERT_RATE]
    return out


def format_stats(stats: Mapping[str, float] | None) -> str:
    """``mean +- std (n)`` of a claim's recorded value over seeds, ``-`` when it has no numeric value."""
    if not stats:
        return "-"
    return f"{stats['mean']:.4g} ± {stats['std']:.2g} (n={stats['n']})"


def to_markdown(table: Mapping[str, Any]) -> str:
    """The claim x seed table as Markdown: one section per chapter, empirical claims first."""
    from .report import md_cell

    seeds = table["seeds"]
    out = [f"Scale `{table['scale']}`, base seeds {', '.join(map(str, seeds))}. "
           f"An asserted claim must hold at >= {ASSERT_RATE:.0%} of them.", ""]
    for cid, ch in table["chapters"].items():
        out += [f"### {cid}", "", "| claim | kind | asserted | " + " | ".join(map(str, seeds))
                + " | hold rate | value, mean +- std |", "|---|---|---|" + "---|" * len(seeds) + "---|---|"]
        rows = sorted(ch["claims"].items(), key=lambda kv: kv[1]["kind"] != "empirical")
        for name, row in rows:
            marks = " | ".join({True: "yes", False: "**no**"}.get(row["held"].get(str(s)), "-") for s in seeds)
            out.append(f"| {md_cell(name)} | {row['kind']} | {'yes' if row['asserted'] else 'reported'} | {marks} "
                       f"| {row['held_count']}/{len(seeds)} | {format_stats(row.get('value_stats'))} |")
        crashed = [f"seed {s}: {md_cell(r['error'])}" for s, r in ch["runs"].items() if not r["ok"]]
        if crashed:
            out += ["", "Runs that stopped: " + "; ".join(crashed)]
        out.append("")
    return "\n".join(out)


def write(table: Mapping[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``hold-rates.json`` and ``hold-rates.md`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    js, md = folder / "hold-rates.json", folder / "hold-rates.md"
    js.write_text(json.dumps(table, indent=1) + "\n")
    md.write_text(to_markdown(table))
    return js, md
