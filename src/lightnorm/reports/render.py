"""Rendering: the HTML and Markdown pages from the templates in ``templates/report/`` and the
CSV export of the tables. Every number and text is prepared before (:mod:`.tables`,
:mod:`.contents`); the templates only lay them out.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from .figures import Figure
from .tables import Table
from .text import one_line

TEMPLATE_PACKAGE = "lightnorm"
TEMPLATE_FOLDER = "templates/report"
HTML_TEMPLATE = "report.html.j2"
MD_TEMPLATE = "report.md.j2"
HTML_PAGE = ("report.html", HTML_TEMPLATE)
#: the pages and the template of each
PAGES = (("report.md", MD_TEMPLATE), HTML_PAGE)


@dataclass
class Section:
    """A part of a page: a heading (``id`` is its anchor), paragraphs, tables and figures."""

    id: str
    title: str
    paragraphs: list[str]
    tables: list[Table]
    figures: list[Figure]


def template_root() -> Path:
    return Path(str(resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_FOLDER)))


_MD_SPECIAL = re.compile(r"([\\`*|<>\[\]])")


def md_escape(text: Any) -> str:
    """One line of Markdown text (table cells too): backslash-escape the active characters."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(text))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_root())),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    return env


def write_pages(folder: Path, context: dict[str, Any],
                pages: Sequence[tuple[str, str]] = PAGES) -> list[str]:
    """Render ``pages`` (file name, template) into ``folder``; returns their file names."""
    env = environment()
    for name, template in pages:
        (folder / name).write_text(env.get_template(template).render(**context),
                                   encoding="utf-8")
    return [name for name, _ in pages]


def write_csv(path: Path, fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A CSV file: a header row, then the rows; empty cell = no value, bools as true/false."""
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for row in rows:
            w.writerow([cell(v) for v in row])
