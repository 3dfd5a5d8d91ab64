"""The figures the report reads from the stages (where each is, how it is written) and those
it derives from them: ratios against the baseline and Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Entry, as_mapping, as_number
from .text import (
    clock_text,
    fmt_acc,
    fmt_count,
    fmt_err,
    fmt_int,
    fmt_mhz,
    fmt_mj,
    fmt_mm2,
    fmt_ns,
    fmt_pp,
    fmt_sig,
    point_text,
    timing_text,
)


@dataclass(frozen=True)
class Metric:
    """A number read from one stage's metrics, its display and CSV names and its format."""

    key: str
    header: str
    stage: str
    path: tuple[str, ...]
    fmt: Callable[[float], str]


def M(key: str, header: str, stage: str, path: str, fmt: Callable[[float], str]) -> Metric:
    return Metric(key, header, stage, tuple(path.split(".")), fmt)


SYNTH_METRICS = (
    M("area_um2", "area (mm²)", "synth", "area_um2", fmt_mm2),
    M("nand2_equivalents", "NAND2 eq.", "synth", "gate_equivalents.nand2_area", fmt_count),
    M("fmax_mhz", "Fmax (MHz)", "synth", "fmax_mhz", fmt_mhz),
    M("clock_ns", "clock (ns)", "synth", "clock_ns", fmt_ns),
    M("power_forward_mw", "power fwd (mW)", "synth", "power_mw.forward", fmt_int),
    M("power_backward_mw", "power bwd (mW)", "synth", "power_mw.backward", fmt_int),
    M("energy_forward_pj_per_element", "energy/elem fwd (pJ)", "synth",
      "energy_pj_per_element.forward", fmt_int),
    M("energy_backward_pj_per_element", "energy/elem bwd (pJ)", "synth",
      "energy_pj_per_element.backward", fmt_int),
)
ENERGY_METRICS = (
    M("offchip_bytes_per_element_forward", "off-chip B/elem fwd", "energy",
      "offchip_bytes_per_element.forward", fmt_sig),
    M("offchip_bytes_per_element_backward", "off-chip B/elem bwd", "energy",
      "offchip_bytes_per_element.backward", fmt_sig),
    M("offchip_bytes_per_element_total", "off-chip B/elem total", "energy",
      "offchip_bytes_per_element.total", fmt_sig),
    M("memory_pj_per_element", "memory pJ/elem", "energy", "memory_pj_per_element", fmt_int),
    M("datapath_pj_per_element", "datapath pJ/elem", "energy", "datapath_pj_per_element",
      fmt_int),
    M("total_pj_per_element", "total pJ/elem", "energy", "total_pj_per_element", fmt_int),
    M("memory_pj", "memory per layer (mJ)", "energy", "memory_pj", fmt_mj),
    M("total_pj", "total per layer (mJ)", "energy", "total_pj", fmt_mj),
)
QUALITY_METRICS = (
    M("y_vs_own", "y vs own (rel. RMS)", "quality", "summary.y_vs_own", fmt_err),
    M("dx_vs_own", "dx vs own (rel. RMS)", "quality", "summary.dx_vs_own", fmt_err),
    M("y_vs_standard", "y vs standard (rel. RMS)", "quality", "summary.y_vs_standard", fmt_err),
    M("dx_vs_standard", "dx vs standard (rel. RMS)", "quality", "summary.dx_vs_standard",
      fmt_err),
    M("error", "error (summary)", "quality", "summary.error", fmt_err),
)
#: the flow's opt-in accuracy stage (lightnorm.flow.stages.ACCURACY; docs/accuracy.md)
ACCURACY_STAGE = "accuracy"
ACCURACY_METRICS = (
    M("accuracy_mean_pct", "test accuracy (%)", ACCURACY_STAGE, "accuracy_pct.mean", fmt_acc),
    M("accuracy_std_pct", "test accuracy std (pp)", ACCURACY_STAGE, "accuracy_pct.std",
      fmt_acc),
    M("accuracy_delta_pp", "Δ accuracy vs FP32 (pp)", ACCURACY_STAGE, "delta_pp", fmt_pp),
)
#: what synthesis would report, predicted without it (lightnorm.cost.estimate; the flow's
#: estimate stage); ``layer``: the energy stage's layer figures with the estimated datapath
ESTIMATE_STAGE = "estimate"
ESTIMATE_METRICS = (
    M("estimated_area_um2", "area est. (mm²)", ESTIMATE_STAGE, "area_um2", fmt_mm2),
    M("estimated_fmax_mhz", "Fmax est. (MHz)", ESTIMATE_STAGE, "fmax_mhz", fmt_mhz),
    M("estimated_energy_forward_pj_per_element", "energy/elem fwd est. (pJ)", ESTIMATE_STAGE,
      "energy_pj_per_element.forward", fmt_int),
    M("estimated_energy_backward_pj_per_element", "energy/elem bwd est. (pJ)", ESTIMATE_STAGE,
      "energy_pj_per_element.backward", fmt_int),
    M("estimated_total_pj_per_element", "total pJ/elem est.", ESTIMATE_STAGE,
      "layer.total_pj_per_element", fmt_int),
)
_BY_KEY = {m.key: m for m in SYNTH_METRICS + ENERGY_METRICS + QUALITY_METRICS
           + ACCURACY_METRICS + ESTIMATE_METRICS}
AREA = _BY_KEY["area_um2"]
FMAX = _BY_KEY["fmax_mhz"]
E_FWD = _BY_KEY["energy_forward_pj_per_element"]
E_BWD = _BY_KEY["energy_backward_pj_per_element"]
BYTES = _BY_KEY["offchip_bytes_per_element_total"]
MEM_PJ = _BY_KEY["memory_pj_per_element"]
DP_PJ = _BY_KEY["datapath_pj_per_element"]
TOTAL_PJ = _BY_KEY["total_pj_per_element"]
ERROR = _BY_KEY["error"]
ACC = _BY_KEY["accuracy_mean_pct"]
ACC_STD = _BY_KEY["accuracy_std_pct"]
ACC_DELTA = _BY_KEY["accuracy_delta_pp"]
EST_AREA = _BY_KEY["estimated_area_um2"]
EST_TOTAL_PJ = _BY_KEY["estimated_total_pj_per_element"]
#: (estimated, synthesized) figure pairs of the report's estimate-vs-synthesis table
ESTIMATE_PAIRS = tuple(zip(ESTIMATE_METRICS, (AREA, FMAX, E_FWD, E_BWD, TOTAL_PJ), strict=True))
#: what ``lightnorm sweep --synth front`` minimises (lightnorm.flow.explore)
FRONT_OBJECTIVES = (EST_AREA, EST_TOTAL_PJ, ERROR)
#: why a sweep point was synthesized
ON_FRONT = "on the estimated Pareto front"
NAMED = "named"
COMPARED = "compared preset"


@dataclass(frozen=True)
class Ratio:
    """A ratio against the baseline; ``inverse``: spec / baseline, else baseline / spec.
    ``clocked``: it depends on the synthesized design at its clock (area, datapath energy), so
    it is marked when either side misses its clock; off-chip traffic does not."""

    key: str
    header: str
    metric: Metric
    inverse: bool = False
    clocked: bool = True


RATIOS = (
    Ratio("area_ratio_baseline_over_spec", "area: baseline / spec (× smaller)", AREA),
    Ratio("energy_forward_ratio_baseline_over_spec",
          "energy/elem fwd: baseline / spec (× less)", E_FWD),
    Ratio("energy_backward_ratio_baseline_over_spec",
          "energy/elem bwd: baseline / spec (× less)", E_BWD),
    Ratio("memory_energy_ratio_baseline_over_spec",
          "memory energy: baseline / spec (× less)", MEM_PJ, clocked=False),
    Ratio("total_energy_ratio_baseline_over_spec",
          "total layer energy: baseline / spec (× less)", TOTAL_PJ),
    Ratio("offchip_bytes_ratio_spec_over_baseline",
          "off-chip bytes/elem: spec / baseline (fraction)", BYTES, inverse=True, clocked=False),
)

#: figures of a backend comparison (lightnorm.cost.backend_compare): header, path in each side
BACKEND_FIGURES: tuple[tuple[str, tuple[str, ...], Callable[[float], str]], ...] = (
    ("area (mm²)", ("area_um2",), fmt_mm2),
    ("Fmax (MHz)", ("fmax_mhz",), fmt_mhz),
    ("forward cycles", ("cycles", "forward"), fmt_int),
    ("backward cycles", ("cycles", "backward"), fmt_int),
    ("energy fwd (pJ/element)", ("energy_pj_per_element", "forward"), fmt_int),
    ("energy bwd (pJ/element)", ("energy_pj_per_element", "backward"), fmt_int),
)


@dataclass(frozen=True)
class Timing:
    """At which clock a design was synthesized and whether it met it (None: not known, ``why``
    says why when the synthesis gives nothing)."""

    clock_ns: float | None = None
    met: bool | None = None
    fmax_mhz: float | None = None
    why: str | None = None

    @classmethod
    def of_metrics(cls, m: Any) -> Timing:
        """From the metrics of a ``synth`` stage (cost.synth.SynthResult as a dict)."""
        if not isinstance(m, Mapping):
            return cls(why="no synthesis metrics")
        met = m.get("timing_met")
        return cls(as_number(m.get("clock_ns")), met if isinstance(met, bool) else None,
                   as_number(m.get("fmax_mhz")))

    @classmethod
    def of(cls, e: Entry) -> Timing:
        st = e.stage("synth")
        return cls.of_metrics(st.metrics) if st.ok else cls(why=st.describe())

    @property
    def missed(self) -> bool:
        return self.met is False

    def text(self) -> str:
        """``met at 5 ns`` / ``NOT met at 5 ns (Fmax 170.0 MHz)``."""
        return timing_text(self.met, self.clock_ns, self.fmax_mhz)

    def clock_text(self) -> str:
        """``5 ns, met`` / ``5 ns, NOT met``."""
        return clock_text(self.met, self.clock_ns)


def critical_paths(e: Entry) -> tuple[float | None, float | None]:
    """(predicted, measured) critical path in ns: the slowest register stage the timing library
    predicted when the design was pipelined (``timing_plan``; None for results without one) and
    the one OpenSTA measured on the synthesized netlist (clock - worst slack)."""
    st = e.stage("synth")
    m = st.metrics if st.ok else {}
    plan = m.get("timing_plan")
    predicted = as_number(plan.get("predicted_critical_ns")) if isinstance(plan, Mapping) \
        else None
    clock, slack = as_number(m.get("clock_ns")), as_number(m.get("worst_slack_ns"))
    return predicted, None if clock is None or slack is None else clock - slack


#: the sweep coordinate of a clock sweep (specs/sweeps/clock-*.toml)
CLOCK_AXIS = "hw.clock_ns"


@dataclass(frozen=True)
class ClockPoint:
    """One point of a clock sweep: the design generated and synthesized for ``clock_ns``."""

    entry: Entry
    #: the line it belongs to: its sweep, and its other coordinates when there are some
    series: str
    clock_ns: float
    timing: Timing
    area_um2: float | None
    energy_pj: tuple[float | None, float | None]   # per element, forward and backward
    forward_cycles: float | None
    forward_elements: float | None

    @property
    def forward_latency_us(self) -> float | None:
        """The simulated forward pass at the clock: cycles x clock."""
        return None if self.forward_cycles is None else self.forward_cycles * self.clock_ns / 1e3


def clock_points(entries: Sequence[Entry]) -> list[ClockPoint]:
    """The sweep points with a ``hw.clock_ns`` coordinate, by series (in entry order), then by
    clock; the clock is the one synthesis used (the coordinate when synthesis gives none)."""
    out = []
    for e in entries:
        point = e.point or {}
        target = as_number(point.get(CLOCK_AXIS))
        if not e.is_point or target is None:
            continue
        rest = {k: v for k, v in point.items() if k != CLOCK_AXIS}
        timing = Timing.of(e)
        out.append(ClockPoint(
            e, str(e.sweep) + (f" [{point_text(rest)}]" if rest else ""),
            timing.clock_ns if timing.clock_ns is not None else target, timing,
            e.number(AREA.stage, AREA.path),
            (e.number(E_FWD.stage, E_FWD.path), e.number(E_BWD.stage, E_BWD.path)),
            e.number("synth", ("activity", "forward", "cycles")),
            e.number("synth", ("activity", "forward", "elements"))))
    order = list(dict.fromkeys(p.series for p in out))
    return sorted(out, key=lambda p: (order.index(p.series), p.clock_ns))


def ratio_of(num: float | None, den: float | None) -> float | None:
    """``num / den`` when both are finite and positive, else None."""
    if num is None or den is None or not math.isfinite(num) or not math.isfinite(den) \
            or num <= 0 or den <= 0:
        return None
    return num / den


@dataclass(frozen=True)
class Reference:
    """The FP32 torch.nn.BatchNorm2d reference an accuracy result was compared with, and how
    both were trained (data set, epochs, seeds): results compare only under one reference."""

    dataset: str
    epochs: int | None
    seeds: int
    mean: float | None
    std: float | None

    def settings(self) -> str:
        """``digits, 10 epochs, 3 seeds``."""
        return (f"{self.dataset}, {self.epochs if self.epochs is not None else '?'} epochs, "
                f"{self.seeds} seed{'s' if self.seeds != 1 else ''}")


def accuracy_reference(e: Entry) -> Reference | None:
    """The reference of an entry's accuracy result (None when the stage gives none)."""
    m, _ = e.value(ACCURACY_STAGE, ())
    if not isinstance(m, Mapping):
        return None
    ds, tr = as_mapping(m.get("dataset")), as_mapping(m.get("training"))
    acc = as_mapping(as_mapping(m.get("reference")).get("accuracy_pct"))
    seeds = tr.get("seeds")
    epochs = as_number(tr.get("epochs"))
    return Reference(str(ds.get("name", "?")), None if epochs is None else int(epochs),
                     len(seeds) if isinstance(seeds, list) else 0, as_number(acc.get("mean")),
                     as_number(acc.get("std")))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates, both coordinates minimised, by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best = math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_nd(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (lower or equal in every coordinate,
    lower in one), every coordinate minimised, in lexicographic order of the points. Equal
    points do not dominate each other: both are kept."""
    order = sorted(range(len(points)), key=lambda i: tuple(points[i]))
    front: list[int] = []
    for i in order:
        p = points[i]
        # a dominating point sorts before p; one that is not on the front is dominated by a
        # front point, which then dominates p too: checking the front suffices
        if not any(all(a <= b for a, b in zip(points[j], p, strict=True))
                   and any(a < b for a, b in zip(points[j], p, strict=True)) for j in front):
            front.append(i)
    return front


def estimated_front(entries: Sequence[Entry]) -> set[int]:
    """Indices (Entry.index) on the Pareto front of :data:`FRONT_OBJECTIVES` among these
    entries (those with all three figures): the front ``lightnorm sweep`` synthesizes."""
    pts, idx = [], []
    for e in entries:
        vals = [e.number(m.stage, m.path) for m in FRONT_OBJECTIVES]
        if all(v is not None and math.isfinite(v) for v in vals):
            pts.append([float(v) for v in vals if v is not None])
            idx.append(e.index)
    return {idx[i] for i in pareto_nd(pts)}


def synthesized_why(e: Entry, front: set[int]) -> str | None:
    """Why a sweep's spec has a synthesis (None: it has none): a compared preset, on the
    estimated front, or named (by --synth-points, the sweep file, or an earlier run)."""
    if e.stage("synth").status == "missing":
        return None
    if e.preset:
        return COMPARED
    return ON_FRONT if e.index in front else f"{NAMED} (or synthesized by an earlier run)"


def relative_error(estimated: float | None, measured: float | None) -> float | None:
    """estimated / measured - 1 (None without both, or a measured 0)."""
    if estimated is None or measured is None or measured == 0:
        return None
    return estimated / measured - 1.0


def error_and(e: Entry, y: Metric) -> tuple[float, float] | None:
    """(error, y) of an entry when both are finite numbers: a point of the Pareto plots."""
    err, val = e.number("quality", ERROR.path), e.number(y.stage, y.path)
    if err is None or val is None or not math.isfinite(err) or not math.isfinite(val):
        return None
    return err, val


def front_members(entries: Sequence[Entry], y: Metric) -> set[int]:
    """Indices (Entry.index) on the (error, y) Pareto front of these entries."""
    pts, idx = [], []
    for e in entries:
        p = error_and(e, y)
        if p is not None:
            pts.append(p)
            idx.append(e.index)
    return {idx[i] for i in pareto_front(pts)}
