"""``lightnorm units [--formats fp32,bf16,fp16,fp(5,4)] [--units LIST] [--json]``: area, delay
and energy per operation of single arithmetic units per format (:mod:`lightnorm.cost.units`);
``lightnorm units --spec SPEC [--clock-ns T]``: the characterized operator library a spec's
design is pipelined from (:mod:`lightnorm.codegen.timing`).

Registered in :data:`lightnorm.cli.core.COMMANDS` as
``Command(cmd_units, UNITS_HELP, takes_spec=False, arguments=add_units_arguments)``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from lightnorm.cli import args as cliargs
from lightnorm.cost.units import DEFAULT_CLOCK_NS, KINDS, units_table
from lightnorm.errors import UsageError
from lightnorm.spec import FPFormat, SpecError
from lightnorm.spec.formats import build_fp

UNITS_HELP = ("synthesize single add, multiply, reciprocal and square-root units per number "
              "format and tabulate area, delay and energy per operation")

NAMED_FORMATS = {"fp32": (8, 23), "tf32": (8, 10), "bf16": (8, 7), "fp16": (5, 10),
                 "fp8": (4, 3), "fp8e4m3": (4, 3), "fp8e5m2": (5, 2)}
DEFAULT_FORMATS = "fp32,bf16,fp16,fp(6,9),fp(5,4)"


def parse_format(text: str) -> FPFormat:
    """``fp32``, ``bf16``, ``fp16``, ``tf32``, ``fp8e4m3``, ``fp(5,4)``, ``e5m4`` -> FP(e, m)."""
    t = text.strip().lower().replace(" ", "")
    if t in NAMED_FORMATS:
        e, m = NAMED_FORMATS[t]
    else:
        mt = re.fullmatch(r"fp\((\d+),(\d+)\)|e(\d+)m(\d+)", t)
        if not mt:
            raise UsageError(f"--formats: {text!r} is not a format (known: "
                             f"{', '.join(NAMED_FORMATS)}, fp(E,M), eEmM)")
        e = int(mt.group(1) or mt.group(3))
        m = int(mt.group(2) or mt.group(4))
    try:
        return build_fp({"exp_bits": e, "man_bits": m, "rounding": "nearest"},
                        f"--formats {text}")
    except SpecError as exc:
        raise UsageError(str(exc)) from exc


def parse_formats(text: str) -> list[tuple[str, FPFormat]]:
    """The ``--formats`` list: (as written, format) per comma-separated entry (commas inside
    ``fp(E,M)`` do not split)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = [(p.strip(), parse_format(p)) for p in parts if p.strip()]
    if not out:
        raise UsageError("--formats: no format given")
    return out


def add_units_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightnorm units`` besides ``--json`` (which cli/core.py adds)."""
    parser.add_argument("--formats", default=DEFAULT_FORMATS, metavar="LIST",
                        help="comma-separated formats: fp32, tf32, bf16, fp16, fp8e4m3, "
                             f"fp8e5m2, fp(E,M) or eEmM (default {DEFAULT_FORMATS}; quote "
                             "the parentheses in a shell)")
    parser.add_argument("--units", default=",".join(KINDS), metavar="LIST",
                        help=f"which units (default {','.join(KINDS)})")
    parser.add_argument("--liberty", default=None, metavar="PATH", type=cliargs.LIBERTY,
                        help="liberty file (default the OSU 0.18 um cells)")
    parser.add_argument("--clock-ns", type=cliargs.CLOCK_NS, default=None, metavar="T",
                        help=f"clock period for sizing, iterative units and energy per "
                             f"operation (default {DEFAULT_CLOCK_NS:g})")
    parser.add_argument("--spec", default=None, metavar="SPEC",
                        help="instead: the timing library of a spec's design (preset name or "
                             "TOML path): each pipelinable module's section delays, area, "
                             "registers and energy per operation, and the registers chosen for "
                             "--clock-ns (default the spec's hw.clock_ns)")
    parser.epilog = ("add/mul: combinational, unregistered ports, delay = input-to-output; "
                     "recip/sqrt: iterative, delay = shortest clock period, latency = cycles x "
                     "delay. Energy per operation from OpenSTA report_power with random "
                     "operands. Round to nearest even. Results are cached.")


def _clock(args: argparse.Namespace, default: float) -> float:
    clock = getattr(args, "clock_ns", None)  # validated by its option parser
    return default if clock is None else float(clock)


def cmd_library(args: argparse.Namespace) -> int:
    """``lightnorm units --spec SPEC``: the characterized operator library a spec's design is
    pipelined from (:mod:`lightnorm.codegen.timing`), and the registers chosen for the clock."""
    from lightnorm.codegen.rtl import rtl_context, timing_plan
    from lightnorm.spec import load

    spec = load(args.spec)
    clock = _clock(args, spec.hw.clock_ns)
    t0 = time.perf_counter()
    plan = timing_plan(spec, clock, getattr(args, "liberty", None))
    rtl_context(spec, plan)  # the choices of this design
    summary = plan.summary()
    rows = []
    for u in summary["units"]:
        t = plan.timings[u["unit"]]
        rows.append({**u, "sections": t.sections, "section_logic_ns": list(t.logic_ns),
                     "stage_overhead_ns": t.overhead_ns, "area_um2_every_cut": t.area_um2,
                     "flip_flops_every_cut": t.flip_flops, "energy_pj_per_op": t.energy_pj})
    if getattr(args, "json", False):
        data = {k: v for k, v in summary.items() if k != "units"}
        data.update(spec=spec.name, seconds=time.perf_counter() - t0, units=rows)
        sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{spec.name}: pipelinable modules on {summary['liberty']}, clock "
                        f"{clock:g} ns (margin {plan.margin_ns:g} ns)")
    for col, just in (("module", "left"), ("section logic ns", "left"), ("area um2", "right"),
                      ("FFs", "right"), ("pJ/op", "right"), ("cuts", "left"),
                      ("stages ns", "left"), ("fits", "left")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["unit"], " ".join(f"{x:.2f}" for x in r["section_logic_ns"]),
                      f"{r['area_um2_every_cut']:,.0f}", str(r["flip_flops_every_cut"]),
                      f"{r['energy_pj_per_op']:.2f}", ",".join(map(str, r["cuts"])) or "-",
                      " ".join(f"{x:.2f}" for x in r["stage_ns"])
                      + (" *" if r.get("stages_characterized_as_placed") else "")
                      + (f" +{r['context_ns']:g}" if r.get("context_ns") else ""),
                      "yes" if r["fits"] else "NO")
    console = Console(file=sys.stdout, highlight=False, soft_wrap=False, width=160)
    console.print(table)
    placed = any(r.get("stages_characterized_as_placed") for r in rows)
    sys.stdout.write(
        f"stage = its sections' logic + {summary['stage_overhead_ns']:.2f} ns register overhead "
        f"+ {plan.margin_ns:g} ns margin"
        + ("; * a loop that does not fit: each stage characterized with the registers where "
           "they go, + overhead + margin" if placed else "")
        + ("; +C: C ns more for what the unit's context in the design adds"
           if any(r.get("context_ns") for r in rows) else "")
        + f"; predicted critical stage {summary['predicted_critical_ns']:.3f} ns. Area, "
        "flip-flops and energy with every cut registered. docs/timing.md\n")
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    if getattr(args, "spec", None):
        return cmd_library(args)
    formats = parse_formats(args.formats)
    kinds = [k.strip() for k in str(getattr(args, "units", ",".join(KINDS))).split(",")
             if k.strip()]
    if not kinds:
        raise UsageError(f"--units = {getattr(args, 'units', '')!r}: expected a non-empty "
                         f"comma-separated list of {', '.join(KINDS)}")
    for k in kinds:
        if k not in KINDS:
            raise UsageError(f"--units: {k!r} is not a unit (known: {', '.join(KINDS)})")
    clock = _clock(args, DEFAULT_CLOCK_NS)
    from lightnorm.cost.synth import library

    t0 = time.perf_counter()
    rows = units_table(formats, kinds, getattr(args, "liberty", None), clock)
    lib = library(getattr(args, "liberty", None))
    if getattr(args, "json", False):
        data = {"liberty": str(lib.path), "liberty_sha256": lib.sha256, "clock_ns": clock,
                "seconds": time.perf_counter() - t0, "units": [r.to_dict() for r in rows]}
        sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"arithmetic units on {lib.path.name}, clock {clock:g} ns")
    for col, just in (("format", "left"), ("unit", "left"), ("ports", "left"),
                      ("area um2", "right"), ("delay ns", "right"), ("cycles", "right"),
                      ("latency ns", "right"), ("pJ/op", "right")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r.format if r.label.lower() == r.format.lower() else
                      f"{r.label} {r.format}", r.kind, "reg" if r.iterative else "comb",
                      f"{r.area_um2:,.0f}", f"{r.delay_ns:.3f}", str(r.cycles),
                      f"{r.latency_ns:.2f}", f"{r.energy_pj_per_op:.3f}")
    Console(file=sys.stdout, highlight=False, soft_wrap=False, width=120).print(table)
    sys.stdout.write("comb: add/mul, combinational with unregistered ports, delay input to "
                     "output; reg: recip/sqrt, iterative, delay = shortest clock period, latency "
                     "= cycles x delay. Energy per operation at the clock above, random "
                     "operands.\n")
    return 0
