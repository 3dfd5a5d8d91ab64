"""``lightnorm parse FILE [--json]``: detect a tool report's kind, print its normalized metrics.

Registered in :data:`lightnorm.cli.core.COMMANDS` as
``Command(cmd_parse, PARSE_HELP, takes_spec=False, arguments=add_parse_arguments)``.
A report that cannot be parsed raises :class:`~lightnorm.tools.parsers.ReportParseError`
(a :class:`~lightnorm.errors.LightnormError`): the command prints one line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lightnorm.errors import UsageError
from lightnorm.jsonsafe import json_safe
from lightnorm.tools.parsers import parse_file

PARSE_HELP = ("detect the kind of a tool report (Yosys stat, OpenSTA, Vitis/Vivado HLS "
              "csynth.xml, Vivado utilization/power) and print its normalized metrics")


def add_parse_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``lightnorm parse`` besides ``--json`` (which cli.py adds)."""
    parser.add_argument("report", metavar="FILE", help="the report file to parse")
    parser.epilog = ("kinds: yosys-stat, yosys-stat-json, opensta-checks, opensta-power, "
                     "opensta-log, hls-csynth, vivado-utilization, vivado-power; detected from "
                     "the content. Times in ns, power in W, Yosys areas in liberty units.")


def _flatten(prefix: str, value: Any, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        if not value:
            rows.append((prefix, "-"))
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, list):
        if not value:
            rows.append((prefix, "-"))
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, rows)
    elif value is None:
        rows.append((prefix, "n/a"))
    elif isinstance(value, float):
        rows.append((prefix, f"{value:.6g}"))
    else:
        rows.append((prefix, str(value)))


def cmd_parse(args: argparse.Namespace) -> int:
    path = Path(args.report)
    if path.is_dir():
        raise UsageError(f"FILE = {args.report!r}: is a directory, expected a report file")
    if not path.is_file():
        raise UsageError(f"FILE = {args.report!r}: no such file")
    kind, metrics = parse_file(path)  # ReportParseError -> one line, exit 2
    data = metrics.to_dict()
    if getattr(args, "json", False):
        out = {"file": str(path), "kind": kind, "metrics": json_safe(data)}
        sys.stdout.write(json.dumps(out, indent=2, allow_nan=False) + "\n")
        return 0

    from rich.console import Console
    from rich.table import Table

    rows: list[tuple[str, str]] = []
    _flatten("", data, rows)
    table = Table(title=f"{path.name}: {kind}")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    Console(file=sys.stdout, highlight=False, soft_wrap=False).print(table)
    return 0
