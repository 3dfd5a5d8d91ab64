"""``lightnorm accuracy [SPEC ...] [--dataset digits|synthetic] [--epochs E] [--seeds K] ...``:
train a small CNN with each spec's exact BN arithmetic in the loop and compare its test accuracy
with float32 BatchNorm (:mod:`lightnorm.train.accuracy`, docs/accuracy.md).

Registered in :data:`lightnorm.cli.core.COMMANDS`. PyTorch and scikit-learn are optional
(``lightnorm[train]``): this module does not import them; the command checks for them first and
reports a missing one as a :class:`~lightnorm.errors.ToolError` (one line, exit 2:
:func:`lightnorm.train.accuracy.require_train`, which the flow's accuracy stage uses too).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from lightnorm.errors import UsageError
from lightnorm.jsonsafe import json_safe
from lightnorm.spec import load
from lightnorm.train.accuracy import (
    DATASETS,
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_OUT,
    DEFAULT_SEEDS,
    DEFAULT_SPECS,
    TrainConfig,
    require_train,
    results_table,
    run_accuracy,
    write_results,
)

ACCURACY_HELP = ("train a small CNN with each spec's exact BN arithmetic in the loop and "
                 "compare its test accuracy with float32 torch.nn.BatchNorm2d")


def add_accuracy_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightnorm accuracy`` besides ``--json`` (which cli/core.py adds)."""
    parser.add_argument("specs", metavar="SPEC", nargs="*",
                        help="preset names or TOML spec paths (default: "
                             + " ".join(DEFAULT_SPECS) + ")")
    parser.add_argument("--dataset", choices=DATASETS, default="digits",
                        help="digits (scikit-learn, 8x8) or synthetic (oriented gratings); "
                             "default digits")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                        help=f"training epochs (default {DEFAULT_EPOCHS})")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                        help=f"seeds 0..K-1 (default {DEFAULT_SEEDS})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                        help=f"training batch size (default {DEFAULT_BATCH}); "
                             "the last partial batch of an epoch is dropped")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR,
                        help=f"peak SGD learning rate (default {DEFAULT_LR:g})")
    parser.add_argument("--loss-scale", type=float, default=1.0,
                        help="static loss scale: the loss is multiplied before backward and "
                             "the gradients divided after (default 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and numba threads (default 1; 0 = library defaults)")
    parser.add_argument("-o", "--output", metavar="DIR", default=DEFAULT_OUT,
                        help=f"directory for the JSON results and the plot (default "
                             f"{DEFAULT_OUT})")


def cmd_accuracy(args: argparse.Namespace) -> int:
    require_train("lightnorm accuracy")
    for opt, val, lo in (("--epochs", args.epochs, 1), ("--seeds", args.seeds, 1),
                         ("--batch-size", args.batch_size, 1), ("--threads", args.threads, 0)):
        if val < lo:
            raise UsageError(f"{opt} = {val}: expected an integer >= {lo}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr = {args.lr}: expected a positive number")
    if not (math.isfinite(args.loss_scale) and args.loss_scale > 0):
        raise UsageError(f"--loss-scale = {args.loss_scale}: expected a positive number")
    specs = [load(s) for s in (args.specs or DEFAULT_SPECS)]
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      loss_scale=args.loss_scale)
    quiet = bool(getattr(args, "json", False))
    result = run_accuracy(specs, args.dataset, cfg, args.seeds, args.threads,
                          progress=not quiet)
    write_results(result, args.output)
    if quiet:
        sys.stdout.write(json.dumps(json_safe(result), indent=2) + "\n")
        return 0
    from rich.console import Console

    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    console.print(results_table(result))
    for v in result["variants"]:
        for f in v["failures"]:
            console.print(f"{v['name']} seed {f['seed']} failed: {f['reason']}")
    console.print(f"results: {result['files']['json']}  plot: {result['files']['plot']}")
    return 0
