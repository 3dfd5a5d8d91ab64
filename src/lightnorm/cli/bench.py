"""``lightnorm bench NAME [options]``: run one benchmark of :mod:`lightnorm.bench`
(docs/benchmarks.md). ``lightnorm bench --help`` lists them with a line each; ``lightnorm bench
NAME --help`` shows the options of one (each benchmark declares its own, ``--json`` included).

Registered in :data:`lightnorm.cli.core.COMMANDS` with ``takes_json=False``.
"""

from __future__ import annotations

import argparse

from lightnorm.bench import BENCHMARKS, load

BENCH_HELP = "run a benchmark: figures measured side by side in one run (docs/benchmarks.md)"


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """One subcommand per benchmark, with the benchmark's options."""
    sub = parser.add_subparsers(dest="benchmark", metavar="NAME", required=True,
                                title="benchmarks")
    for name, line in BENCHMARKS.items():
        module = load(name)
        p = sub.add_parser(name, help=line, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_benchmark=module.execute)


def cmd_bench(args: argparse.Namespace) -> int:
    return int(args._benchmark(args))
