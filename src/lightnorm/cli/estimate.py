"""``lightnorm estimate SPEC [--clock-ns T] [--liberty PATH] [--json]``: area by block, Fmax,
power, energy and cycles per element predicted without synthesizing the design
(:func:`lightnorm.cost.estimate.estimate`, docs/estimate.md); the JSON names its figures as
``lightnorm synth --json`` does, with ``"estimated": true``.

Registered in :data:`lightnorm.cli.core.COMMANDS` (``SPEC`` and ``--json`` are added by
cli.py). A bad spec or clock: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from lightnorm.cli import args as cliargs
from lightnorm.jsonsafe import json_safe
from lightnorm.spec import load

ESTIMATE_HELP = ("estimate area by block, Fmax, power and energy per element of a spec's RTL "
                 "in about a second, without synthesizing it (calibrated on synthesis)")


def add_estimate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightnorm estimate`` besides ``SPEC`` and ``--json``."""
    parser.add_argument("--liberty", default=None, metavar="PATH", type=cliargs.LIBERTY,
                        help="liberty file (default the OSU 0.18 um cells)")
    parser.add_argument("--clock-ns", type=cliargs.CLOCK_NS, default=None, metavar="T",
                        help="target clock period in ns (default the spec's hw.clock_ns)")
    parser.epilog = ("the modules of the design's registry are synthesized once each, alone, "
                     "and cached (a new spec's take seconds); the rest is counted and "
                     "calibrated against lightnorm synth (docs/estimate.md states the errors)")


def cmd_estimate(args: argparse.Namespace) -> int:
    from lightnorm.cost.estimate import estimate
    from lightnorm.cost.synth import BLOCKS

    spec = load(args.spec)
    est = estimate(spec, getattr(args, "clock_ns", None), getattr(args, "liberty", None))
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(json_safe(est.to_dict()), indent=2, allow_nan=False) + "\n")
        return 0
    out = [f"{est.spec} at {est.clock_ns:g} ns (estimated in {est.seconds:.2f} s)",
           f"  area          {est.area_um2:14,.0f} um2",
           *(f"    {b:<11} {est.area_breakdown.get(b, 0.0):14,.0f} um2" for b in BLOCKS),
           f"  flip-flops    {est.flip_flops:14,}",
           f"  Fmax          {est.fmax_mhz:14.1f} MHz (critical path {est.critical_ns:.3f} ns; "
           f"slowest planned stage {est.predicted_stage_ns:.3f} ns)"]
    for p in ("forward", "backward"):
        out.append(f"  {p:<9} {est.power_mw[p]:10.2f} mW  {est.energy_pj_per_element[p]:10.2f} "
                   f"pJ/element  {est.cycles_per_element[p]:.4f} cycles/element")
    out += [f"  note: {n}" for n in est.notes]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


__all__ = ["ESTIMATE_HELP", "add_estimate_arguments", "cmd_estimate"]
