"""Command-line values shared by the ``lightnorm`` subcommands."""

from __future__ import annotations

import argparse

from lightnorm.backends import DEFAULT_BACKEND, backend_names, get_backend
from lightnorm.errors import UsageError


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--backend NAME``: the design under ``lightnorm_top``, one of the registered backends."""
    parser.add_argument("--backend", choices=backend_names(), default=DEFAULT_BACKEND,
                        help="design under lightnorm_top: " + "; ".join(
                            f"{n}: {get_backend(n).description}" for n in backend_names())
                        + f" (default {DEFAULT_BACKEND})")


def parse_shape(text: str, max_elems: int | None = None, example: str = "8,16,14,14"
                ) -> tuple[int, int, int, int]:
    """``"N,C,H,W"`` -> four positive integers (at most ``max_elems`` in all), or
    :class:`UsageError` naming ``--shape``."""
    parts = [p.strip() for p in text.split(",")]
    expected = "N,C,H,W: four positive integers separated by commas, e.g. " + example
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--shape = {text!r}: expected {expected}")
    n, c, h, w = (int(p) for p in parts)
    if max_elems is not None and n * c * h * w > max_elems:
        raise UsageError(f"--shape = {text!r}: expected at most {max_elems:,} elements in all "
                         f"(got {n * c * h * w:,})")
    return n, c, h, w
