"""``lightnorm hls SPEC [--clock-ns T] [--delay-model M] [-o OUT] [--json]``: a spec's DSLX
through Google XLS (in-process, ``xls-python``) into scheduled, pipelined Verilog.

Registered in :data:`lightnorm.cli.core.COMMANDS` as
``Command(cmd_hls, HLS_HELP, arguments=add_hls_arguments)`` (``SPEC`` and ``--json`` are added
by cli.py). Every function of the spec's DSLX (:mod:`lightnorm.codegen.dslx_design`) goes
DSLX -> IR -> optimized IR -> pipelined Verilog; results are cached per DSLX text, function,
XLS version and options (:mod:`lightnorm.tools.xls`), so a second run is instant. Any XLS
failure raises :class:`~lightnorm.errors.ToolError`: one line naming the unit, exit 2.

With ``-o OUT`` the files go to ``OUT/xls/`` (replaced as a whole): ``lightnorm_xls.x``, one
``xls_<function>.v`` per module, ``xls.f`` (the Verilog file list), the lint waivers
``xls_lint_waivers.vlt`` and ``hls.json`` (the report ``--json`` prints).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from lightnorm.cli import args as cliargs
from lightnorm.errors import UsageError

HLS_HELP = ("compile a spec's DSLX with Google XLS into pipelined Verilog (units, storage "
            "codecs, lanes): pipeline depth per module")
XLS_DIR = "xls"
REPORT = "hls.json"


def add_hls_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightnorm hls`` besides ``SPEC`` and ``--json`` (which cli.py adds)."""
    from lightnorm.tools.xls import DEFAULT_DELAY_MODEL, DELAY_MODELS

    parser.add_argument("--clock-ns", type=cliargs.CLOCK_NS, default=None, metavar="T",
                        help="target clock period in ns (default the spec's hw.clock_ns)")
    parser.add_argument("--delay-model", choices=DELAY_MODELS, default=DEFAULT_DELAY_MODEL,
                        help="XLS delay model the scheduler times operations with (default "
                             f"{DEFAULT_DELAY_MODEL}: the closest to the OSU 0.18 um cells of "
                             "'lightnorm synth'; 'unit' counts operations, not time)")
    parser.add_argument("-o", "--out", default=None, metavar="OUT",
                        type=cliargs.out_dir_arg("--out"),
                        help="write OUT/xls/ (DSLX, Verilog, file list, lint waivers, hls.json; "
                             "refused when OUT/xls holds other files)")
    parser.add_argument("--own-arith", action="store_true",
                        help="use lightnorm's own DSLX for nearest-even add/mul too (default: "
                             "the standard library's apfloat, which agrees with the contract)")
    parser.add_argument("--lint", action="store_true",
                        help="also run verilator --lint-only -Wall on every module")
    parser.add_argument("--no-cache", action="store_true",
                        help="recompute instead of reading/writing ~/.cache/lightnorm/xls")
    parser.epilog = ("XLS's pipeline generator registers the inputs and the outputs of each "
                     "module (latency = stages + 1) and carries a valid bit (in_valid -> "
                     "out_valid); reset 'rst' is synchronous, active high.")


def _clock_ps(clock_ns: float) -> int:
    if not (math.isfinite(clock_ns) and clock_ns > 0):
        raise UsageError(f"--clock-ns = {clock_ns!r}: expected a positive period in ns")
    ps = int(round(clock_ns * 1000))
    if ps < 1:
        raise UsageError(f"--clock-ns = {clock_ns!r}: below 1 ps")
    return ps


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[Kxls: {text}")
        sys.stderr.flush()


def run_hls(spec_name: str, clock_ns: float | None = None, delay_model: str | None = None,
            out: str | os.PathLike[str] | None = None, own_arith: bool = False,
            lint: bool = False, use_cache: bool = True) -> dict[str, Any]:
    """Compile every module of a spec; returns the report (and writes OUT/xls/ when asked)."""
    from lightnorm.codegen.dslx_design import MODULE, ROLE_HELP, design
    from lightnorm.spec import load
    from lightnorm.tools import xls as xc

    spec = load(spec_name)
    clock = spec.hw.clock_ns if clock_ns is None else clock_ns
    opts = xc.CodegenOptions(clock_ps=_clock_ps(clock),
                             delay_model=delay_model or xc.DEFAULT_DELAY_MODEL)
    opts.check()
    d = design(spec, apfloat=not own_arith)
    fns = d.functions()
    modules: list[dict[str, Any]] = []
    pipes = []
    for i, fn in enumerate(fns):
        top = next(t for t in d.tops if t.fn == fn)
        _progress(f"[{i + 1}/{len(fns)}] {top.module}")
        p = xc.pipeline(d.dslx, fn, top.module, opts, cache=use_cache)
        if lint:
            xc.lint(p)
        pipes.append(p)
        roles = d.roles_of(fn)
        modules.append({
            "module": p.module, "function": fn, "roles": roles,
            "what": "; ".join(ROLE_HELP.get(r, r) for r in roles),
            "latency": p.latency, "stages": p.stages, "file": f"{p.module}.v",
            "cached": p.cached,
        })
    _progress("done\n")
    report: dict[str, Any] = {
        "spec": spec.name, "spec_hash": spec.hash, "xls_version": xc.xls_version(),
        "clock_ns": clock, "clock_ps": opts.clock_ps, "delay_model": opts.delay_model,
        "arith": "own" if own_arith else "apfloat where it agrees with the contract",
        "dslx": f"{MODULE}.x", "generator": "pipeline",
        "interface": {"clock": "clk", "reset": opts.reset + " (synchronous, active high)",
                      "valid": [opts.input_valid, opts.output_valid],
                      "flop_inputs": opts.flop_inputs, "flop_outputs": opts.flop_outputs},
        "linted": lint, "modules": modules,
        "max_latency": max((m["latency"] for m in modules), default=0),
        "out": None,
    }
    if out is not None:
        dest = Path(out) / XLS_DIR
        report["out"] = str(dest)
        files = {f"{MODULE}.x": d.dslx.text, xc.WAIVER_FILE: xc.LINT_WAIVERS}
        for p in pipes:
            files[f"{p.module}.v"] = p.verilog
        files["xls.f"] = "".join(f"{p.module}.v\n" for p in pipes)
        # the file is deterministic: no cache flags (same spec and options -> same bytes)
        stable = {**report, "modules": [{k: v for k, v in m.items() if k != "cached"}
                                        for m in modules]}
        files[REPORT] = json.dumps(stable, indent=2, sort_keys=True) + "\n"
        _write_tree(dest, files)
    return report


def _ours(dest: Path) -> set[str]:
    """The files of an earlier ``hls -o`` (its hls.json) or ``generate`` in ``dest``."""
    names = {REPORT, "xls.f", "lightnorm_xls.x"}
    try:
        old = json.loads((dest / REPORT).read_text(encoding="utf-8"))
        names |= {str(old["dslx"])} | {str(m["file"]) for m in old["modules"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from lightnorm.tools.xls import WAIVER_FILE

    return names | {WAIVER_FILE}


def _write_tree(dest: Path, files: dict[str, str]) -> None:
    """Write into a fresh sibling directory, then swap it into place (refused when ``dest``
    holds a file lightnorm did not write: the swap would delete it)."""
    if dest.is_dir():
        foreign = sorted(p.name for p in dest.iterdir() if p.name not in _ours(dest) | set(files))
        if foreign:
            raise UsageError(f"--out: {dest} holds files lightnorm did not write ("
                             + ", ".join(foreign[:5]) + "); move them away or choose another "
                             "directory")
    elif dest.exists():
        raise UsageError(f"--out: {dest} exists and is not a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        for name, text in sorted(files.items()):
            (tmp / name).write_text(text)
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def cmd_hls(args: argparse.Namespace) -> int:
    report = run_hls(args.spec, clock_ns=getattr(args, "clock_ns", None),
                     delay_model=getattr(args, "delay_model", None),
                     out=getattr(args, "out", None), own_arith=getattr(args, "own_arith", False),
                     lint=getattr(args, "lint", False),
                     use_cache=not getattr(args, "no_cache", False))
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    console.print(f"[bold]{report['spec']}[/bold]: XLS {report['xls_version']}, "
                  f"{report['clock_ns']:g} ns, delay model {report['delay_model']}, "
                  f"arithmetic: {report['arith']}", markup=True)
    table = Table(title="pipelined modules (XLS)")
    table.add_column("module", style="bold")
    table.add_column("roles")
    table.add_column("stages", justify="right")
    table.add_column("latency", justify="right")
    for m in report["modules"]:
        table.add_row(m["module"], ", ".join(m["roles"]), str(m["stages"]), str(m["latency"]))
    console.print(table)
    cached = sum(1 for m in report["modules"] if m["cached"])
    tail = f"; written to {report['out']}" if report["out"] else ""
    console.print(f"{len(report['modules'])} modules ({cached} from the cache)"
                  f"{'; lint clean' if report['linted'] else ''}{tail}")
    return 0


__all__ = ["HLS_HELP", "add_hls_arguments", "cmd_hls", "run_hls"]
