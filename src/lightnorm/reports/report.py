"""The comparison report: per-spec summaries of the flow rendered as HTML and Markdown, with
figures (PNG) and CSV exports of every table (docs/report.md).

:func:`build_report` composes the parts of this package: the summaries become entries
(:mod:`.model`), the entries a page of sections (:mod:`.contents`, with :mod:`.tables` and
:mod:`.figures`), the page files (:mod:`.render`).

Output layout (``out_dir``)::

    report.html   self-contained page (inline CSS), links figures/ and data/ relatively
    report.md     the same content in Markdown
    figures/*.png
    data/*.csv    raw values (units in the column names), empty cell = no value

or, with ``single_file``, ``report.html`` alone: the figures and the CSV files embedded as
``data:`` URIs, nothing else referenced (a file to mail or attach to a CI run).

Everything is first written into a temporary folder next to ``out_dir`` and moved into place at
the end; a failure (including :class:`ReportError` on malformed input, raised before anything
is written) leaves ``out_dir`` as it was. A missing baseline, or one without synthesis, is not
a failure: the ratios show — and the header warns.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import render
from .contents import compose
from .model import ReportError, check_baseline, normalise

__all__ = ["ReportError", "ReportFiles", "build_report"]


@dataclass(frozen=True)
class ReportFiles:
    """The files :func:`build_report` wrote (final paths inside ``out_dir``)."""

    html: Path
    markdown: Path | None   # None in the single-file layout
    figures: list[Path]     # empty in the single-file layout (embedded in the page)
    csv: list[Path]


def build_report(
    summaries: Sequence[Mapping[str, Any]],
    out_dir: Path,
    baseline: str = "fp32-baseline",
    title: str | None = None,
    *,
    generated: datetime | None = None,
    single_file: bool = False,
) -> ReportFiles:
    """Write ``report.html``, ``report.md``, ``figures/*.png`` and ``data/*.csv`` into
    ``out_dir`` (created; existing files of the same names are replaced, others left alone);
    with ``single_file``, only ``report.html``, with every figure and CSV file embedded.

    Raises :class:`ReportError` (one line) before writing anything when the input is not a
    list of summaries. A missing baseline, or one whose ``synth``/``energy`` stage is not ok
    (a flow without synthesis), still gives a report: what is there, with — and a warning
    where a ratio needs what is missing.
    ``generated``: the date printed in the header (default: now, UTC).
    """
    entries = normalise(summaries, baseline)
    base, base_warning = check_baseline(entries, baseline)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"report folder {out_dir} exists and is not a folder")
    when = (generated or datetime.now(UTC)).astimezone(UTC)
    page = compose(entries, base, title or "lightnorm comparison report", when, baseline,
                   base_warning)

    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    try:
        (tmp / "figures").mkdir()
        (tmp / "data").mkdir()
        rel: list[str] = []
        links: dict[str, tuple[str, str]] = {}  # table -> (CSV file, the page's link to it)
        for t in page.tables:
            csv = f"data/{t.name}.csv"
            render.write_csv(tmp / csv, t.csv_fields, t.csv_rows)
            t.csv = csv
            t.href = _data_uri(tmp / csv, "text/csv;charset=utf-8") if single_file else csv
            links[t.name] = (csv, t.href)
            rel.append(csv)
        for fig in page.figures:
            fig.file = f"figures/{fig.name}.png"
            fig.draw(tmp / fig.file)
            fig.src = _data_uri(tmp / fig.file, "image/png") if single_file else fig.file
            fig.data_links = [links[n] for n in fig.data if n in links]
            rel.append(fig.file)
        context = {
            "title": page.title,
            "header": page.header,
            "warnings": page.warnings,
            "sections": page.sections,
            "details": page.details,
            "csv_files": list(links.values()),
            "single_file": single_file,
        }
        if single_file:  # the page alone: what it embeds is not installed
            shutil.rmtree(tmp / "figures")
            shutil.rmtree(tmp / "data")
            rel = render.write_pages(tmp, context, pages=(render.HTML_PAGE,))
        else:
            rel += render.write_pages(tmp, context)
        _install(tmp, out_dir, rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReportFiles(
        html=out_dir / "report.html",
        markdown=None if single_file else out_dir / "report.md",
        figures=[] if single_file else [out_dir / f.file for f in page.figures],
        csv=[] if single_file else [out_dir / t.csv for t in page.tables if t.csv],
    )


def _data_uri(path: Path, mime: str) -> str:
    """The file as a base64 ``data:`` URI (what a single-file report embeds)."""
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _install(tmp: Path, out_dir: Path, rel: Sequence[str]) -> None:
    """Move the finished report into place: the whole folder when ``out_dir`` does not exist
    (one rename), else file by file with os.replace (the pages last)."""
    if not out_dir.exists():
        tmp.chmod(0o755)
        try:
            os.rename(tmp, out_dir)
            return
        except OSError:
            if not out_dir.is_dir():  # not a lost race with another writer
                raise
    for r in rel:
        dest = out_dir / r
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / r, dest)
