"""Benchmarks: figures measured side by side in one run (never timed tests; docs/benchmarks.md).

``lightnorm bench NAME [options]`` runs one; ``lightnorm bench --help`` lists them and
``lightnorm bench NAME --help`` gives the options of one. A benchmark is a module of this
package with

* ``add_arguments(parser)``: its options (``--json`` included where it has JSON output);
* ``execute(args) -> int``: measure, print, return the exit status,

and one line in :data:`BENCHMARKS`. The command line is built with every benchmark's options,
so a benchmark module imports what it measures inside its functions, not at the top.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from types import ModuleType

from ..errors import ToolError

#: name -> one-line description (``lightnorm bench --help``)
BENCHMARKS: dict[str, str] = {
    "golden": "the golden model next to torch batch_norm, elements/s",
    "csim": "C-simulation next to the golden model, elements/s",
    "cosim": "cocotb co-simulation next to a bare Verilator harness",
    "synth": "lightnorm vs the FP32 baseline, same library and clock",
    "flow": "a sweep with --jobs 1, --jobs 2 and cached: wall times",
    "main": "the main job (lightnorm flow) cold and cached: wall times, where they go",
    "train": "a training step with the golden BN vs torch; accuracy",
    "xls": "XLS backend: DSLX -> Verilog time; --synth: vs template RTL",
    "timing": "every design at the clock it was generated for: met? predicted vs measured",
    "estimate": "lightnorm estimate vs lightnorm synth: error per spec and figure",
}


def load(name: str) -> ModuleType:
    """The module of benchmark ``name`` (one of :data:`BENCHMARKS`)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    return importlib.import_module(f"{__name__}.{name}")


# --- option types shared by the benchmarks (argparse reports their errors as usage errors) -----
def shape_arg(text: str) -> tuple[int, int, int, int]:
    """``N,C,H,W``: four positive integers."""
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected N,C,H,W positive integers")
    n, c, h, w = (int(p) for p in parts)
    return n, c, h, w


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """Comma-separated non-negative seeds or ranges of them: ``100,103-105``."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, sep, hi = part.partition("-")
        if not (lo.strip().isdigit() and (not sep or hi.strip().isdigit())):
            raise argparse.ArgumentTypeError(f"{part!r}: expected a seed or a range of seeds "
                                             "(100-121)")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise argparse.ArgumentTypeError(f"{part!r}: an empty range of seeds")
        out += range(first, last + 1)
    return tuple(out)


def require(*modules: str, extra: str) -> None:
    """A :class:`ToolError` naming the pip extra when an optional module is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ToolError(f"this benchmark needs {', '.join(missing)}: pip install "
                        f"'lightnorm[{extra}]'")
