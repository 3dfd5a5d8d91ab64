"""Cost estimates without synthesizing the design (issue 18, docs/estimate.md).

``estimate(spec)`` predicts what :func:`lightnorm.cost.synth.synthesize` measures (area by
block, Fmax, power and energy per element, cycles per element) in about a second, from

1. **the module library**: every module of the design's registry
   (:class:`lightnorm.codegen.rtl.Modules`: the arithmetic units, the beat sums, the
   accumulators, encoders, skid buffers...) synthesized once on its own with the script of the
   hierarchical synthesis (:func:`lightnorm.cost.synth.hierarchical_script` without the
   hierarchy pass), cached by its text, the liberty and the tool version. A module's own
   ("local") area in a hierarchical synthesis does not depend on what surrounds it, so these
   are the areas the synthesis of the whole design finds (to a fraction of a percent: ABC's
   randomness). A new spec's modules take seconds, once;
2. **a structural count** of the four spec-level modules the registry does not hold
   (``lightnorm_top``, the lanes, the finalize sequencer): the instances of each module (generate
   loops counted) and the register bits they declare, whose own area is a calibrated cost per
   register bit (flip-flop, its enable multiplexer, the glue around it) plus a constant;
3. **calibrated models** (:data:`CALIBRATION`, fitted by :func:`fit` on the presets and the
   calibration specs of :mod:`lightnorm.bench.estimate`): the critical path from the timing
   plan's slowest predicted stage; energy per cycle of each pass from the flip-flops (every
   flip-flop is clocked every cycle: no clock gating), the logic area of each block and how
   often the bits of the data each datapath block computes on toggle in the simulated
   workload (:func:`data_rates`: the golden encoders, no simulation); cycles per element
   from the beats of a channel and the pipeline latencies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightnorm.codegen.rtl import TOP, design_files, instance_on
from lightnorm.cost.activity import ActivityConfig
from lightnorm.cost.synth import (
    BLOCKS,
    PASSES,
    classify,
    library,
    plan_notes,
    timing_not_met_note,
)
from lightnorm.errors import ToolError
from lightnorm.spec import Spec, SpecError
from lightnorm.tools.cache import cache_root, write_entry
from lightnorm.tools.eda import yosys_command, yosys_package_version
from lightnorm.tools.locks import file_lock
from lightnorm.tools.netlist import Liberty, canonical_module
from lightnorm.tools.runner import run_tool

#: bump when what a module's characterization measures or how changes (invalidates its cache)
MODULE_LIBRARY_VERSION = "3"  # 2: keyed by the canonical text; 3: one Yosys run per module
#: the modules the registry does not hold: rendered once per spec from the design templates
SPEC_MODULES = tuple(name[:-2] for name in design_files().values())
#: the calibrated constants of the models (fitted by :func:`fit`; docs/estimate.md says on
#: what and how well): per spec-level module, its own area per declared register bit, in a
#: range-BN design (the controller's chunk and extrema bookkeeping), and a constant (um^2);
#: flip-flops per declared register bit of those modules; the critical path (ns) from
#: :func:`critical_features`; per pass, energy per cycle (pJ) per feature of
#: :func:`energy_features`; per pass, the cycles per channel beyond the beats
CALIBRATION: dict[str, Any] = {
    "area_per_reg_bit": {"ln_finalize": 132.065, "ln_fwd_lanes": 163.755, "ln_bwd_lanes": 155.191,
        "lightnorm_top": 164.519},
    "area_range_bn": {"ln_finalize": 948.271, "ln_fwd_lanes": -26.5567, "ln_bwd_lanes": -633.352,
        "lightnorm_top": 11234.6},
    "area_const": {"ln_finalize": 2378.94, "ln_fwd_lanes": 292.125, "ln_bwd_lanes": 1314.23,
        "lightnorm_top": 7725.52},
    "ff_per_reg_bit": 0.942668,
    "registry_scale": 1.00165,
    "critical": [0.329395, 0.248946, 0.969769, 0.643448],
    "cycles": {"forward": [19.8142, 1.04032, 0.611657, 2.80776],
        "backward": [29.8907, 0.302963, 3.85686, 2.64715]},
    "energy": {
        "forward": [0.197425, 0.000260074, 4.41864e-05, 0.0, 0.000631377, 0.000163678, 0.0,
                   0.000129738, 0.0, 0.0, 0.000523478, 0.000963421, 0.00166492, 0.000869919],
        "backward": [0.139033, 0.0, 0.0, 0.000522594, 0.000214165, 0.000620893, 0.0017598, 0.0,
                    0.0, 0.000681191, 0.000332056, 0.000854019, 0.000466063]},
}


# ---- the module library ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleCost:
    """One module synthesized on its own: the area and flip-flops of its own cells and the
    modules it instantiates (name -> instances)."""

    name: str
    area_um2: float
    sequential_area_um2: float
    flip_flops: int
    submodules: dict[str, int]


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode() + b"\0")
    return h.hexdigest()[:32]


def module_script(src: str, boxes: Sequence[str], lib_name: str) -> str:
    """The module of ``src`` synthesized as the hierarchical synthesis does (its passes after
    the hierarchy check, then the liberty mapping), the modules it instantiates read from
    ``boxes`` as black boxes (their ports only)."""
    return "\n".join([
        *([f"read_verilog -lib {' '.join(boxes)}"] if boxes else []),
        f"read_verilog {src}",
        "hierarchy -check",
        "synth -run coarse:",
        f"dfflibmap -liberty {lib_name}",
        f"abc -liberty {lib_name}",
        "opt_clean",
        f"tee -q -o stat.json stat -liberty {lib_name} -json",
        "",
    ])


def _costs_from_stat(data: Mapping[str, Any], names: Iterable[str], cells: Liberty
                     ) -> dict[str, ModuleCost]:
    """Own area, flip-flops and submodules of ``names`` from a Yosys ``stat -json`` (cell
    areas from the liberty: a module's ``area`` there includes its submodules')."""
    mods = {k.lstrip("\\"): v for k, v in data.get("modules", {}).items()}
    out = {}
    for name in names:
        if name not in mods:
            raise ToolError(f"module library: Yosys stat has no module {name}")
        area = seq = 0.0
        ffs, subs = 0, {}
        for typ, n in mods[name].get("num_cells_by_type", {}).items():
            typ = typ.lstrip("\\")
            cell = cells.cells.get(typ)
            if cell is None:
                if typ.startswith("$"):
                    raise ToolError(f"module library: {name} has unmapped cells {typ}")
                subs[typ] = int(n)
                continue
            area += n * cell.area
            if cell.sequential:
                seq += n * cell.area
                ffs += int(n)
        out[name] = ModuleCost(name, area, seq, ffs, subs)
    return out


def module_library(files: Mapping[str, str], names: Sequence[str],
                   liberty: str | Path | None = None, timeout_s: float | None = None
                   ) -> dict[str, ModuleCost]:
    """The cost of each module of ``names`` (``files[name + '.v']`` holds its text and the
    texts of what it instantiates): cached ones read, the others synthesized, each in a Yosys
    run of its own, and cached."""
    lib = library(liberty)
    root = cache_root("synth") / "modules" / lib.sha256[:16]
    version = yosys_package_version()
    # keyed by the canonical text: modules that differ only in comments or in their own name
    # (submodules black-boxed: a module's own cost is its own text's) are characterized once
    keys = {n: _digest(MODULE_LIBRARY_VERSION, lib.sha256, version,
                       canonical_module(files[f"{n}.v"], n)) for n in names}
    out = _cached_costs(root, keys)
    if len(out) == len(names):
        return out
    root.mkdir(parents=True, exist_ok=True)
    # a lock per missing module (taken in key order: no deadlock): a process that waited for
    # one reads what the other process just cached, so a module that several specs of a sweep
    # share is synthesized once, while runs of different modules go on in parallel
    with contextlib.ExitStack() as held:
        for key in sorted({keys[n] for n in names if n not in out}):
            held.enter_context(file_lock(root / f"{key}.lock"))
        out = _cached_costs(root, keys)
        todo = [n for n in names if n not in out]
        if todo:
            out.update(_characterize(files, names, todo, root, keys, lib, timeout_s))
    return out


def _cached_costs(root: Path, keys: Mapping[str, str]) -> dict[str, ModuleCost]:
    """The modules of ``keys`` (name -> cache key) whose cost the library holds."""
    out: dict[str, ModuleCost] = {}
    for n, key in keys.items():
        try:
            data = json.loads((root / f"{key}.json").read_text())
            out[n] = ModuleCost(**{**data, "name": n})
        except (OSError, ValueError, TypeError):
            pass
    return out


def _characterize(files: Mapping[str, str], names: Sequence[str], todo: Sequence[str],
                  root: Path, keys: Mapping[str, str], lib: Any, timeout_s: float | None
                  ) -> dict[str, ModuleCost]:
    """Synthesize each module of ``todo`` in a Yosys run of its own (what it instantiates as
    black boxes: its own cost is its own logic) and cache them; up to one run per CPU at once.

    One run for all of them made a module's cost depend on the others: ABC mapped 13 of
    lightnorm-aggressive's 37 modules differently (by up to 4.9 %) in one run than alone
    (docs/estimate.md), likely because Yosys numbers its automatic names over the whole run.
    Not under the machine-wide Yosys slots of the syntheses
    (:func:`lightnorm.cost.synth._run_yosys`), like the operator library's characterizations: a
    run of a few seconds would otherwise wait minutes behind whole designs' syntheses."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from lightnorm.cost.synth import LIB_NAME

    # every module synthesized under a name made from its key, so that its cost is a function
    # of its canonical text alone (ABC's result moves by ~0.2 % with a module's name): the
    # modules that share a text are one module
    alias = {n: f"m_{keys[n]}" for n in names}
    first = {a: n for n, a in reversed(alias.items())}
    word = re.compile(r"(?<![\w$\\])(" + "|".join(
        re.escape(n) for n in sorted(alias, key=len, reverse=True)) + r")(?![\w$])")

    def below(n: str) -> set[str]:
        """The modules ``n`` instantiates, and theirs."""
        out: set[str] = set()
        todo_ = [n]
        while todo_:
            for m in word.finditer(files[f"{todo_.pop()}.v"]):
                s = m.group(1)
                if s != n and s not in out:
                    out.add(s)
                    todo_.append(s)
        return out

    def one(a: str) -> ModuleCost:
        n = first[a]
        work = Path(tempfile.mkdtemp(prefix="lightnorm-module-"))
        try:
            boxes = sorted({alias[s] for s in below(n)} - {a})
            for b in [a, *boxes]:
                (work / f"{b}.v").write_text(
                    word.sub(lambda m: alias[m.group(1)], files[f"{first[b]}.v"]))
            shutil.copyfile(lib.path, work / LIB_NAME)
            (work / "modules.ys").write_text(
                module_script(f"{a}.v", [f"{b}.v" for b in boxes], LIB_NAME))
            run_tool(yosys_command(work, "modules.ys", ("stat.json",),
                                   purpose=f"module library ({n})",
                                   log=work / "modules.log", timeout_s=timeout_s))
            return _costs_from_stat(json.loads((work / "stat.json").read_text()), [a],
                                    lib.liberty)[a]
        finally:
            shutil.rmtree(work, ignore_errors=True)

    runs = sorted({alias[n] for n in todo})
    with ThreadPoolExecutor(max_workers=max(1, min(len(runs), os.cpu_count() or 1))) as pool:
        by_alias = dict(zip(runs, pool.map(one, runs), strict=True))
    found = {}
    for n in todo:
        c = by_alias[alias[n]]
        # each submodule under the name this module's text instantiates
        named = {alias[m.group(1)]: m.group(1) for m in word.finditer(files[f"{n}.v"])}
        found[n] = dataclasses.replace(c, name=n, submodules={
            named.get(s, first.get(s, s)): k for s, k in c.submodules.items()})
    for n, cost in found.items():
        write_entry(root / f"{keys[n]}.json", json.dumps(dataclasses.asdict(cost), indent=1))
    return found


# ---- the structural count of a spec-level module -----------------------------------------------

_TOKEN = re.compile(r"\bfor\s*\(\s*\w+\s*=\s*(\d+)\s*;\s*\w+\s*<\s*(\d+)\s*;[^)]*\)\s*begin\b"
                    r"|\bbegin\b|\bend\b")
_REG = re.compile(r"^\s*reg\s+(?:signed\s+)?(?:\[\s*(\d+)\s*:\s*(\d+)\s*\]\s*)?([^;]+);")
_ARRAY = re.compile(r"\[\s*(\d+)\s*:\s*(\d+)\s*\]")


@dataclass(frozen=True)
class Structure:
    """What a module's text declares, generate loops unrolled: register bits, and the
    instances of each module."""

    reg_bits: int
    instances: dict[str, int]


def structure(text: str, modules: Iterable[str]) -> Structure:
    """Register bits and module instances of a generated module (``modules``: the names that
    are modules). A declaration or instance inside ``for (i = a; i < b; ...) begin`` counts
    ``b - a`` times (nested loops multiply)."""
    known = set(modules)
    stack: list[int] = []
    mult = 1
    bits = 0
    inst: dict[str, int] = {}
    for line in text.splitlines():
        code = line.split("//", 1)[0]
        m = _REG.match(code)
        if m:
            w = int(m.group(1)) - int(m.group(2)) + 1 if m.group(1) else 1
            for name in m.group(3).split(","):
                depth = 1
                for lo, hi in _ARRAY.findall(name):
                    depth *= abs(int(hi) - int(lo)) + 1
                bits += mult * w * depth
        found = instance_on(code, known)
        if found:
            inst[found[0]] = inst.get(found[0], 0) + mult
        for t in _TOKEN.finditer(code):
            if t.group(0).startswith("for"):
                n = max(0, int(t.group(2)) - int(t.group(1)))
                stack.append(n)
                mult *= n if n else 1
            elif t.group(0) == "begin":
                stack.append(1)
            elif stack:
                n = stack.pop()
                mult //= n if n else 1
    return Structure(bits, inst)


# ---- the design's count --------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """What the estimate counts in a spec's design: per module its instances, own area (the
    library's, or the model's for a spec-level module) and flip-flops; the register bits of
    the spec-level modules; the timing plan's summary and the cycle features."""

    clock_ns: float
    instances: dict[str, int]
    area_um2: dict[str, float]
    flip_flops: dict[str, float]
    reg_bits: dict[str, int]
    #: (module, block) -> instances of the module in that block (cost.synth.classify)
    placed: dict[tuple[str, str], int]
    timing_plan: dict[str, Any]
    #: per pass: beats of a channel in the simulated workload, channels, elements, the lanes'
    #: significand bits, and the latency features of :func:`cycle_features`
    workload: dict[str, Any]


def cycle_features(ctx: Mapping[str, Any], spec: Spec) -> dict[str, float]:
    """What sets the cycles of a channel beyond its beats: the finalize program (each step
    waits for its unit: its latency, or the quotient bits of an iterative unit) and the lanes'
    pipeline depth (the registers of their units and the beat-sum trees)."""
    fin = ctx["fin"]
    lat = ctx["lat"]
    iterative = spec.scalar.man_bits + 3
    steps = {p: 0.0 for p in PASSES}
    for s in fin["steps"]:
        op = s["op"]
        wait = (iterative if op in ("sqrt", "recip")
                else fin["lat"].get(op, 0) + 1 if op in fin["lat"] else 1)
        steps[s["pass"]] += wait + 1
    depth = sum(v for k, v in lat.items() if k in ("add_p", "mul_p", "p_to_a", "x_to_p",
                                                   "dy_to_p"))
    return {"fin_forward": steps["forward"], "fin_backward": steps["backward"],
            "lane_depth": float(depth + ctx["lg"]), "acc_ways": float(spec.hw.accum_ways)}


def _period(value: float | None, default: float) -> float:
    t = float(value if value is not None else default)
    if not (math.isfinite(t) and t > 0):
        raise SpecError("clock_ns", value, "a positive clock period in ns")
    return t


def calibrated(c: Count, cal: Mapping[str, Any]) -> Count:
    """``c`` with the own area and flip-flops of its spec-level modules from ``cal``, and the
    library's areas scaled to what the design's synthesis makes of the same modules (ABC maps
    them a few percent larger among the rest of the design than alone)."""
    k = cal["registry_scale"]
    return dataclasses.replace(c, area_um2={**{m: k * a for m, a in c.area_um2.items()}, **{
        m: cal["area_per_reg_bit"][m] * c.reg_bits[m]
        + cal["area_range_bn"][m] * (1.0 - c.workload["standard_bn"]) + cal["area_const"][m]
        for m in SPEC_MODULES}}, flip_flops={**c.flip_flops, **{
            m: cal["ff_per_reg_bit"] * c.reg_bits[m] for m in SPEC_MODULES}})


def count(spec: Spec, clock_ns: float | None = None, liberty: str | Path | None = None
          ) -> Count:
    """Count the design of ``spec`` at ``clock_ns`` (default ``hw.clock_ns``): its modules'
    instances, the own areas and flip-flops of the registry's modules (the module library),
    the register bits of the spec-level modules, the timing plan and the cycle features
    (:func:`calibrated` fills in the spec-level modules)."""
    from lightnorm.codegen.rtl import render_design, rtl_context, timing_plan

    clk = _period(clock_ns, spec.hw.clock_ns)
    plan = timing_plan(spec, clk, liberty)
    c = rtl_context(spec, plan)
    files = render_design(c)
    names = [f[:-2] for f in files]
    registry = [n for n in names if n not in SPEC_MODULES]
    costs = module_library(files, registry, liberty)
    area: dict[str, float] = {n: costs[n].area_um2 for n in registry}
    ffs: dict[str, float] = {n: float(costs[n].flip_flops) for n in registry}
    subs: dict[str, dict[str, int]] = {n: costs[n].submodules for n in registry}
    regs: dict[str, int] = {}
    for m in SPEC_MODULES:
        s = structure(files[f"{m}.v"], names)
        regs[m], subs[m] = s.reg_bits, s.instances
    inst: dict[str, int] = {}
    placed: dict[tuple[str, str], int] = {}

    def walk(mod: str, block: str, mult: int, depth: int) -> None:
        if depth > 64:
            raise ToolError(f"module hierarchy deeper than 64 at {mod} (recursive?)")
        inst[mod] = inst.get(mod, 0) + mult
        placed[mod, block] = placed.get((mod, block), 0) + mult
        for sub, n in subs[mod].items():
            walk(sub, classify(sub, block, mod == TOP), mult * n, depth + 1)

    walk(TOP, "control", 1, 0)
    cfg = ActivityConfig().resolve(spec)
    assert cfg.shape is not None
    n = cfg.shape[0] * cfg.shape[2] * cfg.shape[3]
    workload = {"channels": cfg.shape[1], "elements": cfg.shape[1] * n,
                "beats": -(-n // spec.hw.lanes), "significand_bits": spec.compute.man_bits + 1,
                **cycle_features(c["ctx"], spec), "rates": cached_data_rates(spec, cfg),
                "standard_bn": 1.0 if spec.bn.mode == "standard" else 0.0}
    return Count(clk, inst, area, ffs, regs, placed, plan.summary(), workload)


def toggle_rate(bits: Any, lanes: int, width: int) -> float:
    """Toggles per bit per beat of (C, n) patterns of ``width`` bits streamed ``lanes`` at a
    time: lane j holds elements j, j + lanes, ... of a channel, so element k follows k - lanes
    in its register."""
    import numpy as np

    if bits.shape[1] <= lanes:
        return 0.0
    flips = np.bitwise_count(bits[:, lanes:] ^ bits[:, :-lanes])
    return float(flips.mean()) / width


#: the data rates of :func:`data_rates`
RATE_NAMES = ("x", "x_hat", "dy", "dy_x_hat")


def data_rates(spec: Spec, cfg: ActivityConfig) -> dict[str, float]:
    """How often the bits of the data the lanes compute on toggle in the simulated workload
    (``cfg``: the activity simulation's tensors), each in the compute format, per bit and beat:
    x and dy as stored and read into the lanes; x normalized to zero mean and unit variance
    (``x_hat``; range BN scales by C(n) x (max - min) instead of sigma, a constant factor apart
    that is not modelled); and ``dy_x_hat``, their product. How much of a datapath block
    switches follows them: a dy stored with few exponent bits is mostly flushed to zero, and
    the backward lanes then multiply zeros; a narrow storage format leaves the compute
    format's low fraction bits at zero."""
    import numpy as np

    from lightnorm.cost.activity import workload_data
    from lightnorm.verify.encoding import encode

    assert cfg.shape is not None
    data = workload_data(cfg)
    c = cfg.shape[1]
    fmt = spec.compute
    lanes = spec.hw.lanes

    def compute(a: Any) -> Any:  # values already in the compute format, as patterns
        return encode(np.ascontiguousarray(a), fmt)

    def stored(name: str, fmt_s: Any) -> Any:
        nchw = data[name]
        stream = nchw.transpose(1, 0, 2, 3).reshape(c, -1)
        return compute(encode(stream, fmt_s).vals)

    x = stored("x", spec.storage.x)
    dy = stored("dy", spec.storage.dy)
    sd = x.vals.std(axis=1, keepdims=True)
    x_hat = compute((x.vals - x.vals.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0))
    prod = compute(dy.vals * x_hat.vals)
    return {k: toggle_rate(v.bits[:, :v.n], lanes, fmt.width)
            for k, v in zip(RATE_NAMES, (x, x_hat, dy, prod), strict=True)}


#: bump when :func:`data_rates` changes (invalidates the cached rates)
RATES_VERSION = "1"


def cached_data_rates(spec: Spec, cfg: ActivityConfig) -> dict[str, float]:
    """:func:`data_rates`, kept under ``$LIGHTNORM_CACHE/synth/rates`` by all they depend on
    (the x and dy storage formats, the compute format, the lanes, the workload): a fresh
    process that finds them does not load the golden encoders' compiled code (half a
    second, as long as the rest of an estimate)."""
    key = _digest("rates", RATES_VERSION, spec.storage.x, spec.storage.dy, spec.compute,
                  spec.hw.lanes, json.dumps(cfg.to_dict(), sort_keys=True))
    path = cache_root("synth") / "rates" / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and set(data) == set(RATE_NAMES):
            return {k: float(v) for k, v in data.items()}
    except (OSError, ValueError, TypeError):
        pass  # not computed yet, or damaged: compute again
    rates = data_rates(spec, cfg)
    write_entry(path, json.dumps(rates))
    return rates


# ---- the estimate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """What :func:`lightnorm.cost.synth.synthesize` would report, predicted (same names and
    units: um^2, MHz, mW, pJ per element)."""

    spec: str
    spec_hash: str
    clock_ns: float
    area_um2: float
    area_breakdown: dict[str, float]
    flip_flops: int
    fmax_mhz: float
    critical_ns: float
    power_mw: dict[str, float]
    energy_pj_per_element: dict[str, float]
    cycles_per_element: dict[str, float]
    #: the timing plan's slowest predicted stage (ns), which the critical path is calibrated on
    predicted_stage_ns: float
    seconds: float
    #: the estimated critical path meets the clock (worst slack = clock - critical path)
    timing_met: bool = True
    worst_slack_ns: float = 0.0
    #: as synthesis notes them: the units the timing plan predicts not to fit the clock, and a
    #: clock the estimated critical path does not meet
    notes: list[str] = dataclasses.field(default_factory=list)
    estimated: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ffs_total(c: Count) -> float:
    return sum(c.instances[m] * c.flip_flops[m] for m in c.instances)


def _area_total(c: Count) -> float:
    return sum(c.instances[m] * c.area_um2[m] for m in c.instances)


def cycles_per_channel(c: Count, p: str, cal: Mapping[str, Any]) -> float:
    """Cycles of one channel in pass ``p``: its beats twice (a reduction pass and an
    elementwise pass) and the calibrated cost of the finalize and the pipelines' fill."""
    w = c.workload
    a, b, d, e = cal["cycles"][p]
    return 2 * w["beats"] + a + b * w[f"fin_{p}"] + d * w["lane_depth"] + e * w["acc_ways"]


def critical_features(pred: float, clock_ns: float) -> list[float]:
    """What the critical path is calibrated on: a constant, the slowest planned stage up to
    the clock, how far it overshoots the clock (a unit whose loop allows too few registers,
    whose stages the plan measured as placed: weighted about 1 by the fit), and the clock
    itself (ABC maps every stage to a delay target set by the clock and trades the slack of a
    shorter one for area, and the glue around the units that the plan does not see -
    conversions into the lanes' registers - is mapped up to that target too)."""
    return [1.0, min(pred, clock_ns), max(0.0, pred - clock_ns), clock_ns]


def block_areas(c: Count) -> dict[str, float]:
    """The area of each block (cost.synth.BLOCKS) of a counted design."""
    blocks = {b: 0.0 for b in BLOCKS}
    for (m, block), n in c.placed.items():
        blocks[block] = blocks.get(block, 0.0) + n * c.area_um2[m]
    return blocks


#: the blocks of arithmetic on the data, whose energy per um^2 grows with the operands' width
DATAPATH = ("statistics", "normalize", "backward")
#: per pass, the blocks whose energy per um^2 differs with the BN mode: in the forward pass,
#: standard BN's statistics square every x and sum the squares, range BN's compare it
MODAL = {"forward": ("statistics",), "backward": ()}
#: per pass, the (block, data rate) pairs whose product is a feature of the energy: the
#: statistics read x in both passes (range BN reads it again in the backward pass); the
#: forward lanes normalize x into x_hat; the backward lanes multiply dy by x_hat
RATED = {"forward": (("statistics", "x"), ("normalize", "x"), ("normalize", "x_hat")),
         "backward": (("statistics", "x"), ("backward", "dy"), ("backward", "dy_x_hat"))}


def busy_fraction(c: Count, cycles_per_channel: float) -> float:
    """The share of a pass's cycles that move data: a channel's beats twice (the reduction
    and the elementwise pass) over all its cycles (the rest fill the pipelines and run the
    finalize program)."""
    return min(1.0, 2 * c.workload["beats"] / cycles_per_channel)


def energy_features(c: Count, p: str, busy: float) -> list[float]:
    """What the energy of a cycle of pass ``p`` is calibrated on: the flip-flops (each clocked
    every cycle: their clock power is most of a cycle's energy); the logic terms below, each
    times ``busy`` (:func:`busy_fraction`: the logic switches in the cycles that move data, the
    clock in every cycle; the simulated workloads spend 6-36 % of a pass's cycles on fill
    and finalize); the area of each block (how
    much of a block's logic switches differs by block and pass: the backward lanes idle in the
    forward pass); the area of each datapath block times the lanes' significand width over 24
    (a wider multiplier or adder is deeper, and a deeper array glitches more per gate: in the
    backward pass, fp32-baseline burns 1.8x the combinational energy per um^2 of
    bf16-standard); the area of the blocks of :data:`MODAL` in a standard-BN design (0 in a
    range-BN one); and the area of each datapath block times the toggle rate of the data it
    computes on in the pass (:data:`RATED`, :func:`data_rates`: a block whose operands are
    mostly zero, or use few of the compute format's bits, switches less). The data-rate terms
    come last (:func:`cross_validate_energy` drops them to compare)."""
    blocks = block_areas(c)
    width = c.workload["significand_bits"] / 24
    rates = c.workload["rates"]
    logic = [*(blocks[b] for b in BLOCKS), *(blocks[b] * width for b in DATAPATH),
             *(blocks[b] * c.workload["standard_bn"] for b in MODAL[p]),
             *(blocks[b] * rates[r] for b, r in RATED[p])]
    return [_ffs_total(c), *(busy * f for f in logic)]


def energy_per_cycle(c: Count, p: str, cal: Mapping[str, Any], busy: float) -> float:
    """Energy of one cycle of pass ``p`` (pJ): per feature of :func:`energy_features`."""
    return sum(k * f for k, f in zip(cal["energy"][p], energy_features(c, p, busy),
                                     strict=True))


def from_count(spec: Spec, c: Count, cal: Mapping[str, Any], seconds: float = 0.0) -> Estimate:
    """The estimate of a counted design under calibration ``cal``."""
    c = calibrated(c, cal)
    blocks = block_areas(c)
    pred = float(c.timing_plan["predicted_critical_ns"])
    crit = sum(k * f for k, f in zip(cal["critical"], critical_features(pred, c.clock_ns),
                                     strict=True))
    power, energy, cpe = {}, {}, {}
    for p in PASSES:
        per_channel = cycles_per_channel(c, p, cal)
        cyc = c.workload["channels"] * per_channel
        e_cyc = energy_per_cycle(c, p, cal, busy_fraction(c, per_channel))
        power[p] = e_cyc / c.clock_ns
        energy[p] = e_cyc * cyc / c.workload["elements"]
        cpe[p] = cyc / c.workload["elements"]
    slack = c.clock_ns - crit
    notes = plan_notes(c.timing_plan, c.clock_ns)
    if slack < 0:
        notes.append(timing_not_met_note(
            c.clock_ns, slack, "which this design is estimated not to reach"))
    return Estimate(spec.name, spec.hash, c.clock_ns, sum(blocks.values()), blocks,
                    int(round(_ffs_total(c))), 1000.0 / crit, crit, power, energy, cpe, pred,
                    seconds, slack >= 0, slack, notes)


def estimate(spec: Spec, clock_ns: float | None = None, liberty: str | Path | None = None,
             calibration: Mapping[str, Any] | None = None) -> Estimate:
    """Predict area by block, Fmax, power, energy and cycles per element of ``spec``'s design
    (the template RTL) at ``clock_ns`` (default ``hw.clock_ns``) on ``liberty`` (default OSU
    0.18 um), without synthesizing it (module docstring). Raises :class:`SpecError` for a bad
    clock, :class:`ToolError` when a module cannot be characterized."""
    t0 = time.perf_counter()
    cal = calibration or CALIBRATION
    c = count(spec, clock_ns, liberty)
    return from_count(spec, c, cal, time.perf_counter() - t0)


# ---- calibration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One synthesized design for the calibration: its count, what synthesis reported, and
    the own area and flip-flops of each spec-level module in its hierarchical synthesis."""

    count: Count
    result: Any  # a SynthResult
    local_area: dict[str, float]
    local_flip_flops: dict[str, int]


def measured(spec: Spec, clock_ns: float | None = None, liberty: str | Path | None = None
             ) -> Measured:
    """The synthesis of ``spec`` (run now unless cached) with what the calibration needs: the
    own area and flip-flops of the spec-level modules come with the result (from the hierarchical
    synthesis itself for a result cached before results carried them)."""
    from lightnorm.codegen.rtl import render_rtl
    from lightnorm.cost.synth import module_costs, synth_hierarchical, synthesize

    clk = _period(clock_ns, spec.hw.clock_ns)
    res = synthesize(spec, liberty, clk)
    own_area, own_ffs = res.module_area_um2, res.module_flip_flops
    if own_area is None or own_ffs is None:
        lib = library(liberty)
        files = render_rtl(spec, clock_ns=clk, liberty=liberty)
        hier = synth_hierarchical(files, TOP, lib.path, lib.sha256, cache_root("synth"))
        own_area, own_ffs = module_costs(hier.stat, lib.liberty)
    return Measured(count(spec, clk, liberty), res, {m: own_area[m] for m in SPEC_MODULES},
                    {m: own_ffs[m] for m in SPEC_MODULES})


def _lstsq(rows: Sequence[Sequence[float]], target: Sequence[float],
           nonnegative: bool = False) -> list[float]:
    """Least squares of relative errors: each row scaled by 1 / its target. ``nonnegative``:
    a coefficient the solution makes negative is dropped (0) and the rest refitted, until
    none is (an energy per flip-flop or per um^2, or a path's share of a delay, is not
    negative; a negative one only fits the calibration's noise)."""
    import numpy as np

    t = np.asarray(target, dtype=float)
    a = np.asarray(rows, dtype=float) / t[:, None]
    keep = list(range(a.shape[1]))
    out = np.zeros(a.shape[1])
    while keep:
        sol, *_ = np.linalg.lstsq(a[:, keep], np.ones_like(t), rcond=None)
        if not nonnegative or (sol >= 0).all():
            out[keep] = sol
            break
        keep.pop(int(np.argmin(sol)))
    return [float(v) for v in out]


def measured_busy(c: Count, d: Measured, p: str) -> float:
    """The busy fraction of pass ``p`` as the design's simulation counted its cycles."""
    return busy_fraction(c, d.result.activity[p]["cycles"] / c.workload["channels"])


def fit(data: Sequence[Measured]) -> dict[str, Any]:
    """The calibration constants that fit ``data`` best (least squares of relative errors)."""
    cal: dict[str, Any] = {"area_per_reg_bit": {}, "area_range_bn": {}, "area_const": {}}
    for m in SPEC_MODULES:
        k, r, b = _lstsq([[d.count.reg_bits[m], 1.0 - d.count.workload["standard_bn"], 1.0]
                          for d in data], [max(1.0, d.local_area[m]) for d in data])
        cal["area_per_reg_bit"][m], cal["area_range_bn"][m], cal["area_const"][m] = k, r, b
    cal["ff_per_reg_bit"] = (sum(sum(d.local_flip_flops.values()) for d in data)
                             / sum(sum(d.count.reg_bits.values()) for d in data))
    own = [sum(d.count.instances.get(m, 0) * a for m, a in d.count.area_um2.items())
           for d in data]
    cal["registry_scale"] = _lstsq([[a] for a in own], [
        d.result.area_um2 - sum(d.local_area.values()) for d in data])[0]
    counts = [calibrated(d.count, cal) for d in data]
    cal["critical"] = _lstsq([critical_features(float(c.timing_plan["predicted_critical_ns"]),
                                                c.clock_ns) for c in counts],
                             [d.result.critical_ns for d in data], nonnegative=True)
    cal["cycles"], cal["energy"] = {}, {}
    for p in PASSES:
        rows, target = [], []
        for c, d in zip(counts, data, strict=True):
            w = c.workload
            cyc = d.result.activity[p]["cycles"] / w["channels"] - 2 * w["beats"]
            rows.append([1.0, w[f"fin_{p}"], w["lane_depth"], w["acc_ways"]])
            target.append(cyc)
        import numpy as np

        sol, *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(target), rcond=None)
        cal["cycles"][p] = [float(v) for v in sol]
        cal["energy"][p] = _lstsq([energy_features(c, p, measured_busy(c, d, p))
                                   for c, d in zip(counts, data, strict=True)],
                                  [d.result.power_mw[p] * d.result.clock_ns for d in data],
                                  nonnegative=True)
    return cal


def cross_validate_energy(data: Sequence[Measured], rated: bool = True
                          ) -> dict[str, list[float]]:
    """Leave-one-out relative errors of the energy per cycle of each pass over ``data``: each
    design's energy predicted by the energy constants fitted on the others (every other
    constant fitted on all of them). ``rated`` False: without the data-rate terms of
    :data:`RATED`, the model before them (what they are measured against)."""
    import numpy as np

    cal = fit(data)
    counts = [calibrated(d.count, cal) for d in data]
    out: dict[str, list[float]] = {}
    for p in PASSES:
        rows = np.asarray([energy_features(c, p, measured_busy(c, d, p))
                           for c, d in zip(counts, data, strict=True)])
        if not rated:
            rows = rows[:, :rows.shape[1] - len(RATED[p])]
        target = np.asarray([d.result.power_mw[p] * d.result.clock_ns for d in data])
        errs = []
        for i in range(len(data)):
            rest = [j for j in range(len(data)) if j != i]
            k = np.asarray(_lstsq(rows[rest].tolist(), target[rest].tolist(), nonnegative=True))
            errs.append(float((rows[i] @ k - target[i]) / target[i]))
        out[p] = errs
    return out

