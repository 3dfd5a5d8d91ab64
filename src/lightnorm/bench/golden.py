"""Golden model vs PyTorch: elements per second of the golden model's forward + backward next
to ``torch.nn.functional.batch_norm`` (float32, forward + backward) on the same data, and their
ratio.

    lightnorm bench golden [--spec NAME] [--shape N,C,H,W] [--repeat R] [--threads T] [--json]

Both sides run on the same ``--threads`` threads (default 2: torch's intra-op threads and
numba's). Each side is timed ``repeat`` times interleaved and the best time is kept (the
machines are shared and noisy; the best run is the least disturbed one). Needs PyTorch
(``lightnorm[torch]``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from lightnorm.spec import load

from . import positive_int, require, shape_arg


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def set_threads(threads: int) -> int:
    """torch and numba on ``threads`` threads (numba: at most its pool); numba's count."""
    import numba
    import torch

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    return int(numba.get_num_threads())


def bench_golden(spec_name: str, shape: tuple[int, int, int, int], repeat: int,
                 threads: int = 2) -> dict:
    import numpy as np
    import torch

    from lightnorm.verify import golden

    numba_threads = set_threads(threads)

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
        "numba_threads": numba_threads,
        "repeat": repeat,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", default="lightnorm", help="preset name or TOML path")
    parser.add_argument("--shape", type=shape_arg, default=(32, 64, 56, 56), metavar="N,C,H,W",
                        help="tensor shape (default 32,64,56,56)")
    parser.add_argument("--repeat", type=positive_int, default=5,
                        help="interleaved timings per side, the best kept (default 5)")
    parser.add_argument("--threads", type=positive_int, default=2,
                        help="threads of torch and of numba (default 2)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")


def execute(args: argparse.Namespace) -> int:
    require("torch", extra="torch")
    res = bench_golden(args.spec, args.shape, args.repeat, args.threads)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"golden model ({res['spec']}) forward+backward on {tuple(res['shape'])} "
              f"({res['numba_threads']} threads): {res['golden_fwd_bwd_s'] * 1e3:.1f} ms, "
              f"{res['golden_elements_per_s'] / 1e6:.1f} M elements/s")
        print(f"torch batch_norm float32 forward+backward ({res['torch_threads']} threads): "
              f"{res['torch_fwd_bwd_s'] * 1e3:.1f} ms, "
              f"{res['torch_elements_per_s'] / 1e6:.1f} M elements/s")
        print(f"ratio golden/torch: {res['ratio_golden_over_torch']:.2f}x (target >= 0.25x)")
    return 0
