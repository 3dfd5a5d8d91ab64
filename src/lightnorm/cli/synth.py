"""``lightnorm synth SPEC [--liberty PATH] [--clock-ns T] [--backend NAME] [--json]``:
area, timing, power and energy of a spec's RTL (:func:`lightnorm.cost.synth.synthesize`,
docs/synthesis.md; the xls backend: docs/xls.md).

Registered in :data:`lightnorm.cli.core.COMMANDS` as
``Command(cmd_synth, SYNTH_HELP, arguments=add_synth_arguments)`` (``SPEC`` and ``--json`` are
added by cli.py). A missing or failing tool raises :class:`~lightnorm.errors.ToolError`: one line
on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from lightnorm.backends import DEFAULT_BACKEND, get_backend
from lightnorm.cli import args as cliargs
from lightnorm.cli.args import add_backend_argument
from lightnorm.jsonsafe import json_safe
from lightnorm.spec import load

SYNTH_HELP = ("synthesize a spec's RTL on a standard-cell library (Yosys, OpenSTA): area by "
              "block, Fmax, power and energy per element from a simulation")


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightnorm synth`` besides ``SPEC`` and ``--json`` (which cli.py adds)."""
    parser.add_argument("--liberty", default=None, metavar="PATH", type=cliargs.LIBERTY,
                        help="liberty file (default the OSU 0.18 um cells of the Debian "
                             "package qflow-tech-osu018)")
    parser.add_argument("--clock-ns", type=cliargs.CLOCK_NS, default=None, metavar="T",
                        help="target clock period in ns (default the spec's hw.clock_ns)")
    parser.add_argument("--shape", default=None, metavar="N,C,H,W",
                        help="tensor simulated for the switching activity (default 2 channels "
                             "of 256 beats)")
    parser.add_argument("--seed", type=cliargs.SEED, default=0,
                        help="random seed of the simulated data")
    parser.add_argument("--flow", choices=("auto", "flat", "hier"), default="hier",
                        help="timing/power netlist: hier (map per module, then flatten; "
                             "default: works for every preset), flat (flatten, then map; ABC "
                             "crashes on fp32-baseline), auto (flat, hier if ABC crashes)")
    add_backend_argument(parser)
    parser.add_argument("--no-cache", action="store_true",
                        help="recompute every stage instead of reading the cache")
    parser.epilog = ("area from a hierarchical synthesis; timing and power from a flat, "
                     "buffered netlist in OpenSTA with switching activity from an RTL "
                     "simulation (x ~ N(0,1), dy ~ N(0,0.01^2)); no wires or placement. Results "
                     "are cached under $LIGHTNORM_CACHE/synth (default ~/.cache/lightnorm/synth).")


def cmd_synth(args: argparse.Namespace) -> int:
    from lightnorm.cost.activity import ActivityConfig
    from lightnorm.cost.synth import BLOCKS, synthesize

    spec = load(args.spec)
    clock = getattr(args, "clock_ns", None)
    shape = cliargs.parse_shape(args.shape) if getattr(args, "shape", None) else None
    seed = int(getattr(args, "seed", 0))
    res = synthesize(spec, liberty=getattr(args, "liberty", None), clock_ns=clock,
                     activity=ActivityConfig(shape=shape, seed=seed),
                     flow=getattr(args, "flow", "hier"),
                     use_cache=not getattr(args, "no_cache", False),
                     backend=getattr(args, "backend", DEFAULT_BACKEND))
    data = res.to_dict()
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    console.print(f"[bold]{res.spec}[/bold] ({res.backend} RTL) on {res.liberty} at "
                  f"{res.clock_ns:g} ns"
                  f"{' (cached)' if res.cached else ''}", markup=True)
    summary = Table(show_header=False, title="summary")
    summary.add_column("figure", style="bold")
    summary.add_column("value", justify="right")
    ge = res.gate_equivalents
    summary.add_row("area (hierarchical)", f"{res.area_um2:,.0f} um2 ({res.area_um2 / 1e6:.3f} "
                    "mm2)")
    if res.xls_area_um2 is not None:
        summary.add_row(f"{get_backend(res.backend).label}-generated modules",
                        f"{res.xls_area_um2:,.0f} um2 ("
                        f"{100 * res.xls_area_um2 / res.area_um2:.1f}% of the area)"
                        if res.area_um2 else "-")
    summary.add_row("area (flat, buffered: timing/power netlist)", f"{res.area_flat_um2:,.0f} um2")
    summary.add_row(f"gate equivalents (area / {res.nand2_cell})", f"{ge['nand2_area']:,.0f}")
    summary.add_row("gate equivalents (generic CMOS transistors / 4)",
                    f"{ge['generic_transistors_div4']:,.0f}")
    summary.add_row("cells / flip-flops (flat)", f"{res.cells:,} / {res.flip_flops:,}")
    summary.add_row("timing/power netlist flow", f"{res.timing_flow} ({res.buffers_added:,} "
                    "buffers added)")
    summary.add_row("Fmax", f"{res.fmax_mhz:.1f} MHz")
    summary.add_row("worst slack", f"{res.worst_slack_ns:.3f} ns"
                    + ("" if res.timing_met else " (VIOLATED)"))
    pred = res.predicted_critical_ns
    if pred is not None:
        meas = res.critical_ns
        summary.add_row("critical path: predicted (timing library) / measured",
                        f"{pred:.3f} / {meas:.3f} ns ({100 * (pred - meas) / meas:+.1f}%)")
    cp = res.critical_path
    summary.add_row("critical path", f"{cp.get('start_register', cp['start'])} -> "
                    f"{cp.get('end_register', cp['end'])} ({cp['arrival_ns']:.3f} ns)")
    console.print(summary)

    blocks = Table(title="area by block")
    blocks.add_column("block", style="bold")
    blocks.add_column("um2", justify="right")
    blocks.add_column("share", justify="right")
    for b in BLOCKS:
        a = res.area_breakdown.get(b, 0.0)
        blocks.add_row(b, f"{a:,.0f}", f"{100 * a / res.area_um2:.1f}%" if res.area_um2 else "-")
    blocks.add_row("total", f"{sum(res.area_breakdown.values()):,.0f}", "100.0%")
    console.print(blocks)

    passes = Table(title="power and energy (simulated activity)")
    for col in ("pass", "power mW", "internal", "switching", "leakage", "cycles/elem",
                "pJ/elem", "FFs simulated"):
        passes.add_column(col, justify="left" if col == "pass" else "right")
    for p in ("forward", "backward"):
        d = res.power_detail_mw[p]
        a = res.activity[p]
        passes.add_row(p, f"{res.power_mw[p]:.3f}", f"{d['internal']:.3f}",
                       f"{d['switching']:.3f}", f"{d['leakage']:.4f}",
                       f"{res.cycles_per_element[p]:.4f}",
                       f"{res.energy_pj_per_element[p]:.3f}",
                       f"{100 * a['simulated_fraction']:.1f}%")
    console.print(passes)
    w = res.activity["workload"]
    console.print(f"activity: {w['x']} x, {w['dy']} dy, shape {tuple(w['shape'])}, seed "
                  f"{w['seed']}; unmatched flip-flops at the mean simulated activity")
    for n in res.notes:
        console.print(f"note: {n}")
    return 0


__all__ = ["SYNTH_HELP", "add_synth_arguments", "cmd_synth"]
