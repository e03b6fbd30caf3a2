"""The reproduction report: every chapter's claims, as recorded by the build that made the site, on one page.

Each chapter's :class:`~effcourse.core.harness.Run` writes its claims, metrics and environment to a JSON record
(``EFFCOURSE_METRICS``).  :func:`render` turns the records of one build into MyST Markdown: a summary table (claims
held per chapter, scale, date, device) and, per chapter, every claim with the thesis's number and this build's.
:func:`fill` puts that text into ``book/report.md`` between :data:`BEGIN` and :data:`END`; ``make book`` does this on
the staged copy of the book, so the committed page never holds numbers of its own.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__

__all__ = ["BEGIN", "END", "ChapterEntry", "fill", "load", "md_cell", "render"]

BEGIN = "<!-- effcourse:report -->"
END = "<!-- /effcourse:report -->"
_REQUIRED = ("chapter", "scale", "seed", "claims", "env")


def md_cell(text: Any) -> str:
    """``text`` made safe for one cell of a Markdown table (HTML-escaped, pipes and dollars escaped)."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("$", "\\$").replace("\n", " ")


@dataclass(frozen=True)
class ChapterEntry:
    """One written chapter of the book: its id (``08-avagrad``), page (``chapters/08-avagrad/avagrad``),
    title, the part of the book it sits in, and its record (``None`` when it has none)."""

    id: str
    page: str
    title: str
    part: str
    record: Mapping[str, Any] | None


def load(path: str | Path) -> dict[str, Any]:
    """Read one record and check it has the fields a report needs."""
    path = Path(path)
    rec = json.loads(path.read_text())
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise ValueError(f"{path} is not an effcourse metrics record: missing {missing}")
    return rec


def _held_cell(claim: Mapping[str, Any], scale: str) -> str:
    mark = "yes" if claim["held"] else "**no**"
    if claim.get("asserted", True):
        return mark
    return f"{mark} (reported, not asserted)" if claim.get("reported") else f"{mark} (not asserted at {scale})"


def _rate_row(rates: Mapping[str, Any] | None, chapter: str, name: str) -> Mapping[str, Any] | None:
    return ((rates or {}).get("chapters", {}).get(chapter, {}).get("claims", {})).get(name)


def _rate_cell(rates: Mapping[str, Any] | None, chapter: str, name: str) -> str:
    row = _rate_row(rates, chapter, name)
    return "-" if row is None else f"{row['held_count']}/{len(rates['seeds'])}"


def _stats_cell(rates: Mapping[str, Any] | None, chapter: str, name: str) -> str:
    from .seeds import format_stats

    row = _rate_row(rates, chapter, name)
    return "-" if row is None else md_cell(format_stats(row.get("value_stats")))


def _seconds(rec: Mapping[str, Any]) -> str:
    s = rec.get("execution", {}).get("seconds", rec["env"].get("seconds"))
    return "-" if s is None else f"{s:.0f} s"


def _memory(rec: Mapping[str, Any]) -> str:
    env = rec["env"]
    parts = [f"{env['peak_rss_mb']:.0f} MiB"] if env.get("peak_rss_mb") is not None else []
    if env.get("cuda_peak_mb") is not None:
        parts.append(f"GPU {env['cuda_peak_mb']:.0f} MiB")
    return ", ".join(parts) or "-"


def _commits(recs: Sequence[Mapping[str, Any]]) -> str:
    found = sorted({(r.get("execution", {}).get("commit"), r.get("execution", {}).get("dirty")) for r in recs
                    if r.get("execution", {}).get("commit")})
    if not found:
        return "an unrecorded commit"
    return ", ".join(f"commit `{c[:10]}`" + (" with uncommitted changes" if dirty else "") for c, dirty in found)


def _when(rec: Mapping[str, Any]) -> str:
    return str(rec["env"].get("date", "?")).replace("T", " ")[:16]


def _device(rec: Mapping[str, Any]) -> str:
    env = rec["env"]
    return f"{env.get('device', '?')} ({env.get('device_name', '?')}, {env.get('threads', '?')} threads)"


def render(entries: Sequence[ChapterEntry], page_dir: str = "book", rates: Mapping[str, Any] | None = None) -> str:
    """MyST Markdown for the report: a summary over ``entries``, then per chapter its empirical claims and its
    checks of the mathematics, in two tables.

    ``rates`` is a hold-rate table (:func:`effcourse.book.seeds.hold_rates`, ``book/hold-rates.json``): each claim
    then shows how many of that sweep's base seeds it held at.  Links are written relative to ``page_dir``, the
    folder of the report page inside the book.
    """
    if not entries:
        raise ValueError("entries must name at least one chapter")
    up = "../" * len(Path(page_dir).parts)
    recs = [e.record for e in entries if e.record is not None]
    claims = [c for r in recs for c in r["claims"]]
    asserted = [c for c in claims if c.get("asserted", True)]
    scales = sorted({r["scale"] for r in recs})
    envs = sorted({(r["env"].get("torch", "?"), r["env"].get("python", "?")) for r in recs})
    out = []
    if recs:
        dates = sorted(_when(r) for r in recs)
        out += [
            f"**This build**: {len(recs)} of {len(entries)} chapters executed at scale "
            f"{', '.join(f'`{s}`' for s in scales)}; **{sum(c['held'] for c in claims)} of {len(claims)} claims "
            f"held**, {sum(c['held'] for c in asserted)} of {len(asserted)} asserted. Executed {dates[0]} to "
            f"{dates[-1]} (UTC) with "
            + "; ".join(f"torch {t}, Python {p}" for t, p in envs) + f", effcourse {__version__}, from "
            + _commits(recs) + ".",
            "",
        ]
    else:
        out += ["**This build recorded no metrics.**", ""]
    if rates:
        out += [f"The *hold rate* column is from the latest seed sweep (`make seeds`, scale `{rates['scale']}`): "
                f"of base seeds {', '.join(map(str, rates['seeds']))}, at how many each claim held. An empirical "
                f"claim is asserted only if it holds at {rates.get('assert_rate', 0.9):.0%} of fresh seeds.", ""]
    else:
        out += ["No seed sweep is published with this build (`make seeds`), so no hold rates are shown.", ""]
    out += ["| chapter | part | scale | held | asserted, held | executed (UTC) | device | threads | time "
            "| peak memory |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        link = f"[{md_cell(e.title)}]({up}{e.page}.ipynb)"
        part = md_cell(e.part.split(":")[0])  # "Gautam (2024): efficient training" -> "Gautam (2024)"
        if e.record is None:
            out.append(f"| {link} | {part} | - | **not executed** | - | - | - | - | - | - |")
            continue
        cs = e.record["claims"]
        asr = [c for c in cs if c.get("asserted", True)]
        env = e.record["env"]
        out.append(f"| {link} | {part} | `{e.record['scale']}` | {sum(c['held'] for c in cs)}/{len(cs)} "
                   f"| {sum(c['held'] for c in asr)}/{len(asr)} | {_when(e.record)} "
                   f"| {md_cell(env.get('device', '?'))} | {env.get('threads', '-')} | {_seconds(e.record)} "
                   f"| {_memory(e.record)} |")
    for e in entries:
        out += ["", f"## {md_cell(e.title)}", ""]
        if e.record is None:
            out.append(f"No record: [the chapter]({up}{e.page}.ipynb) was not executed in this build.")
            continue
        r = e.record
        out += [f"[The chapter]({up}{e.page}.ipynb) ran at scale `{r['scale']}`, seed {r['seed']}, on "
                f"{md_cell(_device(r))}, torch {md_cell(r['env'].get('torch', '?'))}, {_when(r)} UTC.", ""]
        if not r["claims"]:
            out.append("It recorded no claims.")
            continue
        for kind, title in (("empirical", "Empirical claims"), ("math", "Checks of the mathematics")):
            rows = [c for c in r["claims"] if c.get("kind", "empirical") == kind]
            if not rows:
                continue
            out += [f"**{title}** ({len(rows)})", "",
                    "| claim | thesis | this build | scale | held | hold rate | value over seeds |",
                    "|---|---|---|---|---|---|---|"]
            for c in rows:
                out.append(f"| {md_cell(c['name'])} | {md_cell(c['thesis'])} | {md_cell(c['ours'])} | `{r['scale']}` "
                           f"| {_held_cell(c, r['scale'])} | {_rate_cell(rates, e.id, c['name'])} "
                           f"| {_stats_cell(rates, e.id, c['name'])} |")
            out.append("")
        devs = r.get("deviations") or []
        out += [f"**Deviations from the thesis** ({len(devs)})", ""]
        out += [f"- **{md_cell(d['topic'])}**: the thesis: {md_cell(d['thesis'])}; here: {md_cell(d['here'])} "
                f"({md_cell(d['why'])})" for d in devs] or ["None recorded."]
        out.append("")
    return "\n".join(out) + "\n"


def fill(template: str, body: str) -> str:
    """``template`` with the text between :data:`BEGIN` and :data:`END` replaced by ``body``."""
    start, stop = template.find(BEGIN), template.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"template must contain {BEGIN!r} followed by {END!r}")
    return template[: start + len(BEGIN)] + "\n\n" + body + "\n" + template[stop:]
