"""Area, timing, power and energy of a spec's RTL on a standard-cell library (docs/synthesis.md).

``synthesize(spec)`` renders ``lightnorm_top`` (the design of a backend,
:func:`lightnorm.backends.get_backend`; by default the template RTL) and

1. **area** - synthesizes it hierarchically with Yosys (``synth``; ``dfflibmap``/``abc`` on the
   liberty) and reads the per-module local areas (``stat -liberty -json``); walking the module
   tree from ``lightnorm_top`` gives the area of each block (:data:`BLOCKS`). The same run
   counts the generic gates of ``synth`` in CMOS transistors (``stat -tech cmos`` after
   ``dffunmap``), a library-independent size;
2. **timing and power** - synthesizes it again into one flat netlist with ABC buffering and gate
   sizing at the clock period (``map -D; buffer; upsize; dnsize``): flattened before mapping
   (flow "flat") or mapped per module and flattened after (flow "hier", for designs on which
   ABC crashes), then buffers the nets that still drive more than 8 inputs, and runs OpenSTA on
   it (hierarchical netlists leave nets unbuffered across module boundaries: nonsense delays
   and power). ``report_checks`` gives the worst path and Fmax;
3. **switching activity** - simulates one forward and one backward run of representative data
   on the RTL (Verilator, :mod:`lightnorm.cost.activity`), counts the toggles of every
   register bit and input port, matches them to the flat netlist's flip-flop outputs and input
   ports by name, propagates them through the combinational cells
   (:mod:`lightnorm.cost.activity.netlist`) and sets the activity of every pin in OpenSTA;
   ``report_power`` once per pass;
4. **energy per element** = power x clock period x cycles of the pass / elements of the pass,
   cycles counted in the same simulation.

Every stage is cached under ``$LIGHTNORM_CACHE/synth`` (default ``~/.cache/lightnorm/synth``),
keyed by what it depends on (RTL text, liberty file hash, clock, tool versions,
:data:`SCRIPT_VERSION`); the whole result too. At most one Yosys run per CPU runs at a time on
the machine (lock files, :func:`yosys_lock_path`, :func:`yosys_slots`), since CPU is scarce.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from lightnorm.backends import DEFAULT_BACKEND, get_backend
from lightnorm.codegen.rtl import TOP, verilog_sources
from lightnorm.cost.activity import (
    ACTIVITY_VERSION,
    VERILATOR_OPT,
    ActivityConfig,
    PassActivity,
    simulate,
    sources_for,
    traced_variables,
)
from lightnorm.cost.activity.netlist import (
    Netlist,
    Propagation,
    annotation_lines,
    annotation_names,
    read_netlist,
)
from lightnorm.errors import ToolError, UsageError
from lightnorm.spec import Spec, SpecError, check_channel_elems
from lightnorm.tools.cache import cache_root, write_entry
from lightnorm.tools.eda import (
    ABC_SCRIPT,
    MAX_FANOUT,
    SYNTH_OPTIONS,
    UNIT_ATTRIBUTE,
    find_osu018_liberty,
    sta_command,
    sta_version,
    tool_versions,
    yosys_command,
    yosys_package_version,
)
from lightnorm.tools.locks import file_lock, slot_lock
from lightnorm.tools.netlist import (
    Liberty,
    buffer_fanout,
    float_constants,
    read_liberty,
    sta_compatible,
)
from lightnorm.tools.parsers import (
    StaChecks,
    StaPower,
    YosysStat,
    parse_sta_checks,
    parse_sta_power,
    parse_yosys_stat,
    parse_yosys_stat_json,
)
from lightnorm.tools.runner import run_tool
from lightnorm.tools.verilator import verilator_version

#: bump when a Yosys script changes (invalidates cached syntheses)
SCRIPT_VERSION = "2"  # 2: timing netlists: synth -noabc, ABC balance + dch before mapping
#: bump when what a result holds or how it is computed from the stages changes
RESULT_VERSION = "6"  # 6: the timing plan (predicted critical path)
#: the blocks of the area breakdown, in report order
BLOCKS = ("statistics", "finalize", "normalize", "bfp_codec", "backward", "control")
PASSES = ("forward", "backward")
LIB_NAME = "cells.lib"



def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode() + b"\0")
    return h.hexdigest()


def files_digest(files: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()


# ==================================================================================================
# Yosys runs
# ==================================================================================================
def _stage_dir(kind: str, key: str, cache: Path) -> Path:
    return cache / kind / key[:24]


def _write_sources(d: Path, files: Mapping[str, str], liberty: Path) -> list[str]:
    d.mkdir(parents=True, exist_ok=True)
    srcs = []
    for name in verilog_sources(dict(files)):
        (d / name).write_text(files[name])
        srcs.append(name)
    shutil.copyfile(liberty, d / LIB_NAME)
    return srcs


#: how many Yosys runs may run at once on this machine (default: one per CPU)
SLOTS_ENV = "LIGHTNORM_SYNTH_SLOTS"


def yosys_lock_path(cache: Path) -> Path:
    """The base name of the lock files that bound the Yosys runs on the machine (in the
    temporary directory) unless ``LIGHTNORM_SYNTH_LOCK`` names another."""
    import os
    import tempfile

    env = os.environ.get("LIGHTNORM_SYNTH_LOCK")
    if env:
        return Path(env)
    del cache
    return Path(tempfile.gettempdir()) / "lightnorm-yosys.lock"


def yosys_slots() -> int:
    """At most this many Yosys runs at once: ``LIGHTNORM_SYNTH_SLOTS``, default one per CPU.
    (One at a time left a core idle whenever both flow workers reached Yosys together; each
    Yosys run is single-threaded.)"""
    import os

    env = os.environ.get(SLOTS_ENV)
    if env is None or not env.strip():
        return max(1, os.cpu_count() or 1)
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"{SLOTS_ENV} = {env!r}: expected a positive integer (Yosys runs at "
                         "once)")
    return n


def _run_yosys(d: Path, script_name: str, script: str, outputs: Sequence[str], purpose: str,
               cache: Path, timeout_s: float | None) -> float:
    (d / script_name).write_text(script)
    t0 = time.perf_counter()
    with slot_lock(yosys_lock_path(cache), yosys_slots()):  # CPU is scarce: a bounded number
        run_tool(yosys_command(d, script_name, outputs, purpose=purpose,
                               log=d / (Path(script_name).stem + ".log"), timeout_s=timeout_s))
    return time.perf_counter() - t0


def hierarchical_script(srcs: Sequence[str], top: str) -> str:
    return "\n".join([
        "read_verilog " + " ".join(srcs),
        f"hierarchy -check -top {top}",
        f"synth -top {top}",
        "design -save synthed",
        "dffunmap",
        "tee -o cmos_stat.txt stat -tech cmos",
        "design -load synthed",
        f"dfflibmap -liberty {LIB_NAME}",
        f"abc -liberty {LIB_NAME}",
        "opt_clean",
        f"tee -o lib_stat.txt stat -liberty {LIB_NAME}",
        f"tee -q -o lib_stat.json stat -liberty {LIB_NAME} -json",
        "",
    ])


def mapped_script(srcs: Sequence[str], top: str, clock_ps: int, flow: str) -> str:
    """The timing/power netlist: ``flat`` flattens, then one ABC run over the whole design;
    ``hier`` maps each module once (ABC buffering and sizing inside it), then flattens."""
    abc = ABC_SCRIPT.format(ps=clock_ps)
    per_module = flow != "flat"
    return "\n".join([
        "read_verilog " + " ".join(srcs),
        f"hierarchy -check -top {top}",
        f"synth -top {top} {SYNTH_OPTIONS}" + ("" if per_module else " -flatten"),
        # a unit of the timing library is mapped as one piece, as it was characterized
        *([f"flatten A:{UNIT_ATTRIBUTE}"] if per_module else []),
        f"dfflibmap -liberty {LIB_NAME}",
        f'abc -liberty {LIB_NAME} -script "{abc}"',
        "opt_clean",
        *([f"flatten {top}", f"hierarchy -top {top}", "opt_clean"] if per_module else []),
        "setundef -zero",
        "splitnets -ports -format __",
        f"tee -o flat_stat.txt stat -liberty {LIB_NAME}",
        "write_verilog -noattr -noexpr netlist_flat.v",
        "",
    ])


@dataclass(frozen=True)
class HierResult:
    stat: YosysStat
    generic_transistors: int
    generic_transistors_complete: bool
    seconds: float


def _transistors(text: str) -> tuple[int, bool]:
    """The design's estimated CMOS transistor count (the last ``stat -tech cmos`` figure)."""
    found = re.findall(r"Estimated number of transistors:\s+(\d+)(\+?)", text)
    if not found:
        raise ToolError("stat -tech cmos: no 'Estimated number of transistors' line")
    num, plus = found[-1]
    return int(num), plus != "+"


def synth_hierarchical(files: Mapping[str, str], top: str, liberty: Path, lib_hash: str,
                       cache: Path, timeout_s: float | None = None) -> HierResult:
    key = _digest("hier", files_digest(files), top, lib_hash, yosys_package_version(),
                  SCRIPT_VERSION)
    d = _stage_dir("hier", key, cache)
    done = d / "done.json"
    with file_lock(d.parent / f"{d.name}.lock"):
        if not done.is_file():
            if d.exists():
                shutil.rmtree(d)
            srcs = _write_sources(d, files, liberty)
            secs = _run_yosys(d, "hier.ys", hierarchical_script(srcs, top),
                              ("lib_stat.json", "lib_stat.txt", "cmos_stat.txt"),
                              f"hierarchical synthesis of {top}", cache, timeout_s)
            for name in srcs:
                (d / name).unlink()
            done.write_text(json.dumps({"seconds": secs}))
        secs = json.loads(done.read_text())["seconds"]
    stat = parse_yosys_stat_json((d / "lib_stat.json").read_text(), d / "lib_stat.json")
    tr, complete = _transistors((d / "cmos_stat.txt").read_text())
    return HierResult(stat, tr, complete, secs)


@dataclass(frozen=True)
class FlatResult:
    #: the netlist OpenSTA reads: assigns split per bit, high-fanout nets buffered
    netlist_path: Path
    stat: YosysStat
    seconds: float
    #: "flat" (flattened, then mapped) or "hier" (mapped per module, then flattened)
    flow: str
    buffers_added: int
    buffer_area: float

    @property
    def area(self) -> float:
        return float(self.stat.area or 0.0) + self.buffer_area


FLOWS = ("flat", "hier")
#: bump when the script of the "hier" flow changes
HIER_FLOW_VERSION = "3"  # 3: timing-library units mapped as one piece each
#: bump when the post-processing of the netlist for OpenSTA changes
BUFFER_VERSION = "4"  # 4: constant pins on undriven nets (float_constants)


class AbcCrash(ToolError):
    """Yosys's ABC (WebAssembly) crashed on a design (too big for the flat flow)."""


def synth_flat(files: Mapping[str, str], top: str, liberty: Path, lib_hash: str, clock_ns: float,
               cache: Path, timeout_s: float | None = None, flow: str = "flat",
               lib: Liberty | None = None) -> FlatResult:
    """The netlist for timing and power, mapped at ``clock_ns`` (cached).

    ``flow="flat"``: ``synth -flatten`` then one ABC run on the whole design (buffering and
    sizing across module boundaries). ``flow="hier"``: ABC per module, then ``flatten`` - much
    less memory and time for big designs (ABC in WebAssembly crashes on the flat FP32
    baseline), but no optimisation across module boundaries. Either way, nets that still drive
    more than :data:`MAX_FANOUT` cell inputs get buffer trees before OpenSTA reads the netlist
    (:func:`~.activity.netlist.buffer_fanout`). A crash of the flat flow is cached too
    (:class:`AbcCrash` again at once).
    """
    if flow not in FLOWS:
        raise ValueError(f"flow = {flow!r}: expected one of {FLOWS}")
    clock_ps = int(round(clock_ns * 1000))
    parts: tuple[Any, ...] = ("flat", files_digest(files), top, lib_hash, clock_ps,
                              yosys_package_version(), SCRIPT_VERSION)
    if flow != "flat":
        parts += (flow, HIER_FLOW_VERSION)
    key = _digest(*parts)
    d = _stage_dir("flat", key, cache)
    done = d / "done.json"
    failed = d / "failed.json"
    with file_lock(d.parent / f"{d.name}.lock"):
        if failed.is_file():
            raise AbcCrash(json.loads(failed.read_text())["error"])
        if not done.is_file():
            if d.exists():
                shutil.rmtree(d)
            srcs = _write_sources(d, files, liberty)
            script = mapped_script(srcs, top, clock_ps, flow)
            try:
                secs = _run_yosys(d, "flat.ys", script, ("netlist_flat.v", "flat_stat.txt"),
                                  f"{flow} synthesis of {top} at {clock_ns:g} ns", cache,
                                  timeout_s)
            except ToolError as exc:
                if "wasm trap" in str(exc) or "Abc_" in str(exc):
                    msg = (f"ABC crashed in the {flow} synthesis of {top} (WebAssembly trap; "
                           f"log {d / 'flat.log'})")
                    failed.write_text(json.dumps({"error": msg}))
                    raise AbcCrash(msg) from exc
                raise
            finally:
                for name in srcs:
                    if (d / name).exists():
                        (d / name).unlink()
            done.write_text(json.dumps({"seconds": secs}))
        secs = json.loads(done.read_text())["seconds"]
        sta_net = d / f"netlist_sta_b{BUFFER_VERSION}.v"
        info = d / f"buffers_b{BUFFER_VERSION}.json"
        if not (sta_net.is_file() and info.is_file()):
            liberty_cells = lib or read_liberty(liberty)
            text, n_buf, a_buf = buffer_fanout(
                sta_compatible((d / "netlist_flat.v").read_text()), liberty_cells, MAX_FANOUT)
            sta_net.write_text(float_constants(text))
            info.write_text(json.dumps({"buffers": n_buf, "area": a_buf}))
        binfo = json.loads(info.read_text())
    stat = parse_yosys_stat((d / "flat_stat.txt").read_text(), d / "flat_stat.txt")
    return FlatResult(sta_net, stat, secs, flow, int(binfo["buffers"]), float(binfo["area"]))


# ==================================================================================================
# OpenSTA
# ==================================================================================================
#: ``ln_annotate FILE``: every pin on a net of FILE gets that net's activity and duty. The pins
#: with a net, and their nets' names, are listed on the first call and reused by the next
#: (the second pass took as long as the first: 16 s of fp32-baseline's 106 s STA run).
_ANNOTATE_TCL = r"""
proc ln_annotate {file} {
  array unset ::ln_a
  set f [open $file r]
  while {[gets $f line] >= 0} {
    set parts [split $line "\t"]
    set ::ln_a([lindex $parts 0]) [lrange $parts 1 2]
  }
  close $f
  if {![info exists ::ln_pin_nets]} {
    set ::ln_net_pins {}
    set ::ln_pin_nets {}
    foreach p $::ln_pins {
      set n [$p net]
      if {$n == "NULL"} { continue }
      lappend ::ln_net_pins $p
      lappend ::ln_pin_nets [get_full_name $n]
    }
  }
  set hit 0
  set miss 0
  foreach p $::ln_net_pins nn $::ln_pin_nets {
    if {[info exists ::ln_a($nn)]} {
      set v $::ln_a($nn)
      sta::set_power_pin_activity $p [lindex $v 0] [lindex $v 1]
      incr hit
    } else {
      incr miss
    }
  }
  puts "LIGHTNORM-ANNOTATED $hit $miss"
}
"""


@dataclass(frozen=True)
class StaResult:
    checks: StaChecks
    power: dict[str, StaPower]
    #: pins whose activity was set / left (clock pins, unknown nets) per pass
    pins_annotated: dict[str, tuple[int, int]]
    log: Path


#: an instance name :func:`run_sta` can put in a Tcl command as it is
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def plain_instance(netlist: Netlist) -> str | None:
    """The first instance of ``netlist`` with a plain name (``run_sta``'s ``propagate_on``)."""
    return next((i.name for i in netlist.instances if _PLAIN_NAME.fullmatch(i.name)), None)


def run_sta(d: Path, liberty: Path, netlist: Path, top: str, clock_ns: float,
            clock_port: str | None, annotations: Mapping[str, Sequence[str]],
            timeout_s: float | None = None, propagate_on: str | None = None) -> StaResult:
    """Timing (worst max path) and one ``report_power`` per entry of ``annotations``.

    ``annotations[name]``: ``net<TAB>activity<TAB>duty`` lines; every pin on such a net gets
    that activity after OpenSTA's own propagation (see :mod:`.activity.netlist`). Inputs and
    outputs are constrained with 0 delay to the clock (a virtual clock when ``clock_port`` is
    None), so input-to-output paths of a combinational unit get the whole period.
    ``propagate_on``: an instance of the netlist with a plain name; OpenSTA's own propagation
    is then triggered by the power of that one instance instead of the whole design's (the
    same propagation, over the whole design: fp32-baseline's power reports are identical; the
    call takes 6-7 s instead of 10, most of it the propagation itself).
    """
    if propagate_on is not None and not _PLAIN_NAME.fullmatch(propagate_on):
        raise ValueError(f"propagate_on = {propagate_on!r}: expected a plain instance name")
    # the instance is looked up outside the catch below: a failed lookup must not pass for a
    # propagation
    first = [f"set ln_first [get_cells {propagate_on}]"] if propagate_on else []
    first_power = ("report_power -instances $ln_first -digits 6" if propagate_on
                   else "report_power -digits 6")
    d.mkdir(parents=True, exist_ok=True)
    clk = f"[get_ports {clock_port}]" if clock_port else ""
    inputs = (f"[delete_from_list [all_inputs] [get_ports {clock_port}]]" if clock_port
              else "[all_inputs]")
    lines = [
        f"read_liberty {liberty}",
        f"read_verilog {netlist}",
        f"link_design {top}",
        f"create_clock -name clk -period {clock_ns:g} {clk}".rstrip(),
        f"set_input_delay 0 -clock clk {inputs}",
        "set_output_delay 0 -clock clk [all_outputs]",
        "report_checks -path_delay max -digits 4",
        "puts LIGHTNORM-CHECKS-END",
        _ANNOTATE_TCL,
        # OpenSTA propagates its own activities on the first report_power; pin activities set
        # after it are used as set (later calls do not propagate again). The pin list is taken
        # after it: pins fetched before the first report_power crash this OpenSTA build on
        # large netlists (SIGSEGV in the next report_power). Its own figures are not used, and
        # with undriven constant nets (float_constants) it can fail to print a NaN share: caught.
        *first,
        f"catch {{{first_power}}} ln_first_power",
        "set ::ln_pins [get_pins */*]",
    ]
    for name, ann in annotations.items():
        f = d / f"act_{name}.txt"
        f.write_text("\n".join(ann) + "\n")
        lines += [f"puts LIGHTNORM-POWER-{name}", f"ln_annotate {f.name}",
                  "report_power -digits 6"]
    lines.append("")
    (d / "sta.tcl").write_text("\n".join(lines))
    log = d / "sta.log"
    run_tool(sta_command(d, "sta.tcl", purpose=f"timing and power of {top}", log=log,
                         timeout_s=timeout_s))
    text = log.read_text(encoding="utf-8", errors="replace")
    head, _, rest = text.partition("LIGHTNORM-CHECKS-END")
    checks = parse_sta_checks(head, log)
    power: dict[str, StaPower] = {}
    pins: dict[str, tuple[int, int]] = {}
    names = list(annotations)
    for i, name in enumerate(names):
        start = rest.find(f"LIGHTNORM-POWER-{name}")
        end = rest.find(f"LIGHTNORM-POWER-{names[i + 1]}") if i + 1 < len(names) else len(rest)
        if start < 0:
            raise ToolError(f"OpenSTA log {log}: no power report for {name}")
        chunk = rest[start:end]
        power[name] = parse_sta_power(chunk, log)
        m = re.search(r"LIGHTNORM-ANNOTATED (\d+) (\d+)", chunk)
        pins[name] = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return StaResult(checks, power, pins, log)


# ==================================================================================================
# Area breakdown
# ==================================================================================================
def classify(module: str, parent: str, parent_is_top: bool) -> str:
    """The block of a module instance (by module name; else its parent's block).

    ``bfp_*`` -> bfp_codec wherever it sits; ``ln_sum_x``/``ln_extrema``/``ln_const`` ->
    statistics; ``ln_finalize``, ``fp_recip*``, ``fp_sqrt*`` -> finalize; ``ln_fwd_lanes`` ->
    normalize; ``ln_bwd_lanes``/``ln_sum_dy``/``ln_sum_xdy`` -> backward. Format converters
    instantiated by the top itself (the S -> P copies of the per-channel scalars for the
    lanes) count as finalize. Everything else inherits its parent's block; the top's own
    cells are ``control``.
    """
    if module.startswith("bfp_"):
        return "bfp_codec"
    if module in ("ln_sum_x", "ln_extrema", "ln_const"):
        return "statistics"
    if module == "ln_finalize" or module.startswith(("fp_recip", "fp_sqrt")):
        return "finalize"
    if module == "ln_fwd_lanes":
        return "normalize"
    if module in ("ln_bwd_lanes", "ln_sum_dy", "ln_sum_xdy"):
        return "backward"
    if parent_is_top and module.startswith("fp_cvt"):
        return "finalize"
    return parent


def area_breakdown(stat: YosysStat, top: str = TOP,
                   classify_fn: Callable[[str, str, bool], str] = classify
                   ) -> dict[str, float]:
    """Area (liberty units) per block, from the per-module local areas of a hierarchical stat."""
    out = {b: 0.0 for b in BLOCKS}
    if top not in stat.modules:
        raise ToolError(f"hierarchical stat: no module {top}")

    def walk(mod: str, block: str, mult: int, depth: int) -> None:
        if depth > 64:
            raise ToolError(f"module hierarchy deeper than 64 at {mod} (recursive?)")
        m = stat.modules[mod]
        out[block] = out.get(block, 0.0) + mult * float(m.area or 0.0)
        for sub, count in m.submodules.items():
            if sub not in stat.modules:
                raise ToolError(f"hierarchical stat: submodule {sub} of {mod} has no section")
            walk(sub, classify_fn(sub, block, mod == top), mult * count, depth + 1)

    walk(top, "control", 1, 0)
    return out


# ==================================================================================================
# The result
# ==================================================================================================
@dataclass(frozen=True)
class SynthResult:
    """Area, timing, power and energy of one spec on one library at one clock (see the module
    docstring for how each figure is obtained). Areas in um^2 (the liberty's unit for OSU),
    power in mW, energy in pJ."""

    spec: str
    spec_hash: str
    rtl_sha256: str
    top: str
    liberty: str
    liberty_sha256: str
    clock_ns: float
    #: chip area of the hierarchical synthesis (sum of the blocks)
    area_um2: float
    #: block -> area (um^2); sums to area_um2
    area_breakdown: dict[str, float]
    #: area of the flat, buffered and sized netlist that timing and power are computed on
    #: (including the buffers added for high-fanout nets)
    area_flat_um2: float
    #: how that netlist was made: "flat" (flatten, then map) or "hier" (map per module, then
    #: flatten), and how many buffers were added on high-fanout nets before OpenSTA
    timing_flow: str
    buffers_added: int
    #: ``nand2_area``: area_um2 / area of the liberty's NAND2 (NAND2X1);
    #: ``generic_transistors_div4``: CMOS transistors of Yosys's generic gates (``synth``;
    #: ``stat -tech cmos`` after ``dffunmap``) / 4, library independent
    gate_equivalents: dict[str, float]
    nand2_cell: str
    nand2_area_um2: float
    generic_transistors: int
    cells: int
    flip_flops: int
    fmax_mhz: float
    worst_slack_ns: float
    timing_met: bool
    #: worst max-delay path: start, end, arrival_ns
    critical_path: dict[str, Any]
    #: pass -> total power (mW) with that pass's simulated activity
    power_mw: dict[str, float]
    #: pass -> internal, switching, leakage, total (mW)
    power_detail_mw: dict[str, dict[str, float]]
    #: pass -> pJ per tensor element (power x period x cycles / elements)
    energy_pj_per_element: dict[str, float]
    cycles_per_element: dict[str, float]
    #: how the switching activity was obtained (simulation workload, coverage, fallbacks)
    activity: dict[str, Any]
    tool_versions: dict[str, str | None]
    #: wall time of each stage when it ran (cached stages keep their original time)
    seconds: dict[str, float]
    notes: list[str]
    cache_key: str
    #: True when this object came from the cache
    cached: bool = False
    #: the design under ``lightnorm_top``: a backend's name (:mod:`lightnorm.backends`)
    backend: str = DEFAULT_BACKEND
    #: area of the modules another tool generated (``Backend.generated_modules``: the XLS
    #: backend's ``xls_*``) in the hierarchical synthesis; None for a design without any
    #: (the name predates other backends; cached results carry it)
    xls_area_um2: float | None = None
    #: the delay target the timing netlist was mapped at (None: ``clock_ns``)
    map_clock_ns: float | None = None
    #: what the backend predicted when it pipelined the design (``Backend.timing``: the clock,
    #: each pipelined unit's registers and stage delays, ``predicted_critical_ns``); None for
    #: a backend without a prediction on this liberty
    timing_plan: dict[str, Any] | None = None
    #: each module's own area (um^2) and flip-flops in the hierarchical synthesis, without its
    #: submodules' (what the estimate's calibration fits the spec-level modules on); None in
    #: results cached before they were recorded
    module_area_um2: dict[str, float] | None = None
    module_flip_flops: dict[str, int] | None = None

    @property
    def predicted_critical_ns(self) -> float | None:
        """The slowest register stage the backend predicted (None: no prediction)."""
        return None if self.timing_plan is None else self.timing_plan["predicted_critical_ns"]

    @property
    def critical_ns(self) -> float:
        """The measured critical path: the shortest period this netlist meets."""
        return self.clock_ns - self.worst_slack_ns

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SynthResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class LibraryInfo:
    path: Path
    sha256: str
    liberty: Liberty = field(repr=False)


@lru_cache(maxsize=8)
def _library(path: str, mtime: float) -> LibraryInfo:
    p = Path(path)
    return LibraryInfo(p, _sha256_file(p), read_liberty(p))


def library(liberty: str | Path | None = None) -> LibraryInfo:
    p = find_osu018_liberty(liberty).resolve()
    return _library(str(p), p.stat().st_mtime)


def register_name(netlist: Netlist, lib: Liberty, point: str) -> str:
    """The RTL name behind an OpenSTA start/end point: a flip-flop's output net (Yosys keeps
    the register's name on it), else the point itself (a port)."""
    for inst in netlist.instances:
        if inst.name == point:
            cell = lib.cells.get(inst.cell)
            if cell is not None:
                for pin in cell.outputs:
                    if pin in inst.pins:
                        return inst.pins[pin]
            break
    return point


def _ff_nets(netlist: Netlist, lib: Liberty) -> list[str]:
    out = []
    for inst in netlist.instances:
        cell = lib.cells.get(inst.cell)
        if cell is not None and cell.sequential:
            out += [inst.pins[p] for p in cell.outputs if p in inst.pins]
    return out


def _period_ns(name: str, value: float | None, default: float) -> float:
    """A clock period argument (``default`` when None), checked: SpecError unless > 0."""
    t = float(value if value is not None else default)
    if not (math.isfinite(t) and t > 0):
        raise SpecError(name, value, "a positive clock period in ns")
    return t


def map_target_ns(spec: Spec, clock_ns: float, liberty: str | Path | None = None) -> float:
    """ABC's delay target for the logic of a stage at ``clock_ns``: the budget the register
    placement was chosen for (:mod:`lightnorm.codegen.timing`): the clock less the stage
    overhead (clock-to-Q, enable multiplexer, setup) and the margin. ABC's own delay estimate
    is optimistic against OpenSTA's, by about that margin: mapped to the clock less the
    overhead alone, stages the library predicted to fit came out a few tenths of a ns long."""
    from lightnorm.codegen.rtl import timing_plan

    plan = timing_plan(spec, clock_ns, liberty)
    return round(max(0.1 * clock_ns, clock_ns - plan.overhead_ns - plan.margin_ns), 3)


#: how a note on the timing plan begins (:func:`plan_notes`)
PLAN_NOTE = "the timing library predicts that "


def plan_notes(plan: Mapping[str, Any] | None, clock_ns: float) -> list[str]:
    """A note per unit the backend's timing plan predicts not to fit the clock."""
    return [f"{PLAN_NOTE}{u['unit']} does not fit {clock_ns:g} ns "
            f"(stages {', '.join(f'{x:.2f}' for x in u['stage_ns'])} ns): "
            f"{u.get('why', 'every cut point is registered')}"
            for u in (plan or {}).get("units", []) if not u.get("fits", True)]


def timing_not_met_note(clock_ns: float, slack_ns: float,
                        reach: str = "which this netlist does not reach") -> str:
    """The note on a design that does not meet its clock (negative ``slack_ns``)."""
    return (f"timing not met at {clock_ns:g} ns (worst slack {slack_ns:.3f} ns): power and "
            f"energy are at the {clock_ns:g} ns clock, {reach}")


def _with_plan_notes(notes: Sequence[str], new: Sequence[str]) -> list[str]:
    """``notes`` with its notes on the timing plan replaced by ``new``, in their place
    (before the note that the clock is not met)."""
    at = next((i for i, n in enumerate(notes) if n.startswith((PLAN_NOTE, "timing not met"))),
              len(notes))
    rest = [n for n in notes if not n.startswith(PLAN_NOTE)]
    at = min(at, len(rest))
    return [*rest[:at], *new, *rest[at:]]


def synthesize(spec: Spec, liberty: str | Path | None = None, clock_ns: float | None = None,
               activity: ActivityConfig | None = None, *, flow: str = "hier",
               use_cache: bool = True, cache: Path | None = None,
               timeout_s: float | None = None, backend: str = DEFAULT_BACKEND,
               schedule_clock_ns: float | None = None,
               map_clock_ns: float | None = None) -> SynthResult:
    """Synthesize ``spec``'s ``lightnorm_top`` and report area, timing, power and energy.

    ``liberty``: a liberty file (default the OSU 0.18 um cells); ``clock_ns``: the target clock
    (default ``spec.hw.clock_ns``); ``activity``: the simulated workload (default
    :class:`ActivityConfig`: x ~ N(0, 1), dy ~ N(0, 0.01^2), 2 channels of 256 beats);
    ``flow``: how the timing/power netlist is made (:func:`synth_flat`): "flat", "hier", or
    "auto" (flat, and hier when ABC crashes on the flat design); ``backend``: the design's
    backend (:func:`lightnorm.backends.backend_names`: the template RTL, or the template
    shell around XLS-generated logic), whose own pipelines (if any) are scheduled at
    ``schedule_clock_ns``, default this clock (the switching activity and cycle counts come
    from a simulation of the design synthesized, whichever backend); ``map_clock_ns``: the delay
    target ABC maps the timing netlist at (default ``clock_ns`` less the register overhead of a
    stage the timing library measured, :func:`map_target_ns`: ABC sees the logic between
    registers, not their clock-to-Q and setup; it trades speed for area when the target is
    loose, so a netlist mapped at a tight target and timed at a looser clock is a fixed
    netlist under a new constraint). Raises
    :class:`~lightnorm.errors.ToolError` when a tool is missing or fails.
    """
    t_start = time.perf_counter()
    cache = Path(cache) if cache is not None else cache_root("synth")
    clk = _period_ns("clock_ns", clock_ns, spec.hw.clock_ns)
    map_clk = _period_ns("map_clock_ns", map_clock_ns, map_target_ns(spec, clk, liberty))
    if flow not in ("auto", *FLOWS):
        raise SpecError("flow", flow, "one of auto, " + ", ".join(FLOWS))
    cfg = (activity or ActivityConfig()).resolve(spec)
    shape = cfg.shape or (1, 1, 1, 1)
    check_channel_elems(spec, shape[0] * shape[2] * shape[3])  # SpecError before any tool runs
    b = get_backend(backend)
    lib = library(liberty)
    sched = _period_ns("schedule_clock_ns", schedule_clock_ns, clk)
    files = b.render(spec, clock_ns=sched, liberty=liberty)
    plan = b.timing(spec, clock_ns=sched, liberty=liberty)
    tag = b.cache_tag()
    backend_key = ("backend", *tag) if tag else ()
    rtl_hash = files_digest(files)
    key = _digest("result", spec.hash, rtl_hash, lib.sha256, clk, yosys_package_version(),
                  sta_version(), verilator_version(), cfg.to_dict(), SCRIPT_VERSION,
                  RESULT_VERSION, BUFFER_VERSION, flow, *backend_key,
                  *(("map", map_clk) if map_clk != clk else ()),
                  # how the activity is simulated (what a traced array may hold, say)
                  "activity", ACTIVITY_VERSION, *VERILATOR_OPT)
    result_file = cache / "results" / f"{key[:32]}.json"
    if use_cache and result_file.is_file():
        try:
            cached = SynthResult.from_dict(json.loads(result_file.read_text()))
        except (ValueError, TypeError):
            pass  # a damaged or outdated cache entry: recompute
        else:
            # the measurement is the cached one; the plan is a prediction for the same RTL
            # (same registers), made by today's library: a better prediction (a loop
            # characterized as placed) replaces the one made when it was synthesized
            return dataclasses.replace(
                cached, cached=True, timing_plan=plan,
                notes=_with_plan_notes(cached.notes, plan_notes(plan, clk)))

    notes: list[str] = []
    hier = synth_hierarchical(files, TOP, lib.path, lib.sha256, cache, timeout_s)
    if hier.stat.area is None:
        raise ToolError("hierarchical stat has no area (liberty not applied?)")
    if hier.stat.unknown_area_types:
        notes.append("cell types without area in the hierarchical stat: "
                     + ", ".join(hier.stat.unknown_area_types))
    breakdown = area_breakdown(hier.stat)
    generated_area = None
    generated = b.generated_modules(files)
    if generated:
        # a generated module and everything below it against the rest
        generated_area = area_breakdown(hier.stat, classify_fn=lambda m, parent, _top: (
            "generated" if m in generated or parent == "generated" else "shell")
        ).get("generated", 0.0)
    if b.name != DEFAULT_BACKEND:
        notes.append(f"{b.name} backend: switching activity and cycle counts from a simulation "
                     "of its design itself")
    if not hier.generic_transistors_complete:
        notes.append("stat -tech cmos did not know every generic cell: the transistor count "
                      "is a lower bound")
    flows = ["flat", "hier"] if flow == "auto" else [flow]
    for i, fl in enumerate(flows):
        try:
            flat = synth_flat(files, TOP, lib.path, lib.sha256, map_clk, cache, timeout_s, flow=fl,
                              lib=lib.liberty)
            break
        except AbcCrash as exc:
            if i + 1 == len(flows):
                raise
            notes.append(f"{exc}; the timing and power netlist was mapped per module instead "
                         "(flow 'hier')")
    t_read = time.perf_counter()
    netlist = read_netlist(flat.netlist_path.read_text())
    ff_nets = _ff_nets(netlist, lib.liberty)
    ports = [q for q in netlist.inputs if q != "clk"]
    read_secs = time.perf_counter() - t_read
    # only what the netlist can match is traced (activity.tracing): the same activities
    sim = simulate(spec, cfg, cache=cache, use_cache=use_cache, design=files,
                   trace=traced_variables(ports + ff_nets))

    t_sta = time.perf_counter()
    annotations: dict[str, list[str]] = {}
    act_info: dict[str, Any] = {}
    propagation = Propagation(netlist, lib.liberty)  # the passes share the netlist's levels
    names = annotation_names(netlist)
    for p in PASSES:
        pa: PassActivity = sim.passes[p]
        src = sources_for(pa, ports + ff_nets)
        matched_ff = [n for n in ff_nets if n in src]
        ff_acts = [src[n][0] for n in matched_ff]
        fallback = (sum(ff_acts) / len(ff_acts), 0.5) if ff_acts else (0.1, 0.5)
        prop = propagation.run(src, default=fallback)
        annotations[p] = annotation_lines(netlist, prop, names)
        act_info[p] = {
            "cycles": pa.cycles,
            "elements": pa.elements,
            "flip_flops": len(ff_nets),
            "flip_flops_simulated": len(matched_ff),
            "simulated_fraction": len(matched_ff) / len(ff_nets) if ff_nets else 1.0,
            "mean_flip_flop_activity": fallback[0] if ff_acts else None,
            "input_ports": prop.inputs,
            "input_ports_simulated": prop.inputs_annotated,
            "fallback": {"flip_flops": len(ff_nets) - len(matched_ff),
                         "activity": fallback[0], "duty": fallback[1],
                         "rule": "mean activity of the simulated flip-flops of this pass, "
                                 "duty 0.5" if ff_acts else "0.1, duty 0.5"},
        }
    sta = run_sta(_stage_dir("sta", key, cache), lib.path, flat.netlist_path, TOP, clk, "clk",
                  annotations, timeout_s, propagate_on=plain_instance(netlist))
    sta_secs = read_secs + time.perf_counter() - t_sta  # reading the netlist counts here
    for p in PASSES:
        act_info[p]["pins_annotated"], act_info[p]["pins_left"] = sta.pins_annotated[p]

    worst = sta.checks.worst("max")
    period_used = clk - worst.slack
    fmax = 1000.0 / period_used if period_used > 0 else math.inf
    notes += plan_notes(plan, clk)
    if not worst.met:
        notes.append(timing_not_met_note(clk, worst.slack))
    power = {p: sta.power[p].total.total_w * 1e3 for p in PASSES}
    detail = {p: {"internal": sta.power[p].total.internal_w * 1e3,
                  "switching": sta.power[p].total.switching_w * 1e3,
                  "leakage": sta.power[p].total.leakage_w * 1e3,
                  "total": sta.power[p].total.total_w * 1e3} for p in PASSES}
    energy = {p: sta.power[p].total.total_w * clk * 1e-9 * sim.passes[p].cycles
              / sim.passes[p].elements * 1e12 for p in PASSES}
    cpe = {p: sim.passes[p].cycles / sim.passes[p].elements for p in PASSES}
    nand = lib.liberty.nand2()
    area = float(hier.stat.area)
    total_bd = sum(breakdown.values())
    if abs(total_bd - area) > 1e-6 * max(1.0, area):
        notes.append(f"the block areas add up to {total_bd:.1f}, not the chip area {area:.1f}")
    versions = dict(tool_versions())
    versions["verilator"] = verilator_version()
    versions["sta"] = versions.get("sta") or sta_version()
    flat_area = flat.area
    own = module_costs(hier.stat, lib.liberty)
    result = SynthResult(
        spec=spec.name, spec_hash=spec.hash, rtl_sha256=rtl_hash, top=TOP,
        liberty=str(lib.path), liberty_sha256=lib.sha256, clock_ns=clk,
        area_um2=area, area_breakdown=breakdown, area_flat_um2=flat_area,
        timing_flow=flat.flow, buffers_added=flat.buffers_added,
        gate_equivalents={"nand2_area": area / nand.area,
                          "generic_transistors_div4": hier.generic_transistors / 4.0},
        nand2_cell=nand.name, nand2_area_um2=nand.area,
        generic_transistors=hier.generic_transistors,
        cells=flat.stat.cells + flat.buffers_added, flip_flops=len(ff_nets),
        fmax_mhz=fmax, worst_slack_ns=worst.slack, timing_met=worst.met,
        critical_path={"start": worst.startpoint, "end": worst.endpoint,
                       "start_register": register_name(netlist, lib.liberty, worst.startpoint),
                       "end_register": register_name(netlist, lib.liberty, worst.endpoint),
                       "arrival_ns": worst.data_arrival},
        power_mw=power, power_detail_mw=detail, energy_pj_per_element=energy,
        cycles_per_element=cpe,
        activity={
            "method": "RTL simulation (Verilator) of one forward and one backward run: "
                      "per-bit toggles and high time of every register and input port, "
                      "matched to the flat netlist by name; combinational nets propagated "
                      "(spatial independence, zero delay); clock at 2 toggles per cycle",
            "workload": {**cfg.to_dict(), "x": f"N(0, {cfg.x_std:g}^2)",
                         "dy": f"N(0, {cfg.dy_std:g}^2)"},
            **act_info,
        },
        tool_versions=versions,
        seconds={"hierarchical_synthesis": hier.seconds, "flat_synthesis": flat.seconds,
                 "activity_build": sim.build_seconds, "activity_simulation": sim.sim_seconds,
                 "sta": sta_secs, "total_this_call": time.perf_counter() - t_start},
        notes=notes, cache_key=key[:32], backend=b.name, xls_area_um2=generated_area,
        map_clock_ns=map_clk if map_clk != clk else None, timing_plan=plan,
        module_area_um2=own[0], module_flip_flops=own[1],
    )
    write_entry(result_file, json.dumps(result.to_dict(), indent=1, allow_nan=True))
    return result


def module_costs(stat: YosysStat, liberty: Liberty) -> tuple[dict[str, float], dict[str, int]]:
    """Each module's own area (um^2) and flip-flops in a hierarchical stat (not its
    submodules')."""
    seq = liberty.sequential_cells
    return ({m: float(s.area or 0.0) for m, s in stat.modules.items()},
            {m: sum(n for c, n in s.cell_types.items() if c in seq)
             for m, s in stat.modules.items()})


def import_results(results: Sequence[Mapping[str, Any]], cache: Path | None = None) -> int:
    """Put synthesis results (``SynthResult.to_dict()``, from another machine or an earlier
    cache) into the results cache under their own keys; returns how many were new. Nothing is
    trusted beyond the key: :func:`synthesize` reads a result only under the key it computes for
    today's spec, RTL, liberty, tools and scripts, so a result of other code is never used.
    Raises :class:`ValueError` naming the first result that is not one (nothing written)."""
    cache = Path(cache) if cache is not None else cache_root("synth")
    checked: list[tuple[str, SynthResult]] = []
    for i, data in enumerate(results):
        try:
            res = SynthResult.from_dict(data)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"result {i}: not a synthesis result ({exc})") from None
        key = res.cache_key
        if not (isinstance(key, str) and re.fullmatch(r"[0-9a-f]{32}", key)):
            raise ValueError(f"result {i} ({res.spec}): cache_key {key!r}, expected 32 "
                             "hexadecimal digits")
        checked.append((key, res))
    new = 0
    for key, res in checked:
        path = cache / "results" / f"{key}.json"
        if path.is_file():
            continue
        data = dataclasses.replace(res, cached=False).to_dict()
        write_entry(path, json.dumps(data, indent=1, allow_nan=True))
        new += 1
    return new


__all__ = ["BLOCKS", "PLAN_NOTE", "SCRIPT_VERSION", "ActivityConfig", "SynthResult",
           "area_breakdown", "classify", "import_results", "library", "module_costs",
           "plain_instance", "plan_notes", "run_sta", "synth_flat", "synth_hierarchical",
           "synthesize", "timing_not_met_note"]
