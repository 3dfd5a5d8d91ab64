"""Benchmarks that print figures measured side by side in one run (never timed tests).

    python -m lightnorm.bench.golden golden [--shape N,C,H,W] [--spec NAME] [--repeat R] [--json]

``golden``: elements per second of the golden model's forward + backward next to
``torch.nn.functional.batch_norm`` (float32, forward + backward) on the same data, and their
ratio. Each side is timed ``repeat`` times interleaved and the best time is kept (the machines
are shared and noisy; the best run is the least disturbed one).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np

from lightnorm.spec import load


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_golden(spec_name: str, shape: tuple[int, int, int, int], repeat: int) -> dict:
    import torch

    from lightnorm.verify import golden

    spec = load(spec_name)
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 2.0, shape)
    dy = rng.normal(0.0, 1e-2, shape)
    gamma = rng.uniform(0.5, 1.5, shape[1])
    beta = rng.uniform(-0.5, 0.5, shape[1])

    def run_golden() -> None:
        fr = golden.forward(spec, x, gamma, beta)
        golden.backward(spec, x, dy, gamma, beta, saved=fr)

    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    gt = torch.tensor(gamma, dtype=torch.float32, requires_grad=True)
    bt = torch.tensor(beta, dtype=torch.float32, requires_grad=True)
    dyt = torch.tensor(dy, dtype=torch.float32)

    def run_torch() -> None:
        y = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True)
        y.backward(dyt)
        xt.grad = gt.grad = bt.grad = None

    run_golden()  # compile (numba cache) and warm up both
    run_torch()
    tg, tt = [], []
    for _ in range(repeat):  # interleaved, so both see the same machine load
        tg.append(_best(run_golden, 1))
        tt.append(_best(run_torch, 1))
    elems = int(np.prod(shape))
    g_s, t_s = min(tg), min(tt)
    return {
        "benchmark": "golden",
        "spec": spec.name,
        "shape": list(shape),
        "elements": elems,
        "golden_fwd_bwd_s": g_s,
        "torch_fwd_bwd_s": t_s,
        "golden_elements_per_s": elems / g_s,
        "torch_elements_per_s": elems / t_s,
        "ratio_golden_over_torch": t_s / g_s,
        "torch_threads": torch.get_num_threads(),
        "repeat": repeat,
    }


def _shape(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"--shape {text!r}: expected N,C,H,W positive integers")
    n, c, h, w = (int(p) for p in parts)
    return n, c, h, w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lightnorm.bench.golden", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    g = sub.add_parser("golden", help="golden model vs torch batch_norm, forward+backward")
    g.add_argument("--spec", default="lightnorm")
    g.add_argument("--shape", type=_shape, default=(32, 64, 56, 56))
    g.add_argument("--repeat", type=int, default=5)
    g.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = bench_golden(args.spec, args.shape, args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"golden model ({res['spec']}) forward+backward on {tuple(res['shape'])}: "
              f"{res['golden_fwd_bwd_s'] * 1e3:.1f} ms, "
              f"{res['golden_elements_per_s'] / 1e6:.1f} M elements/s")
        print(f"torch batch_norm float32 forward+backward ({res['torch_threads']} threads): "
              f"{res['torch_fwd_bwd_s'] * 1e3:.1f} ms, "
              f"{res['torch_elements_per_s'] / 1e6:.1f} M elements/s")
        print(f"ratio golden/torch: {res['ratio_golden_over_torch']:.2f}x (target >= 0.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
