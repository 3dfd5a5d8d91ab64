"""Benchmark: C-simulation elements/s next to golden-model elements/s, same data, one run.

    python -m lightnorm.bench.csim [--spec lightnorm] [--shape 16 16 32 32] [--repeat 5]
                                   [--threads T] [--json]

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

from lightnorm.verify.csim import benchmark


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lightnorm.bench.csim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="lightnorm", help="preset name or TOML path")
    ap.add_argument("--shape", type=int, nargs=4, default=[16, 16, 32, 32],
                    metavar=("N", "C", "H", "W"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5, help="best of this many rounds")
    ap.add_argument("--threads", type=int, default=None,
                    help="C-simulation threads (default: $LIGHTNORM_CSIM_THREADS or the CPUs)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be >= 1")
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


if __name__ == "__main__":
    raise SystemExit(main())
