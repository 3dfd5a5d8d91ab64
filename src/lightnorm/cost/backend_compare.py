"""A backend's design against the default backend's (the template RTL) at a clock where both
meet timing (docs/xls.md, "Cost").

The XLS backend's pipelines are scheduled by XLS against its own delay model (``sky130`` by
default) at the spec's clock; the synthesis library (OSU 0.18 um by default) is slower, so at the
spec's clock neither design may meet timing, and area or energy compared there would compare
two failing netlists. :func:`compare_backends` therefore synthesizes both designs at one clock
and, when either misses it, moves that common clock to the slower of the two critical periods
(plus a margin, on a 0.5 ns grid) and times both again, until both meet or the rounds run out.

What moves is only the timing constraint: both timing netlists stay mapped at the start clock
(``map_clock_ns``), and a design that schedules its own pipelines stays the one scheduled at the
spec's clock (``schedule_clock_ns``). Re-mapping at the looser clock would let ABC trade the
slack for area and slow the critical path down again (measured on the tests' tiny spec: the XLS
design's path went from 14.7 ns mapped at 5 ns to 17.3 ns mapped at 15.5 ns and 18.7 ns at
18.5 ns), and rescheduling XLS would refill each stage to its sky130 estimate of the new
clock; neither converges. A fixed netlist under a new constraint does, in one step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightnorm.backends import DEFAULT_BACKEND, get_backend
from lightnorm.cost.activity import ActivityConfig
from lightnorm.cost.synth import SynthResult, synthesize
from lightnorm.spec import Spec, SpecError

#: the common clock moves to the slower critical period times this, rounded up to GRID_NS
MARGIN = 1.05
GRID_NS = 0.5
MAX_ROUNDS = 3


def common_clock(periods: list[float], after: float) -> float:
    """The next common clock: the slowest critical period plus the margin, on the grid, and
    later than ``after`` (the clock that just failed)."""
    t = math.ceil(max(periods) * MARGIN / GRID_NS) * GRID_NS
    return max(t, math.floor(after / GRID_NS) * GRID_NS + GRID_NS)


def _period(r: SynthResult) -> float:
    return 1000.0 / r.fmax_mhz if r.fmax_mhz and math.isfinite(r.fmax_mhz) else 0.0


def _latency(r: SynthResult) -> dict[str, Any]:
    return {p: r.activity.get(p, {}).get("cycles") for p in ("forward", "backward")}


@dataclass
class BackendComparison:
    """The designs of ``backend`` and ``reference`` timed at ``clock_ns``, their timing netlists
    mapped at ``map_clock_ns`` (``both_met``: both meet it)."""

    spec: str
    clock_ns: float
    schedule_clock_ns: float
    map_clock_ns: float
    both_met: bool
    reference: SynthResult
    other: SynthResult
    #: every clock tried: clock, and per backend name fmax_mhz / timing_met
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def ratios(self) -> dict[str, float | None]:
        """Backend / reference of area, Fmax, energy per element and cycles per pass."""
        t, x = self.reference, self.other

        def q(a: float | None, b: float | None) -> float | None:
            return a / b if a is not None and b else None

        out = {"area": q(x.area_um2, t.area_um2), "fmax": q(x.fmax_mhz, t.fmax_mhz)}
        for p in ("forward", "backward"):
            out[f"energy_{p}"] = q(x.energy_pj_per_element.get(p),
                                   t.energy_pj_per_element.get(p))
            out[f"cycles_{p}"] = q(_latency(x)[p], _latency(t)[p])
        return out

    def summary(self) -> dict[str, Any]:
        """The figures the flow stores and the report shows."""

        def side(r: SynthResult) -> dict[str, Any]:
            return {"area_um2": r.area_um2, "area_breakdown": r.area_breakdown,
                    "fmax_mhz": r.fmax_mhz, "timing_met": r.timing_met,
                    "worst_slack_ns": r.worst_slack_ns, "power_mw": r.power_mw,
                    "energy_pj_per_element": r.energy_pj_per_element,
                    "cycles": _latency(r), "cache_key": r.cache_key}

        return {"spec": self.spec, "clock_ns": self.clock_ns,
                "schedule_clock_ns": self.schedule_clock_ns, "map_clock_ns": self.map_clock_ns,
                "both_met": self.both_met, "rounds": self.rounds,
                "reference": self.reference.backend, "backend": self.other.backend,
                self.reference.backend: side(self.reference), self.other.backend: side(self.other),
                "xls_area_um2": self.other.xls_area_um2, "ratios": self.ratios()}


def compare_backends(spec: Spec, liberty: str | Path | None = None,
                     clock_ns: float | None = None, activity: ActivityConfig | None = None, *,
                     backend: str, reference: str = DEFAULT_BACKEND, flow: str = "hier",
                     cache: Path | None = None,
                     max_rounds: int = MAX_ROUNDS) -> BackendComparison:
    """Synthesize the designs of ``backend`` and ``reference`` (backend names), timed at a
    common clock both meet.

    Starts at ``clock_ns`` (default the spec's clock, also the clock a backend's own pipelines
    are scheduled at and the clock both timing netlists are mapped at) and moves the common
    clock as the module docstring says; ``both_met`` is False when ``max_rounds`` clocks did
    not suffice (the last one is reported)."""
    if max_rounds < 1:
        raise SpecError("max_rounds", max_rounds, "at least 1")
    names = (get_backend(reference).name, get_backend(backend).name)
    sclk = float(spec.hw.clock_ns)
    clk = float(clock_ns if clock_ns is not None else sclk)
    map_clk = clk
    rounds: list[dict[str, Any]] = []
    for i in range(max_rounds):
        t, x = (synthesize(spec, liberty, clk, activity, flow=flow, cache=cache, backend=n,
                           schedule_clock_ns=sclk, map_clock_ns=map_clk) for n in names)
        rounds.append({"clock_ns": clk, **{n: {"fmax_mhz": r.fmax_mhz, "timing_met": r.timing_met}
                                           for n, r in zip(names, (t, x), strict=True)}})
        met = t.timing_met and x.timing_met
        if met or i + 1 == max_rounds:
            return BackendComparison(spec.name, clk, sclk, map_clk, met, t, x, rounds)
        clk = common_clock([_period(t), _period(x)], clk)
    raise AssertionError("unreachable")


__all__ = ["BackendComparison", "GRID_NS", "MARGIN", "MAX_ROUNDS", "common_clock",
           "compare_backends"]
