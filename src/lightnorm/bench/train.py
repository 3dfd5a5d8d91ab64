"""A training step with the golden-model BN layer against torch.nn.BatchNorm2d, and the accuracy
table of every preset on digits.

    lightnorm bench train [--specs NAME ...] [--threads 1] [--skip-accuracy] [--json]

Step time: the accuracy model (:func:`lightnorm.train.accuracy.build_model`) on one digits batch
(64 x 1 x 8 x 8); a step is zero_grad, forward, cross-entropy, backward and an SGD update. The
torch-BN model and each converted model start from the same weights and are timed side by side
in one process: rounds of ``--steps`` steps alternate between the variants (after warm-up steps
that also trigger numba's JIT), and the median of the per-round mean step times is reported.
The ratio is torch time / LightNorm time (1.0 = as fast as torch; 0.1 = ten times slower).
torch and numba use ``--threads`` threads (default 1) in both.

Accuracy: ``lightnorm accuracy`` with every preset on digits, 3 seeds (mean ± std), written
to ``-o`` (default results/accuracy). Needs PyTorch and scikit-learn (``lightnorm[train]``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from lightnorm.errors import UsageError
from lightnorm.spec import load, preset_names

from . import positive_int, require


def _step_fn(model: Any, x: Any, y: Any) -> Any:
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def time_steps(specs: list[str], batch_size: int = 64, steps: int = 10, rounds: int = 7,
               warmup: int = 3) -> dict[str, Any]:
    """Median seconds per training step for torch BN and each spec, measured interleaved."""
    import torch

    from lightnorm.train.accuracy import build_model, load_digits_data
    from lightnorm.train.layer import convert

    ds = load_digits_data()
    x = torch.from_numpy(ds.x_train[:batch_size])
    y = torch.from_numpy(ds.y_train[:batch_size])
    torch.manual_seed(0)
    base = build_model(ds.x_train.shape[1], ds.classes)
    state = {k: v.clone() for k, v in base.state_dict().items()}
    variants: dict[str, Any] = {}
    for name in ["torch-fp32", *specs]:
        m = build_model(ds.x_train.shape[1], ds.classes)
        m.load_state_dict(state)
        if name != "torch-fp32":
            convert(m, load(name))
        m.train()
        variants[name] = _step_fn(m, x, y)
    for step in variants.values():
        for _ in range(warmup):
            step()
    per_round: dict[str, list[float]] = {n: [] for n in variants}
    for _ in range(rounds):
        for name, step in variants.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            per_round[name].append((time.perf_counter() - t0) / steps)
    med = {n: statistics.median(v) for n, v in per_round.items()}
    ref = med["torch-fp32"]
    return {
        "batch": list(x.shape),
        "steps_per_round": steps,
        "rounds": rounds,
        "seconds_per_step": med,
        "speed_vs_torch": {n: ref / t for n, t in med.items() if n != "torch-fp32"},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--specs", nargs="+", default=None, metavar="SPEC",
                        help="specs to time (default: every preset)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--steps", type=positive_int, default=10,
                        help="steps per timing round")
    parser.add_argument("--rounds", type=positive_int, default=7,
                        help="timing rounds (median)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and numba threads (0 = library defaults)")
    parser.add_argument("--epochs", type=positive_int, default=15, help="accuracy: epochs")
    parser.add_argument("--seeds", type=positive_int, default=3, help="accuracy: seeds")
    parser.add_argument("--skip-accuracy", action="store_true", help="only time the steps")
    parser.add_argument("-o", "--output", default="results/accuracy", metavar="DIR",
                        help="accuracy results directory (default results/accuracy)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")


def execute(args: argparse.Namespace) -> int:
    require("torch", "sklearn", extra="train")
    if args.threads < 0:
        raise UsageError(f"--threads = {args.threads}: expected an integer >= 0")
    from rich.console import Console
    from rich.table import Table

    from lightnorm.train.accuracy import (
        TrainConfig,
        results_table,
        run_accuracy,
        set_threads,
        write_results,
    )

    specs = args.specs or preset_names()
    set_threads(args.threads)
    console = Console(file=sys.stdout, highlight=False)
    timing = time_steps(specs, args.batch_size, args.steps, args.rounds)
    out: dict[str, Any] = {"threads": args.threads, "step_time": timing}
    if not args.json:
        t = Table(title=f"training step, batch {'x'.join(map(str, timing['batch']))}, "
                        f"{args.threads} thread(s), median of {timing['rounds']} rounds of "
                        f"{timing['steps_per_round']} steps")
        t.add_column("BN", style="bold")
        t.add_column("ms/step", justify="right")
        t.add_column("speed vs torch", justify="right")
        for name, sec in timing["seconds_per_step"].items():
            sp = timing["speed_vs_torch"].get(name)
            t.add_row(name, f"{1e3 * sec:.2f}", "1" if sp is None else f"{sp:.3f}x")
        console.print(t)
    if not args.skip_accuracy:
        res = run_accuracy([load(s) for s in specs], "digits",
                           TrainConfig(epochs=args.epochs), seeds=args.seeds,
                           threads=args.threads, progress=not args.json)
        files = write_results(res, args.output)
        out["accuracy"] = {v["name"]: {"mean": v["test_acc"]["mean"], "std": v["test_acc"]["std"],
                                       "delta_pp": v["delta_pp"],
                                       "failures": v["failures"]} for v in res["variants"]}
        out["accuracy_files"] = files
        if not args.json:
            console.print(results_table(res))
            console.print(f"results: {files['json']}  plot: {files['plot']}")
    if args.json:
        from lightnorm.jsonsafe import json_safe

        sys.stdout.write(json.dumps(json_safe(out), indent=2) + "\n")
    return 0
