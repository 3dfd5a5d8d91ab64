"""``lightnorm units [--formats fp32,bf16,fp16,fp(5,4)] [--json]``: area, delay and energy per
operation of single arithmetic units (add, multiply, reciprocal, square root) per format.

Each unit is the module the RTL generator uses in designs (:class:`lightnorm.codegen.rtl.Modules`:
``fp_add_*``, ``fp_mul_*``, ``fp_recip_*``, ``fp_sqrt_*``, round to nearest even), synthesized
alone and flat with the same script as the designs (:func:`lightnorm.cost.synth.synth_flat`:
ABC mapping with buffering and sizing at the clock period) and analysed by OpenSTA:

* add, multiply - combinational, **unregistered ports**: delay = worst input-to-output arrival
  (input delay 0, no output load beyond the netlist's own). Energy per operation = total power
  x clock period, with random operands (every input bit a fresh random value each cycle:
  activity 0.5, duty 0.5) propagated through the cells, one operation per cycle;
* reciprocal, square root - iterative (one result bit per cycle, ``p + 1`` cycles after the
  start cycle); delay = the shortest clock period (register to register, and inputs to
  registers), latency = cycles x that period. Energy per operation = total power x clock period
  x cycles, with the operand changing once per operation (activity 0.5 / cycles) and ``start``
  pulsing once; flip-flop outputs are estimated vectorlessly (D -> Q, iterated).

The area is that of the flat netlist (um^2 for the OSU 0.18 um cells). Results are cached with
the designs' synthesis results (``$LIGHTNORM_CACHE/synth/units``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightnorm.errors import UsageError
from lightnorm.spec import FPFormat, SpecError
from lightnorm.spec.formats import build_fp

# The synthesis machinery (Jinja2, the tool runners) is imported by the functions that use it,
# so that importing this module for the command table stays cheap.

UNITS_HELP = ("synthesize single add, multiply, reciprocal and square-root units per number "
              "format and tabulate area, delay and energy per operation")
KINDS = ("add", "mul", "recip", "sqrt")
NAMED_FORMATS = {"fp32": (8, 23), "tf32": (8, 10), "bf16": (8, 7), "fp16": (5, 10),
                 "fp8": (4, 3), "fp8e4m3": (4, 3), "fp8e5m2": (5, 2)}
DEFAULT_FORMATS = "fp32,bf16,fp16,fp(6,9),fp(5,4)"
DEFAULT_CLOCK_NS = 5.0
RANDOM = (0.5, 0.5)  # activity per cycle, duty of a fresh random bit each cycle


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
    # split at commas outside parentheses
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


def unit_files(kind: str, fmt: FPFormat) -> tuple[str, dict[str, str]]:
    """(module name, {file: Verilog}) of one unit as the RTL generator renders it."""
    from lightnorm.codegen.rtl import Modules, bits_for, exp_bound

    eu = bits_for(exp_bound([fmt], [], 1)) + 1
    reg = Modules(eu)
    if kind == "add":
        name = reg.add(fmt)
    elif kind == "mul":
        name = reg.mul(fmt, fmt)
    elif kind == "recip":
        name = reg.recip(fmt)
    elif kind == "sqrt":
        name = reg.sqrt(fmt)
    else:
        raise ValueError(f"unknown unit kind {kind!r}")
    return name, reg.text()


@dataclass(frozen=True)
class UnitResult:
    format: str
    label: str
    kind: str
    module: str
    width: int
    iterative: bool
    #: "unregistered (combinational)" or "registered (iterative)"
    ports: str
    area_um2: float
    cells: int
    flip_flops: int
    #: combinational: worst input-to-output delay; iterative: shortest clock period
    delay_ns: float
    cycles: int
    #: delay x cycles
    latency_ns: float
    clock_ns: float
    power_mw: float
    energy_pj_per_op: float
    critical_path: dict[str, Any]
    cache_key: str
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def synth_unit(kind: str, fmt: FPFormat, label: str | None = None,
               liberty: str | Path | None = None, clock_ns: float = DEFAULT_CLOCK_NS,
               cache: Path | None = None, use_cache: bool = True) -> UnitResult:
    """Synthesize one unit (cached): area, delay, cycles, energy per operation."""
    from lightnorm.cost.activity.netlist import annotation_lines, propagate, read_netlist
    from lightnorm.cost.synth import (
        SCRIPT_VERSION,
        _digest,
        files_digest,
        library,
        run_sta,
        synth_flat,
    )
    from lightnorm.tools.cache import cache_root
    from lightnorm.tools.eda import sta_version, yosys_package_version

    cache = Path(cache) if cache is not None else cache_root("synth")
    lib = library(liberty)
    name, files = unit_files(kind, fmt)
    key = _digest("unit", files_digest(files), name, lib.sha256, clock_ns,
                  yosys_package_version(), sta_version(), SCRIPT_VERSION)[:32]
    out = cache / "units" / f"{key}.json"
    if use_cache and out.is_file():
        try:
            data = json.loads(out.read_text())
            return dataclasses.replace(UnitResult(**data), cached=True)
        except (ValueError, TypeError):
            pass
    flat = synth_flat(files, name, lib.path, lib.sha256, clock_ns, cache, lib=lib.liberty)
    netlist = read_netlist(flat.netlist_path.read_text())
    iterative = kind in ("recip", "sqrt")
    cycles = fmt.precision + 2 if iterative else 1
    src: dict[str, tuple[float, float]] = {}
    for p in netlist.inputs:
        if p == "clk":
            continue
        if p == "rst":
            src[p] = (0.0, 0.0)
        elif p == "start":
            src[p] = (2.0 / cycles, 1.0 / cycles)
        else:
            src[p] = (RANDOM[0] / cycles, RANDOM[1])
    prop = propagate(netlist, lib.liberty, src, default=RANDOM,
                     d_to_q_iterations=4 if iterative else 0)
    sta = run_sta(cache / "units" / f"sta-{key}", lib.path, flat.netlist_path, name, clock_ns,
                  "clk" if iterative else None, {"op": annotation_lines(netlist, prop)})
    worst = sta.checks.worst("max")
    delay = clock_ns - worst.slack if iterative else worst.data_arrival
    power_w = sta.power["op"].total.total_w
    n_ff = sum(1 for i in netlist.instances
               if i.cell in lib.liberty.cells and lib.liberty.cells[i.cell].sequential)
    res = UnitResult(
        format=str(fmt), label=label or str(fmt), kind=kind, module=name, width=fmt.width,
        iterative=iterative,
        ports="registered (iterative)" if iterative else "unregistered (combinational)",
        area_um2=flat.area, cells=flat.stat.cells + flat.buffers_added, flip_flops=n_ff,
        delay_ns=delay, cycles=cycles, latency_ns=delay * cycles, clock_ns=clock_ns,
        power_mw=power_w * 1e3,
        energy_pj_per_op=power_w * clock_ns * 1e-9 * cycles * 1e12,
        critical_path={"start": worst.startpoint, "end": worst.endpoint,
                       "arrival_ns": worst.data_arrival},
        cache_key=key,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res.to_dict(), indent=1))
    return res


def units_table(formats: Sequence[tuple[str, FPFormat]], kinds: Sequence[str] = KINDS,
                liberty: str | Path | None = None, clock_ns: float = DEFAULT_CLOCK_NS,
                cache: Path | None = None) -> list[UnitResult]:
    return [synth_unit(k, f, label, liberty, clock_ns, cache) for label, f in formats
            for k in kinds]


# --- the command --------------------------------------------------------------------------------
def add_units_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lightnorm units`` besides ``--json`` (which cli.py adds)."""
    parser.add_argument("--formats", default=DEFAULT_FORMATS, metavar="LIST",
                        help="comma-separated formats: fp32, tf32, bf16, fp16, fp8e4m3, "
                             f"fp8e5m2, fp(E,M) or eEmM (default {DEFAULT_FORMATS}; quote "
                             "the parentheses in a shell)")
    parser.add_argument("--units", default=",".join(KINDS), metavar="LIST",
                        help=f"which units (default {','.join(KINDS)})")
    parser.add_argument("--liberty", default=None, metavar="PATH",
                        help="liberty file (default the OSU 0.18 um cells)")
    parser.add_argument("--clock-ns", type=float, default=DEFAULT_CLOCK_NS, metavar="T",
                        help=f"clock period for sizing, iterative units and energy per "
                             f"operation (default {DEFAULT_CLOCK_NS:g})")
    parser.epilog = ("add/mul: combinational, unregistered ports, delay = input-to-output; "
                     "recip/sqrt: iterative, delay = shortest clock period, latency = cycles x "
                     "delay. Energy per operation from OpenSTA report_power with random "
                     "operands. Round to nearest even. Results are cached.")


def cmd_units(args: argparse.Namespace) -> int:
    formats = parse_formats(args.formats)
    kinds = [k.strip() for k in str(getattr(args, "units", ",".join(KINDS))).split(",")
             if k.strip()]
    if not kinds:
        raise UsageError(f"--units = {getattr(args, 'units', '')!r}: expected a non-empty "
                         f"comma-separated list of {', '.join(KINDS)}")
    for k in kinds:
        if k not in KINDS:
            raise UsageError(f"--units: {k!r} is not a unit (known: {', '.join(KINDS)})")
    clock = float(getattr(args, "clock_ns", DEFAULT_CLOCK_NS))
    if not (math.isfinite(clock) and clock > 0):
        raise UsageError(f"--clock-ns = {clock!r}: expected a positive period in ns")
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


__all__ = ["UNITS_HELP", "UnitResult", "add_units_arguments", "cmd_units", "parse_format",
           "parse_formats", "synth_unit", "unit_files", "units_table"]
