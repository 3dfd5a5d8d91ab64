"""Timing-driven register placement: the characterized operator library and the depth chooser.

Every pipelinable module (:data:`lightnorm.codegen.rtl.SECTIONS`) is characterized once per
liberty, clock target and rendered text: synthesized flat with **every** cut point registered,
between input and output registers (:func:`lightnorm.tools.eda.characterize`), so that each
section is one register-to-register stage; a bare register-to-register path in the same
netlist measures the overhead of a stage (clock-to-Q, the enable multiplexer, setup). A
section's logic delay is its stage's period minus that overhead.

The chooser then gives each module the fewest registers whose stages fit the clock: for ``d``
registers it takes the cut points that split the sections into ``d + 1`` groups with the
smallest largest group (:func:`lightnorm.codegen.pipe.balanced_cuts`), and predicts each stage
as the sum of its sections' logic delays plus the overhead and a calibrated margin (wiring,
fan-out and the multiplexers around a unit in a design, which a module alone does not see).

Results are cached on disk (``$LIGHTNORM_CACHE/synth/oplib``), keyed by the liberty's sha256,
the clock, the module's text and the tool versions, so a spec's plan after the first is
instant; what a spec needs that is not cached is characterized in parallel
(:func:`plan_for`). The same inputs always give the same plan (the tools are deterministic),
so generation stays reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lightnorm.tools.cache import cache_root, write_entry
from lightnorm.tools.eda import characterize, find_osu018_liberty, sta_version
from lightnorm.tools.eda import yosys_package_version as yosys_version
from lightnorm.tools.locks import file_lock
from lightnorm.tools.netlist import canonical_module

from .pipe import balanced_cuts, group_delays

#: bump when what a characterization measures or how changes (invalidates the cache)
#: (5: synth -noabc, ABC balance + dch; the stall enable is not timed. 6: the unit synthesized
#: under a fixed name, keyed by its text without comments)
LIBRARY_VERSION = "6"
#: added to every predicted stage: what a module alone does not see in a design (wiring,
#: fan-out buffers, the multiplexers around a unit). Calibrated on the presets' timing
#: netlists: docs/timing.md
MARGIN_NS = 0.5
#: ABC's delay target when characterizing (ns): far below any stage, so that every section is
#: mapped for speed and its delay is what the library can do, not what a loose target allows
CHAR_TARGET_NS = 1.0
#: the name a unit is characterized under
CHAR_UNIT = "char_unit"
#: characterizations run in parallel (each is one Yosys and one OpenSTA process)
JOBS = max(1, min(4, os.cpu_count() or 1))
_PORT = re.compile(r"^\s*(input|output)\s+(?:wire|reg)\s+(signed\s+)?(?:\[(\d+):0\]\s*)?(\w+)",
                   re.M)


@dataclass(frozen=True)
class UnitTiming:
    """What the library knows of one module: its sections' logic delays (ns), the overhead of
    a register stage, and the area and flip-flops with every cut registered."""

    unit: str
    sections: int
    logic_ns: tuple[float, ...]
    overhead_ns: float
    area_um2: float
    flip_flops: int
    clock_ns: float
    key: str
    #: energy of one operation (pJ) with every cut registered, random operands, one operation
    #: per cycle at clock_ns (OpenSTA's vectorless propagation)
    energy_pj: float = 0.0

    def stage_ns(self, cuts: Iterable[int], margin_ns: float = MARGIN_NS) -> list[float]:
        """The predicted period of each stage with registers at ``cuts``."""
        return [d + self.overhead_ns + margin_ns for d in group_delays(self.logic_ns, cuts)]

    def choose(self, clock_ns: float, margin_ns: float = MARGIN_NS,
               max_latency: int | None = None) -> frozenset[int]:
        """The fewest registers (at most ``max_latency``) whose predicted stages all fit
        ``clock_ns``; when none fits, the most allowed, placed for the shortest slowest stage
        (the module then limits the design's clock)."""
        most = self.sections - 1 if max_latency is None else min(self.sections - 1, max_latency)
        for d in range(most + 1):
            cuts = balanced_cuts(self.logic_ns, d)
            if max(self.stage_ns(cuts, margin_ns)) <= clock_ns:
                return cuts
        return balanced_cuts(self.logic_ns, most)


@dataclass
class Choice:
    """The register placement chosen for one module and the stage periods it predicts."""

    unit: str
    template: str
    cuts: frozenset[int]
    stage_ns: list[float]
    fits: bool
    #: at most this many registers: the unit closes a loop (None: no limit)
    max_latency: int | None = None
    #: the stages were characterized as placed (a loop's merged sections), not summed from
    #: the sections'
    placed: bool = False
    #: added to each stage on top of the plan's margin (what the unit's context adds)
    context_ns: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {"unit": self.unit, "template": self.template, "cuts": sorted(self.cuts),
             "latency": len(self.cuts), "stage_ns": [round(x, 4) for x in self.stage_ns],
             "fits": self.fits}
        if self.max_latency is not None:
            d["max_latency"] = self.max_latency
        if self.placed:
            d["stages_characterized_as_placed"] = True
        if self.context_ns:
            d["context_ns"] = self.context_ns
        if not self.fits:
            d["why"] = (f"its loop allows at most {self.max_latency} register(s) "
                        "(hw.accum_ways - 1 for an accumulator)"
                        if self.max_latency is not None and len(self.cuts) == self.max_latency
                        else "every cut point is registered")
        return d


# ---- characterization ------------------------------------------------------------------------


def module_ports(text: str) -> list[tuple[str, str, int, bool]]:
    """(direction, name, width, signed) of the ports of a module this generator rendered."""
    start = re.search(r"^module ", text, re.M)
    if start is None:
        raise ValueError("no module header in the text")
    head = text[start.start():text.index(");", start.start())]
    return [(d, n, int(w) + 1 if w else 1, bool(s)) for d, s, w, n in _PORT.findall(head)]


def wrapper(top: str, ports: list[tuple[str, str, int, bool]]) -> str:
    """``char_top``: ``top`` between input registers and enabled output registers (so its
    first and last stages are register to register too), and a bare register-to-register
    path ``probe_q`` (the stage overhead)."""
    decl = ["    input  wire clk,", "    input  wire en,", "    input  wire probe_d,",
            "    output wire probe_q,"]
    body, conns = [], []
    for d, name, w, _ in ports:
        if name in ("clk", "en"):
            conns.append(f".{name}({name})")
            continue
        rng = f"[{w - 1}:0] " if w > 1 else ""
        if d == "input":
            decl.append(f"    input  wire {rng}i_{name},")
            body.append(f"    reg  {rng}r_in_{name};")
            body.append(f"    always @(posedge clk) r_in_{name} <= i_{name};")
            conns.append(f".{name}(r_in_{name})")
        else:
            decl.append(f"    output wire {rng}o_{name},")
            body += [f"    wire {rng}w_{name};", f"    reg  {rng}r_out_{name};",
                     f"    always @(posedge clk) if (en) r_out_{name} <= w_{name};",
                     f"    assign o_{name} = r_out_{name};"]
            conns.append(f".{name}(w_{name})")
    decl[-1] = decl[-1].rstrip(",")
    return "\n".join([
        "// characterization harness of " + top + " (lightnorm.codegen.timing): not a design",
        "module char_top (", *decl, ");", *body,
        f"    {top} u_unit ({', '.join(conns)});",
        "    reg probe_a, probe_b;",
        "    always @(posedge clk) if (en) begin probe_a <= probe_d; probe_b <= probe_a; end",
        "    assign probe_q = probe_b;",
        "endmodule", ""])


@dataclass(frozen=True)
class Request:
    """One module to characterize: its files with every cut registered, the register groups
    of its sections and where its result goes."""

    unit: str
    top: str
    sections: int
    files: dict[str, str]
    groups: dict[str, list[str]]
    key: str
    clock_ns: float


def request(unit: str, top: str, sections: int, files: Mapping[str, str],
            register_cuts: Mapping[str, int], clock_ns: float, liberty: Path,
            lib_sha: str) -> Request:
    """The characterization of module ``top`` (rendered with every cut registered; its
    registers and their cuts from :meth:`lightnorm.codegen.pipe.Pipe.register_cuts`)."""
    return placed_request(unit, top, frozenset(range(1, sections)), files, register_cuts,
                          clock_ns, liberty, lib_sha)


def placed_request(unit: str, top: str, cuts: frozenset[int], files: Mapping[str, str],
                   register_cuts: Mapping[str, int], clock_ns: float, liberty: Path,
                   lib_sha: str) -> Request:
    """The characterization of module ``top`` rendered with registers at ``cuts`` (its
    registers and their cuts from :meth:`lightnorm.codegen.pipe.Pipe.register_cuts`): one
    stage per group of sections between registers. With every cut point registered, each
    stage is one section (:func:`request`)."""
    ports = module_ports(files[f"{top}.v"])
    # the unit is characterized under a fixed name (and keyed by its text without comments):
    # units that differ only in name and description - a scan named and described after its
    # block size and the next block's - are one characterization, whichever asks first
    own = re.compile(rf"(?<![\w$\\]){re.escape(top)}(?![\w$])")
    all_files = {own.sub(CHAR_UNIT, name): own.sub(CHAR_UNIT, text)
                 for name, text in files.items()}
    all_files["char_top.v"] = wrapper(CHAR_UNIT, ports)
    groups: dict[str, list[str]] = {"probe": ["probe_b"]}
    placed = sorted(cuts)
    for k, cut in enumerate(placed):
        groups[f"s{k}"] = [re.escape(r) for r, c in register_cuts.items() if c == cut]
    groups[f"s{len(placed)}"] = ["r_out_\\w+"]
    h = hashlib.sha256()
    for part in (LIBRARY_VERSION, lib_sha, f"{clock_ns:.6g}", f"{CHAR_TARGET_NS:.6g}",
                 str(yosys_version()),
                 str(sta_version()), json.dumps(groups, sort_keys=True)):
        h.update(part.encode() + b"\0")
    for name in sorted(all_files):
        h.update(name.encode() + b"\0" + canonical_module(all_files[name], CHAR_UNIT).encode()
                 + b"\0")
    del liberty
    return Request(unit, top, len(placed) + 1, all_files, groups, h.hexdigest()[:32], clock_ns)


def _root(lib_sha: str) -> Path:
    return cache_root("synth") / "oplib" / lib_sha[:16]


def lookup(req: Request, lib_sha: str) -> UnitTiming | None:
    """The cached characterization of a request (None: not characterized, or unreadable)."""
    try:
        data = json.loads((_root(lib_sha) / f"{req.key}.json").read_text())
        # (another unit of the same text may have written it: the name is the request's)
        return UnitTiming(**{**data, "unit": req.unit, "logic_ns": tuple(data["logic_ns"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def measure(req: Request, liberty: Path, lib_sha: str) -> UnitTiming:
    """Characterize one module (or read it from the cache)."""
    root = _root(lib_sha)
    path = root / f"{req.key}.json"
    with file_lock(root / f"{req.key}.lock"):
        hit = lookup(req, lib_sha)
        if hit is not None:
            return hit
        work = Path(tempfile.mkdtemp(prefix=f"char-{req.top}-"))
        try:
            res = characterize(req.files, "char_top", req.clock_ns, liberty, req.groups, work,
                               target_ns=CHAR_TARGET_NS, false_from=("en",))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        over = res.periods["probe"]
        logic = tuple(max(0.0, res.periods[f"s{k}"] - over) for k in range(req.sections))
        t = UnitTiming(req.unit, req.sections, logic, over, res.area_um2, res.flip_flops,
                       req.clock_ns, req.key, res.power_w * req.clock_ns * 1e3)
        write_entry(path, json.dumps({**asdict(t), "logic_ns": list(logic)}, indent=1))
        return t


def measure_all(reqs: Iterable[Request], liberty: Path, lib_sha: str, jobs: int = JOBS
                ) -> dict[str, UnitTiming]:
    """Characterize the requests not in the cache, ``jobs`` at a time; unit -> timing."""
    reqs = list(reqs)
    todo = list({r.key: r for r in reqs}.values())
    if not todo:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = {t.key: t for t in pool.map(lambda r: measure(r, liberty, lib_sha), todo)}
    # units of one text share a characterization, each under its own name
    return {r.unit: replace(done[r.key], unit=r.unit) for r in reqs}


# ---- the plan --------------------------------------------------------------------------------


@dataclass
class LibraryPlan:
    """The timing plan of :mod:`lightnorm.codegen.rtl` from the characterized library: each
    pipelinable module gets the registers :meth:`UnitTiming.choose` picks for ``clock_ns``.
    ``timings`` must hold every module the design asks for (:func:`plan_for` fills it)."""

    clock_ns: float
    timings: Mapping[str, UnitTiming]
    margin_ns: float = MARGIN_NS
    liberty: str = ""
    liberty_sha256: str = ""
    choices: dict[str, Choice] = field(default_factory=dict)
    #: unit -> (cut points, its characterization with registers there: one entry of
    #: ``logic_ns`` per stage): loops whose allowed registers leave sections merged
    #: (:func:`placed_loops`)
    placed: Mapping[str, tuple[frozenset[int], UnitTiming]] = field(default_factory=dict)
    #: units characterized for a decision but not instantiated by the design (a path of a
    #: module that is not a unit): not in :attr:`overhead_ns`
    not_instantiated: frozenset[str] = frozenset()

    def cuts(self, unit: str, template: str, sections: int, variant: Any,
             max_latency: int | None = None, context_ns: float = 0.0,
             instantiated: bool = True) -> frozenset[int]:
        del variant, instantiated
        t = self.timings.get(unit)
        if t is None:
            raise KeyError(f"{unit}: not characterized (lightnorm.codegen.timing.plan_for)")
        margin = self.margin_ns + context_ns
        cuts = t.choose(self.clock_ns, margin, max_latency)
        stages = t.stage_ns(cuts, margin)
        placed = self.placed.get(unit)
        as_placed = False
        if placed is not None and placed[0] == cuts:
            as_placed, pt = True, placed[1]
            stages = [d + pt.overhead_ns + margin for d in pt.logic_ns]
        self.choices[unit] = Choice(unit, template, cuts, stages,
                                    max(stages) <= self.clock_ns, max_latency, as_placed,
                                    context_ns)
        return cuts

    @property
    def overhead_ns(self) -> float:
        """A register stage's overhead (clock-to-Q, enable, setup): the mean over the units the
        design instantiates."""
        over = [t.overhead_ns for u, t in self.timings.items() if u not in self.not_instantiated]
        return sum(over) / len(over) if over else 0.0

    def summary(self) -> dict[str, Any]:
        """What the manifest records: the clock, the library, and per pipelinable module its
        cut points, latency and predicted stage delays (a design built with this plan)."""
        worst = max((max(c.stage_ns) for c in self.choices.values()), default=0.0)
        return {"clock_ns": self.clock_ns, "margin_ns": self.margin_ns,
                "liberty": os.path.basename(self.liberty),
                "liberty_sha256": self.liberty_sha256,
                "stage_overhead_ns": round(self.overhead_ns, 4),
                "predicted_critical_ns": round(worst, 4),
                "fits": all(c.fits for c in self.choices.values()),
                "units": [self.choices[u].to_dict() for u in sorted(self.choices)]}


def liberty_of(liberty: str | Path | None) -> tuple[Path, str]:
    """The liberty file (default: OSU 0.18 um) and its sha256."""
    path = find_osu018_liberty(liberty).resolve()
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


class _Collector:
    """A first pass over a design: every pipelinable module's characterization request (and
    no registers)."""

    def __init__(self, clock_ns: float, liberty: Path, lib_sha: str) -> None:
        self.clock_ns, self.liberty, self.lib_sha = clock_ns, liberty, lib_sha
        self.requests: list[Request] = []
        #: unit -> (max_latency, variant) of the units that close a loop
        self.loops: dict[str, tuple[int, Any]] = {}
        self.not_instantiated: set[str] = set()

    def cuts(self, unit: str, template: str, sections: int, variant: Any,
             max_latency: int | None = None, context_ns: float = 0.0,
             instantiated: bool = True) -> frozenset[int]:
        del context_ns
        if not instantiated:
            self.not_instantiated.add(unit)
        # the library measures every cut point; a loop's placement may be measured later
        top, files, regs = variant(frozenset(range(1, sections)))
        self.requests.append(request(unit, top, sections, files, regs, self.clock_ns,
                                     self.liberty, self.lib_sha))
        if max_latency is not None:
            self.loops[unit] = (max_latency, variant)
        return frozenset()


def placed_loops(timings: Mapping[str, UnitTiming], loops: Mapping[str, tuple[int, Any]],
                 clock_ns: float, margin_ns: float, liberty: Path, lib_sha: str,
                 jobs: int = JOBS) -> dict[str, tuple[frozenset[int], UnitTiming]]:
    """The loops whose allowed registers do not fit ``clock_ns`` by the sum of their sections,
    characterized with the registers where the chooser puts them: unit -> (cuts, timing with
    one entry of ``logic_ns`` per stage).

    A stage of merged sections is shorter than the sum of its sections' delays (ABC maps
    across their boundaries: summed, the plan over-predicted the critical path of the 30 such
    designs synthesized for docs/estimate.md by 19 % on average), and such a loop limits the
    design's clock, so the plan's prediction of that clock is measured instead of summed. The
    registers stay where the chooser puts them (the most the loop allows); only the prediction
    changes. A unit whose every cut point is registered is already measured stage by stage."""
    reqs: list[tuple[str, frozenset[int], Request]] = []
    for unit, (max_latency, variant) in loops.items():
        t = timings[unit]
        cuts = t.choose(clock_ns, margin_ns, max_latency)
        if len(cuts) == t.sections - 1 or max(t.stage_ns(cuts, margin_ns)) <= clock_ns:
            continue
        top, files, regs = variant(cuts)
        reqs.append((unit, cuts, placed_request(unit, top, cuts, files, regs, clock_ns,
                                                liberty, lib_sha)))
    done = measure_all([r for _, _, r in reqs], liberty, lib_sha, jobs)
    return {unit: (cuts, done[unit]) for unit, cuts, _ in reqs}


def plan_for(build: Any, clock_ns: float, liberty: str | Path | None = None,
             jobs: int = JOBS, margin_ns: float = MARGIN_NS) -> LibraryPlan:
    """The timing plan of a design at ``clock_ns``: ``build(plan)`` builds the design's module
    registry with a timing plan (e.g. ``lambda p: rtl_context(spec, p)``); it runs once to
    collect what to characterize (in parallel, cached), and the returned plan gives the
    second, real build its registers."""
    path, sha = liberty_of(liberty)
    col = _Collector(clock_ns, path, sha)
    build(col)
    timings = measure_all(col.requests, path, sha, jobs)
    placed = placed_loops(timings, col.loops, clock_ns, margin_ns, path, sha, jobs)
    return LibraryPlan(clock_ns, timings, margin_ns, str(path), sha, placed=placed,
                       not_instantiated=frozenset(col.not_instantiated))


__all__ = ["Choice", "LIBRARY_VERSION", "LibraryPlan", "MARGIN_NS", "Request", "UnitTiming",
           "liberty_of", "measure", "measure_all", "module_ports", "placed_loops",
           "placed_request", "plan_for", "request", "wrapper"]
