"""Sweeps that explore: estimate every point, synthesize only the Pareto front (issue 18).

``lightnorm sweep --synth front`` (the default) runs two rounds. First every point gets the
cheap stages (:data:`EXPLORE_STAGES`: the estimate of area, Fmax and energy without synthesis,
lightnorm.cost.estimate, and the numerical error of the quality stage; ``generate`` when the
sweep asks for it). Then the points on the Pareto front of (estimated area, estimated total
energy per element of the BN layer, numerical error), the points the user names and the
compared presets (the baselines of the ratios) get every stage the sweep asks for - synthesis,
energy, and csim, cosim or accuracy when listed. ``--synth none``: only the named points are
synthesized; ``--synth all``: every point, as a sweep without this module runs.

A sweep that asks for no synthesis stage (:data:`SYNTH_STAGES`) has nothing to choose: it runs
as asked whatever the mode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..reports.metrics import COMPARED, FRONT_OBJECTIVES, NAMED, ON_FRONT, Metric, pareto_nd
from . import stages as st
from .sweep import SYNTH_MODES

DEFAULT_SYNTH = "front"
#: the stages every point of an exploring sweep runs: cheap, and what the front is chosen on
#: (``quality`` and ``estimate`` always; ``generate`` when the sweep lists it)
EXPLORE_STAGES = ("generate", "quality", st.ESTIMATE)
#: the stages that synthesize the design
SYNTH_STAGES = ("synth", *st.BACKEND_STAGES)
#: what the front minimises, from the estimate and the quality stage
OBJECTIVES: tuple[Metric, ...] = FRONT_OBJECTIVES
__all__ = ["COMPARED", "DEFAULT_SYNTH", "EXPLORE_STAGES", "NAMED", "OBJECTIVES", "ON_FRONT",
           "SYNTH_MODES", "SYNTH_STAGES", "Rounds", "check_named", "front", "metric_of",
           "objectives", "rounds", "select"]


@dataclass(frozen=True)
class Rounds:
    """The stages of the two rounds of an exploring sweep."""

    mode: str
    #: run on every point
    explore: tuple[str, ...]
    #: run on the selected points (the explore stages are read back from the store)
    selected: tuple[str, ...]


def rounds(stages: Sequence[str], mode: str) -> Rounds | None:
    """The two rounds of a sweep of ``stages`` under ``--synth mode``; None: one round of
    ``stages`` on every point (``all``, or no synthesis stage asked for)."""
    if mode not in SYNTH_MODES:
        raise ValueError(f"synth mode {mode!r}")
    if mode == "all" or not any(s in SYNTH_STAGES for s in stages):
        return None
    explore = tuple(s for s in st.ALL_STAGES
                    if s in (st.ESTIMATE, "quality") or (s in EXPLORE_STAGES and s in stages))
    selected = tuple(s for s in st.ALL_STAGES if s in explore or s in stages)
    return Rounds(mode, explore, selected)


def metric_of(summary: Mapping[str, Any], m: Metric) -> float | None:
    """A finite number at ``m``'s place in a run summary's stage metrics, else None."""
    ent = summary.get("stages", {}).get(m.stage)
    if not ent or ent.get("status") != "ok":
        return None
    v: Any = ent.get("metrics")
    for k in m.path:
        if not isinstance(v, Mapping):
            return None
        v = v.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def objectives(summary: Mapping[str, Any]) -> tuple[float, ...] | None:
    """(estimated area, estimated total energy per element, error), None when one is missing."""
    vals = [metric_of(summary, m) for m in OBJECTIVES]
    return None if any(v is None for v in vals) else tuple(v for v in vals if v is not None)


def front(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the summaries on the Pareto front of :data:`OBJECTIVES` (those with all
    three figures; the others can be neither on it nor dominated)."""
    named = [(s["spec"], o) for s in summaries if (o := objectives(s)) is not None]
    return [named[i][0] for i in pareto_nd([o for _, o in named])]


def select(summaries: Sequence[Mapping[str, Any]], mode: str, named: Sequence[str]
           ) -> dict[str, str]:
    """The specs to synthesize -> why, in the order of ``summaries``: the compared presets and
    the front (``front``), and the ``named`` points."""
    why: dict[str, str] = {}
    on_front = set(front([s for s in summaries if not s.get("preset")])) if mode == "front" \
        else set()
    for s in summaries:
        name = s["spec"]
        if name in named:
            why[name] = NAMED
        elif mode == "front" and s.get("preset"):
            why[name] = COMPARED
        elif name in on_front:
            why[name] = ON_FRONT
    return why


def check_named(named: Sequence[str], points: Sequence[str], where: str) -> None:
    """UsageError (exit 2) for a named point that is not a valid point of the sweep."""
    unknown = [n for n in named if n not in points]
    if unknown:
        shown = ", ".join(points[:3]) + (", ..." if len(points) > 3 else "")
        raise UsageError(f"{where} = {unknown[0]!r}: expected the name of a valid point of "
                         f"the sweep ({shown}; lightnorm sweep FILE --list shows them)")
