"""Co-simulation throughput: elements/s verified through cocotb vs the bare Verilator harness.

Both sides run the same Verilator model of ``lightnorm_tb`` (same sources, same compiler flags:
``-O1``, a build of its own next to the tests' ``-O0`` one) on the same prepared runs, measured
side by side in one process:

* cocotb: one simulator process launched through ``cocotb_tools.runner`` - Python start-up
  inside the simulator, every run loaded, simulated, dumped and scored against the golden
  patterns (the whole verification, minus the golden model itself, which both sides share);
* bare: the model driven by a plain C++ main (:data:`lightnorm.verify.cosim.TB_MAIN`) - the
  simulator's own limit: no Python, no scoring.

The ratio (cocotb elements/s over bare elements/s) is the figure of merit (target >= 0.3).

    lightnorm bench cosim [SPEC] [--shape N,C,H,W] [--reps R] [--stress P] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from lightnorm.errors import UsageError
from lightnorm.spec import load

from . import positive_int, shape_arg


def bench(spec_name: str = "lightnorm", shape: tuple[int, int, int, int] = (16, 8, 32, 32),
          reps: int = 4, stress: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Measure both harnesses on ``reps`` copies of one data set (forward and backward)."""
    from lightnorm.tools import verilator as vlt
    from lightnorm.verify import cosim

    spec = load(spec_name)
    t0 = time.perf_counter()
    cosim.build_model(spec, cflags=vlt.BENCH_CFLAGS)
    cosim.build_bare(spec, vlt.BENCH_CFLAGS)
    t_build = time.perf_counter() - t0
    root = Path(tempfile.mkdtemp(prefix="ln-bench-"))
    try:
        t0 = time.perf_counter()
        runs: list[dict[str, Any]] = []
        for rep in range(reps):
            rr, _ = cosim.prepare_runs(spec, cosim.Case(f"rep{rep}", shape, seed, "both"),
                                       root, stress, seed + rep)
            runs += rr
        t_prep = time.perf_counter() - t0
        n_, c, h, w = shape
        elements = reps * 2 * n_ * c * h * w  # y and dx elements
        t0 = time.perf_counter()
        res_c = cosim.run_cosim(spec, runs, root, cflags=vlt.BENCH_CFLAGS)
        t_cocotb = time.perf_counter() - t0
        bad = [x for x in res_c if x["mismatches"] or not x["finished"]]
        exe = cosim.build_bare(spec, vlt.BENCH_CFLAGS)
        for run in runs:
            cosim.write_run_txt(run)
        t0 = time.perf_counter()
        vlt.run([str(exe), *[run["dir"] for run in runs]], root, root / "bare.log",
                "bare harness")
        t_bare = time.perf_counter() - t0
        cycles = sum(x["cycles"] for x in res_c)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    eps_c, eps_b = elements / t_cocotb, elements / t_bare
    return {
        "spec": spec.name, "shape": list(shape), "reps": reps, "stress": stress,
        "elements": elements, "cycles": cycles, "runs": len(runs),
        "bit_exact": not bad,
        "seconds": {"build": t_build, "prepare": t_prep, "cocotb": t_cocotb, "bare": t_bare},
        "cocotb_elements_per_s": eps_c, "bare_elements_per_s": eps_b,
        "bare_cycles_per_s": cycles / t_bare,
        "ratio": eps_c / eps_b,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", default="lightnorm",
                        help="preset name or TOML path (default lightnorm)")
    parser.add_argument("--shape", type=shape_arg, default="16,8,32,32", metavar="N,C,H,W",
                        help="N,C,H,W per repetition (default 16,8,32,32)")
    parser.add_argument("--reps", type=positive_int, default=4,
                        help="data sets per simulator launch")
    parser.add_argument("--stress", type=float, default=0.0,
                        help="probability of idle / back-pressure cycles")
    parser.add_argument("--json", action="store_true")


def execute(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.stress) and 0.0 <= args.stress < 1.0):
        raise UsageError(f"--stress = {args.stress}: expected a probability in [0, 1)")
    r = bench(args.spec, args.shape, args.reps, args.stress)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        s = r["seconds"]
        print(f"{r['spec']}: {r['elements']} elements ({r['runs']} runs, {r['cycles']} cycles), "
              f"bit-exact: {r['bit_exact']}")
        print(f"  cocotb : {r['cocotb_elements_per_s']:,.0f} elements/s ({s['cocotb']:.2f} s)")
        print(f"  bare   : {r['bare_elements_per_s']:,.0f} elements/s ({s['bare']:.2f} s, "
              f"{r['bare_cycles_per_s']:,.0f} cycles/s)")
        print(f"  ratio  : {r['ratio']:.2f} (target >= 0.3)")
    return 0 if r["bit_exact"] else 1
