"""``lightnorm quality [SPEC ...] [--json]``: the numerical-quality summary of specs (relative
RMS error of y and dx against float64 batch normalization, :mod:`lightnorm.verify.quality`,
docs/quality.md) as a Markdown table, with the time of one measurement after a warm-up.

Registered in :data:`lightnorm.cli.core.COMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from lightnorm.spec import load, preset_names

QUALITY_HELP = ("measure the numerical error of y and dx of specs against float64 batch "
                "normalization and print the summary figures (docs/quality.md)")


def add_quality_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightnorm quality`` besides ``--json`` (which cli/core.py adds)."""
    parser.add_argument("specs", nargs="*", default=preset_names(), metavar="SPEC",
                        help="preset names or TOML files (default: every preset)")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3e}"


def cmd_quality(args: argparse.Namespace) -> int:
    from lightnorm.verify.quality import measure

    specs = [load(name) for name in args.specs]  # every spec checked before the first run
    results = {}
    rows = []
    for spec in specs:
        measure(spec)  # JIT warm-up (numba's on-disk cache makes later runs cheap)
        t0 = time.perf_counter()
        res = measure(spec)
        dt = time.perf_counter() - t0
        results[spec.name] = res
        s = res["summary"]
        rows.append(f"| {spec.name} | {res['mode']} | {_fmt(s['y_vs_own'])} | "
                    f"{_fmt(s['dx_vs_own'])} | {_fmt(s['y_vs_standard'])} | "
                    f"{_fmt(s['dx_vs_standard'])} | {_fmt(s['error'])} | {dt:.2f} |")
    if args.json:
        json.dump(results, sys.stdout, indent=2, allow_nan=False)
        print()
        return 0
    print("| spec | mode | y vs own | dx vs own | y vs standard | dx vs standard | error | "
          "time s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    return 0
