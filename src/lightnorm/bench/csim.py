"""C-simulation elements/s next to golden-model elements/s, same data, one run.

    lightnorm bench csim [--spec lightnorm] [--shape 16 16 32 32] [--repeat 5] [--threads T]
                         [--json]

Machines here are shared and noisy: read the ratio (measured side by side, the golden and the
C-simulation calls interleaved round by round, best round of each), not the absolute rates.
The golden model runs numba kernels parallel over channels (``NUMBA_NUM_THREADS``); the
C-simulation runs the top functions on channel slices in parallel
(``LIGHTNORM_CSIM_THREADS`` or ``--threads``; default: the CPUs this process may use).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", default="lightnorm", help="preset name or TOML path")
    parser.add_argument("--shape", type=positive_int, nargs=4, default=[16, 16, 32, 32],
                        metavar=("N", "C", "H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=positive_int, default=5,
                        help="best of this many rounds")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="C-simulation threads (default: $LIGHTNORM_CSIM_THREADS or the CPUs)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def execute(args: argparse.Namespace) -> int:
    from lightnorm.verify.csim import benchmark

    res = benchmark(args.spec, shape=args.shape, seed=args.seed, repeat=args.repeat,
                    threads=args.threads)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"spec {res['spec']}, shape {tuple(res['shape'])}, {res['elements']} elements, "
          f"best of {res['repeat']}, golden on {res['numba_threads']} numba thread(s), "
          f"csim on {res['csim_threads']} thread(s)")
    print(f"{'pass':<9} {'golden elem/s':>14} {'csim elem/s':>14} {'csim/golden':>12}")
    for p in ("forward", "backward"):
        r = res[p]
        print(f"{p:<9} {r['golden_elements_per_s']:>14.3e} {r['csim_elements_per_s']:>14.3e} "
              f"{r['csim_over_golden']:>12.3f}")
    return 0
