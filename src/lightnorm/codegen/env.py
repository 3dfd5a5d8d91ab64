"""The Jinja2 environments of lightnorm, their filters, and the template-set hash.

Templates live in the package folder ``lightnorm/templates`` (files ending in ``.j2``).
Every number a template prints is computed in Python (:mod:`lightnorm.codegen.context`); the
filters below only format: hex literals, integer widths as types, identifiers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

TEMPLATE_PACKAGE = "lightnorm"
TEMPLATE_FOLDER = "templates"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def template_root() -> Path:
    """The folder that holds the templates (an installed or editable package folder)."""
    return Path(str(resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_FOLDER)))


#: delimiters of the hardware templates (Verilog, DSLX): braces and brackets are their syntax
HW_DELIMITERS = {
    "block_start_string": "<%", "block_end_string": "%>",
    "variable_start_string": "<@", "variable_end_string": "@>",
    "comment_start_string": "<#", "comment_end_string": "#>",
}


def make_environment(root: Path, filters: Mapping[str, Callable[..., str]],
                     **delimiters: str) -> jinja2.Environment:
    """A strict Jinja2 environment over the templates in ``root`` with ``filters``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        **delimiters,  # type: ignore[arg-type]
    )
    env.filters.update(filters)
    return env


def check_unsigned(who: str, value: int, width: int) -> None:
    """A literal filter's check: ``value`` is an int that fits in ``width`` unsigned bits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{who}: expected an int, got {value!r}")
    if width < 1 or not 0 <= value < 1 << width:
        raise ValueError(f"{who}: {value} does not fit in {width} unsigned bits")


def check_signed(who: str, value: int, width: int) -> None:
    """A literal filter's check: ``value`` is an int that fits in ``width`` signed bits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{who}: expected an int, got {value!r}")
    if width < 2 or not -(1 << (width - 1)) <= value < 1 << (width - 1):
        raise ValueError(f"{who}: {value} does not fit in {width} signed bits")


def hexlit(value: int, width: int) -> str:
    """A C/C++ hex literal of an unsigned ``width``-bit value: ``0x7bff``, ``0x7f7fffffULL``."""
    check_unsigned("hexlit", value, width)
    digits = max(1, -(-width // 4))
    suffix = "ULL" if width > 31 else ""
    return f"0x{value:0{digits}x}{suffix}"


def apuint(width: int) -> str:
    """The HLS unsigned type of a width: ``ap_uint<16>``."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"apuint: bad width {width!r}")
    return f"ap_uint<{width}>"


def cident(name: str) -> str:
    """A checked C/C++/Verilog/Tcl identifier (``-`` becomes ``_``); anything else is an error."""
    out = str(name).replace("-", "_")
    if not _IDENT.fullmatch(out):
        raise ValueError(f"cident: {name!r} is not an identifier")
    return out


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return make_environment(template_root(),
                            {"hexlit": hexlit, "apuint": apuint, "cident": cident})


def template_names(prefix: str) -> list[str]:
    """Sorted template names (``hls/top.cpp.j2``...) under one template sub-folder."""
    root = template_root()
    return sorted(
        p.relative_to(root).as_posix()
        for p in (root / prefix).rglob("*.j2")
        if p.is_file()
    )


def template_hash(prefixes: tuple[str, ...] = ("hls",)) -> str:
    """sha256 over the names and bytes of the templates under ``prefixes``."""
    root = template_root()
    h = hashlib.sha256()
    for prefix in prefixes:
        for name in template_names(prefix):
            h.update(name.encode() + b"\0")
            h.update((root / name).read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def render(name: str, ctx: Mapping[str, object]) -> str:
    return environment().get_template(name).render(**ctx)
