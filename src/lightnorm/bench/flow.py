"""Sweeps in parallel and cached: ``lightnorm bench flow [--points-axis 3] [--stages LIST]``.

Runs the same sweep of small 2-lane specs (compute mantissa bits x BFP block size, 9 points by
default) three times in one go, each as a real ``lightnorm sweep`` subprocess:

1. ``--jobs 1`` into a fresh results directory with a fresh tool cache (``LIGHTNORM_CACHE``:
   every C-simulation compiled, every Verilator model built);
2. ``--jobs 2`` the same, with its own fresh directory and cache;
3. ``--jobs 2`` again on run 2's directory: fully cached, nothing recomputed.

Prints the wall times, the speed-up jobs 1 / jobs 2 and the cached rerun time. Synthesis is
left out by default: Yosys runs take a machine-wide lock, so it would not run in parallel
anyway (pass ``--stages`` to include it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lightnorm.tools.runner import ToolCommand, run_tool

from . import positive_int

BASE = """name = "bench-base"
[bn]
mode = "range"
chunks = 2
eps = 0.01
[hw]
lanes = 2
max_channel_elems = 4096
[storage.x]
kind = "bfp"
block = 2
man_bits = 3
exp_bits = 4
[storage.y]
kind = "bfp"
block = 2
man_bits = 3
exp_bits = 4
[storage.dy]
kind = "bfp"
block = 2
man_bits = 3
exp_bits = 4
[storage.dx]
kind = "bfp"
block = 2
man_bits = 3
exp_bits = 4
[compute]
exp_bits = 5
man_bits = 3
[accum]
exp_bits = 5
man_bits = 6
[scalar]
exp_bits = 5
man_bits = 6
"""


def sweep_text(n: int, stages: Sequence[str]) -> str:
    mans = [3 + i for i in range(n)]
    blocks = [2 * 2 ** i for i in range(n)]
    return (f'[sweep]\nname = "bench"\nbase = "base.toml"\nstages = {json.dumps(list(stages))}\n'
            f'\n[axes]\n"compute.man_bits" = {mans}\n"storage.*.block" = {blocks}\n')


def run(sweep: Path, out: Path, cache: Path, jobs: int) -> float:
    """One ``lightnorm sweep`` process with its own tool cache; its wall time."""
    done = run_tool(ToolCommand(
        (sys.executable, "-m", "lightnorm", "sweep", str(sweep), "-o", str(out), "--jobs",
         str(jobs), "--json"), sweep.parent, env={"LIGHTNORM_CACHE": str(cache)},
        log=out.parent / f"sweep-{out.name}-jobs{jobs}.log", timeout_s=7200,
        purpose=f"sweep --jobs {jobs}"))
    return done.duration_s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points-axis", type=positive_int, default=3,
                        help="values per axis (default 3)")
    parser.add_argument("--stages", default="generate,csim,cosim,quality")
    parser.add_argument("--json", action="store_true")


def execute(args: argparse.Namespace) -> int:
    stages = args.stages.split(",")  # checked by the sweep (a bad one: its exit 2, its log)
    with tempfile.TemporaryDirectory(prefix="lightnorm-bench-") as tmp:
        d = Path(tmp)
        (d / "base.toml").write_text(BASE)
        sweep = d / "sweep.toml"
        sweep.write_text(sweep_text(args.points_axis, stages))
        points = args.points_axis ** 2
        t1 = run(sweep, d / "out1", d / "cache1", 1)
        t2 = run(sweep, d / "out2", d / "cache2", 2)
        t3 = run(sweep, d / "out2", d / "cache2", 2)
    out = {"points": points, "stages": stages, "cpus": os.cpu_count(),
           "jobs1_s": t1, "jobs2_s": t2, "speedup_jobs2": t1 / t2, "cached_rerun_s": t3}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"sweep of {points} points, stages {','.join(stages)}, {os.cpu_count()} CPUs")
        print(f"  --jobs 1: {t1:7.1f} s")
        print(f"  --jobs 2: {t2:7.1f} s   speed-up {t1 / t2:.2f}x")
        print(f"  cached rerun (--jobs 2): {t3:.1f} s")
    return 0
