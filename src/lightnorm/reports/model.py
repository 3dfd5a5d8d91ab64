"""The report's input, normalised: one :class:`Entry` per summary of the flow's results store.

A summary (``ResultStore.summaries()``) holds a spec's name and hash, its preset flag, sweep
name and point coordinates, and a record per stage (``csim``, ``cosim``, ``synth``,
``energy``, ``quality``, optionally ``synth_xls``) with its status, reason, finish time,
duration, tool versions and metrics. Any stage may be missing or not ``ok``: an entry answers
"no value, and why" (:meth:`Entry.value`), never a zero.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import LightnormError
from .text import one_line, point_text, slug

#: the stages of the flow, in report order (any other stage found in a summary follows them)
STAGES = ("csim", "cosim", "synth", "energy", "quality")
#: the synthesis area blocks (docs/synthesis.md, "Blocks"), in report order
BLOCKS = ("statistics", "finalize", "normalize", "bfp_codec", "backward", "control")
PASSES = ("forward", "backward")
#: the CSV columns that name a summary (:meth:`Entry.identity`)
IDENTITY_FIELDS = ["label", "spec", "spec_hash", "preset", "sweep", "point"]


class ReportError(LightnormError):
    """The report cannot be built (no baseline, baseline stage not ok, bad input): exit 2."""

    exit_code = 2


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (metrics of unknown shape)."""
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Stage:
    """One stage record of a summary; a stage absent from the summary has status "missing"."""

    name: str
    status: str
    reason: str | None = None
    finished: str | None = None
    duration_s: float | None = None
    tool_versions: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def status_text(self) -> str:
        """``ok``, ``missing``, ``failed: <reason>`` (one line, full reason)."""
        if self.ok or not self.reason:
            return self.status
        return f"{self.status}: {self.reason}"

    def describe(self) -> str:
        """``synth failed: <reason>``: why this stage gives no numbers."""
        return f"{self.name} {self.status_text()}"

    @classmethod
    def parse(cls, name: str, record: Any) -> Stage:
        if record is None:
            return cls(name, "missing")
        if not isinstance(record, Mapping):
            return cls(name, "error", reason=f"malformed stage record ({type(record).__name__})")
        status = one_line(record.get("status") or "missing")
        reason = record.get("reason")
        finished = record.get("finished")
        tools = record.get("tool_versions")
        metrics = record.get("metrics")
        return cls(
            name=name,
            status=status,
            reason=one_line(reason) if reason not in (None, "") else None,
            finished=str(finished) if finished else None,
            duration_s=as_number(record.get("duration_s")),
            tool_versions=dict(tools) if isinstance(tools, Mapping) else {},
            metrics=metrics if isinstance(metrics, Mapping) else {},
        )


@dataclass
class Entry:
    """One summary, normalised, with a unique display label and an HTML anchor."""

    index: int
    spec: str
    spec_hash: str | None
    preset: bool
    sweep: str | None
    point: dict[str, Any] | None
    stages: dict[str, Stage]
    label: str = ""
    short: str = ""   # x-axis label of the bar charts
    anchor: str = ""
    is_baseline: bool = False

    def stage(self, name: str) -> Stage:
        return self.stages.get(name) or Stage(name, "missing")

    def value(self, stage: str, path: Sequence[str]) -> tuple[Any, str | None]:
        """(metric, None) or (None, why there is none)."""
        st = self.stage(stage)
        if not st.ok:
            return None, st.describe()
        cur: Any = st.metrics
        for key in path:
            if not isinstance(cur, Mapping) or cur.get(key) is None:
                return None, f"{stage} reports no {'.'.join(path)}"
            cur = cur[key]
        return cur, None

    def number(self, stage: str, path: Sequence[str]) -> float | None:
        return as_number(self.value(stage, path)[0])

    @property
    def kind(self) -> str:
        if self.preset:
            return "preset" if self.sweep is None else f"preset (sweep {self.sweep})"
        return "spec" if self.sweep is None else f"sweep {self.sweep}"

    @property
    def is_point(self) -> bool:
        """A sweep point (presets run beside a sweep carry its name but are not points)."""
        return self.sweep is not None and not self.preset

    def identity(self) -> list[Any]:
        return [self.label, self.spec, self.spec_hash, self.preset, self.sweep,
                json.dumps(self.point, sort_keys=True, default=str) if self.point is not None
                else None]


def normalise(summaries: Sequence[Mapping[str, Any]], baseline: str) -> list[Entry]:
    """The summaries as entries in report order (baseline, presets, other specs, then sweep
    points grouped by sweep; input order within each), with unique labels and anchors."""
    if isinstance(summaries, (str, bytes)) or not isinstance(summaries, Sequence):
        raise ReportError("summaries must be a sequence of summary mappings")
    if not summaries:
        raise ReportError(f"no summaries to report (baseline {baseline!r} needs one)")
    entries = []
    for i, s in enumerate(summaries):
        if not isinstance(s, Mapping):
            raise ReportError(f"summary #{i} is a {type(s).__name__}, not a mapping")
        spec = s.get("spec")
        if not isinstance(spec, str) or not spec:
            raise ReportError(f"summary #{i} has no spec name")
        stages_in = s.get("stages")
        stages_in = stages_in if isinstance(stages_in, Mapping) else {}
        names = [n for n in STAGES if n in stages_in] + [n for n in stages_in if n not in STAGES]
        point = s.get("point")
        sweep = s.get("sweep")
        entries.append(Entry(
            index=i,
            spec=spec,
            spec_hash=str(s["spec_hash"]) if s.get("spec_hash") else None,
            preset=bool(s.get("preset")),
            sweep=str(sweep) if sweep is not None else None,
            point=dict(point) if isinstance(point, Mapping) and point else None,
            stages={str(n): Stage.parse(str(n), stages_in[n]) for n in names},
        ))
    base = [e for e in entries if e.spec == baseline]
    base.sort(key=lambda e: (e.is_point, not e.preset, e.index))
    chosen = base[0] if base else None
    if chosen is not None:
        chosen.is_baseline = True
    sweeps = list(dict.fromkeys(e.sweep for e in entries if e.is_point))
    entries.sort(key=lambda e: (not e.is_baseline, not e.preset,
                                sweeps.index(e.sweep) if e.is_point else -1, e.index))
    # unique labels and anchors
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for e in entries:
        label = e.spec
        if e.is_point and e.point is not None:
            label = f"{e.spec} [{point_text(e.point)}]"
        seen[label] = seen.get(label, 0) + 1
        e.label = label if seen[label] == 1 else f"{label} #{seen[label]}"
        e.short = (point_text(e.point) if e.is_point and e.point is not None else e.spec) + \
            ("" if seen[label] == 1 else f" #{seen[label]}")
        anchor = "spec-" + slug(e.label)
        k = 2
        while anchor in anchors:
            anchor = f"spec-{slug(e.label)}-{k}"
            k += 1
        anchors.add(anchor)
        e.anchor = anchor
    return entries


#: what the ratios need from the baseline: (stage, path, description)
BASELINE_NEEDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("synth", ("area_um2",), "area"),
    ("synth", ("energy_pj_per_element", "forward"), "forward energy per element"),
    ("synth", ("energy_pj_per_element", "backward"), "backward energy per element"),
    ("energy", ("offchip_bytes_per_element", "total"), "off-chip bytes per element"),
    ("energy", ("memory_pj_per_element",), "memory energy per element"),
)


def check_baseline(entries: Sequence[Entry], baseline: str) -> tuple[Entry | None, str | None]:
    """The baseline entry (None when there is none) and, when the ratios cannot all be
    computed, a warning saying why: the report is built anyway, with — in those cells."""
    base = next((e for e in entries if e.is_baseline), None)
    if base is None:
        specs = sorted({e.spec for e in entries})
        shown = ", ".join(specs[:8]) + (f", ... ({len(specs)} specs)" if len(specs) > 8 else "")
        return None, (f"baseline {baseline!r} is missing: no summary of that spec (specs: "
                      f"{shown}); the ratios show —")
    for stage in ("synth", "energy"):
        st = base.stage(stage)
        if not st.ok:
            return base, (f"baseline {baseline!r}: stage {stage} is {st.status_text()} - the "
                          "ratios that need it show —")
    for stage, path, what in BASELINE_NEEDS:
        v = base.number(stage, path)
        if v is None or not math.isfinite(v) or v <= 0:
            return base, (f"baseline {baseline!r}: {stage} gives no usable {what} "
                          f"({'.'.join(path)} = {base.value(stage, path)[0]!r}) - the ratios "
                          "that need it show —")
    return base, None


def run_stages(entries: Sequence[Entry]) -> list[str]:
    """The stages at least one summary has (a stage no summary has was not run at all)."""
    return [n for n in dict.fromkeys([*STAGES, *(n for e in entries for n in e.stages)])
            if any(n in e.stages for e in entries)]


def not_ok(e: Entry, stages: Iterable[str]) -> str:
    """``synth failed: ...; quality missing``: the stages of ``e`` that give no numbers."""
    return "; ".join(e.stage(n).describe() for n in stages if not e.stage(n).ok)


def sweeps(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    """The sweep points by sweep name, in entry order."""
    out: dict[str, list[Entry]] = {}
    for e in entries:
        if e.is_point:
            out.setdefault(str(e.sweep), []).append(e)
    return out


def distinct(entries: Sequence[Entry], stage: str, key: str,
             show: Callable[[Any], str] = str) -> list[str]:
    """The different values (as ``show`` writes them) of one metric over the entries."""
    out: list[str] = []
    for e in entries:
        v = e.value(stage, (key,))[0]
        if v is not None and show(v) not in out:
            out.append(show(v))
    return out
