"""Command-line values shared by the ``lightnorm`` subcommands: one parser per kind of option.

Each ``*_arg`` returns an argparse ``type=`` callable for one option; a bad value raises
:class:`UsageError` (``--seed = '-1': expected a non-negative integer``), which
:func:`lightnorm.cli.core.main` prints as one line with exit status 2. Every command that has a
``--seed``, ``--clock-ns``, ``--jobs`` or ``--stages`` uses the same callable for it
(:func:`share_types` makes sure of it; tests/test_hostile.py checks).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lightnorm.backends import DEFAULT_BACKEND, backend_names, get_backend
from lightnorm.errors import UsageError

#: numpy's generators take seeds below 2**128; the C-simulation's vectors need 64 bits
MAX_SEED = (1 << 63) - 1


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


def _integer(option: str, text: str, lo: int, hi: int, expected: str) -> int:
    t = text.strip()
    if not (t.isascii() and (t.isdigit() or (t[:1] in "+-" and t[1:].isdigit()))):
        raise UsageError(f"{option} = {text!r}: expected {expected}")
    value = int(t)
    if not lo <= value <= hi:
        raise UsageError(f"{option} = {text!r}: expected {expected}")
    return value


def int_arg(option: str, lo: int = 0, hi: int = MAX_SEED,
            expected: str | None = None) -> Callable[[str], int]:
    """An integer in ``lo..hi`` (``--seed``: 0..2^63-1; ``--jobs``: 1..)."""
    what = expected or ("a non-negative integer" if lo == 0 else f"an integer >= {lo}")

    def parse(text: str) -> int:
        return _integer(option, text, lo, hi, what)

    parse.__name__ = f"int_arg({option})"
    return parse


def period_arg(option: str = "--clock-ns") -> Callable[[str], float]:
    """A clock period in ns: a finite number > 0 (at least 1 ps)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 1e-3):
            raise UsageError(f"{option} = {text!r}: expected a positive period in ns (at least "
                             "0.001)")
        return value

    parse.__name__ = f"period_arg({option})"
    return parse


def list_arg(option: str, choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """A non-empty comma-separated list of ``choices`` (``--stages csim,cosim``)."""

    def parse(text: str) -> tuple[str, ...]:
        got = tuple(s.strip() for s in text.split(","))
        bad = [s for s in got if s not in choices]
        if not text.strip() or bad:
            what = f" ({', '.join(repr(b) for b in bad)} unknown)" if text.strip() else ""
            raise UsageError(f"{option} = {text!r}: expected a non-empty comma-separated list "
                             f"of {', '.join(choices)}{what}")
        return tuple(dict.fromkeys(got))

    parse.__name__ = f"list_arg({option})"
    return parse


def seeds_arg(option: str = "--seeds") -> Callable[[str], tuple[int, ...]]:
    """A non-empty comma-separated list of seeds (each as ``--seed``)."""
    one = int_arg(option)

    def parse(text: str) -> tuple[int, ...]:
        parts = text.split(",")
        if not text.strip() or any(not p.strip() for p in parts):
            raise UsageError(f"{option} = {text!r}: expected comma-separated non-negative "
                             "integers")
        try:
            return tuple(one(p) for p in parts)
        except UsageError:
            raise UsageError(f"{option} = {text!r}: expected comma-separated non-negative "
                             "integers") from None

    parse.__name__ = f"seeds_arg({option})"
    return parse


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_ancestor(option: str, text: str, path: Path) -> None:
    anc = _nearest_existing(path if path.is_dir() else path.parent)  # a file: its folder
    if not anc.is_dir():
        raise UsageError(f"{option} = {text!r}: {anc} is not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UsageError(f"{option} = {text!r}: {anc} is not writable")


def _out_arg(option: str, folder: bool) -> Callable[[str], Path]:
    def parse(text: str) -> Path:
        path = Path(text)
        what = "directory" if folder else "file"
        if not text.strip() or (not folder and text.endswith(("/", os.sep))):
            raise UsageError(f"{option} = {text!r}: expected a {what} path")
        if path.exists() and path.is_dir() != folder:
            other = "file" if folder else "directory"
            raise UsageError(f"{option} = {text!r}: expected a {what}; a {other} of that name "
                             "exists")
        _check_ancestor(option, text, path)
        return path

    parse.__name__ = f"{'out_dir_arg' if folder else 'out_file_arg'}({option})"
    return parse


def out_dir_arg(option: str = "--out") -> Callable[[str], Path]:
    """A directory to create or write into: not an existing file, under a writable
    directory. (What may already be inside is the command's business.)"""
    return _out_arg(option, folder=True)


def out_file_arg(option: str) -> Callable[[str], Path]:
    """A file to write (its missing parent directories are created): not a directory."""
    return _out_arg(option, folder=False)


def in_file_arg(option: str) -> Callable[[str], str]:
    """An existing, readable regular file (its path as given)."""

    def parse(text: str) -> str:
        path = Path(text)
        if path.is_dir():
            raise UsageError(f"{option} = {text!r}: expected a file; it is a directory")
        if not path.is_file():
            raise UsageError(f"{option} = {text!r}: no such file")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{option} = {text!r}: not readable")
        return text

    parse.__name__ = f"in_file_arg({option})"
    return parse


#: the shared callables
SEED = int_arg("--seed", expected="a non-negative integer below 2**63")
JOBS = int_arg("--jobs", lo=1, hi=4096, expected="a positive integer (at most 4096)")
CLOCK_NS = period_arg("--clock-ns")
LIBERTY = in_file_arg("--liberty")
OUT_DIR = out_dir_arg("--out")

#: option -> its parser, whatever command declares it: :func:`share_types` puts these on
#: every subcommand's parser, so no command can parse one of these options its own way
SHARED: dict[str, Callable[[str], Any]] = {
    "--seed": SEED, "--jobs": JOBS, "--clock-ns": CLOCK_NS, "--liberty": LIBERTY,
    "--out": OUT_DIR, "--output": out_dir_arg("--output"),
}
#: the same options where a command writes one file, not a directory (``quantize``'s
#: ``--out q.npy``): one shared file parser each
SHARED_FILE: dict[str, Callable[[str], Any]] = {"--out": out_file_arg("--out")}


def share_types(parser: argparse.ArgumentParser) -> None:
    """Give each option of :data:`SHARED` that ``parser`` declares the shared parser - or,
    for an output option the command declared as one file (:func:`out_file_arg`), the shared
    file parser of :data:`SHARED_FILE`."""
    for action in parser._actions:
        as_file = getattr(action.type, "__name__", "").startswith("out_file_arg(")
        for opt in action.option_strings:
            table = SHARED_FILE if as_file else SHARED
            if opt in table:
                action.type = table[opt]
