"""The comparison report: per-spec summaries of the flow rendered as HTML and Markdown, with
figures (PNG) and CSV exports of every table (docs/report.md).

Input: one summary per spec (or sweep point) as the flow's results store produces them - spec
name and hash, preset flag, sweep name and point coordinates, and a record per stage (``csim``,
``cosim``, ``synth``, ``energy``, ``quality``, optionally ``synth_xls``) with its status, reason,
finish time, duration, tool versions and metrics. Any stage may be missing or not ``ok``: the
report shows that (status and reason, ``—`` in the cells it would have filled), never a zero.

Every number, ratio and formatted string is computed here; the templates
(``reports/templates/report.{html,md}.j2``) only lay them out. Matplotlib is imported inside the
plotting functions (object-oriented API on an Agg canvas, no pyplot, no global backend switch).

Output layout (``out_dir``)::

    report.html   self-contained page (inline CSS), links figures/ and data/ relatively
    report.md     the same content in Markdown
    figures/*.png
    data/*.csv    raw values (units in the column names), empty cell = no value

Everything is first written into a temporary folder next to ``out_dir`` and moved into place at
the end; a failure (including :class:`ReportError` on malformed input, raised before anything
is written) leaves ``out_dir`` as it was. A missing baseline, or one without synthesis, is not
a failure: the ratios show — and the header warns.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from ..errors import LightnormError

__all__ = ["BLOCKS", "STAGES", "ReportError", "ReportFiles", "build_report", "pareto_front"]

#: the stages of the flow, in report order (any other stage found in a summary follows them)
STAGES = ("csim", "cosim", "synth", "energy", "quality")
#: the synthesis area blocks (docs/synthesis.md, "Blocks"), in report order
BLOCKS = ("statistics", "finalize", "normalize", "bfp_codec", "backward", "control")
PASSES = ("forward", "backward")
#: the synthesis stages compared in the "template RTL vs XLS RTL" table: (reference, other)

MISSING = "—"
TIMES = "×"
REASON_CHARS = 90

TEMPLATE_PACKAGE = "lightnorm"
TEMPLATE_FOLDER = "templates/report"
HTML_TEMPLATE = "report.html.j2"
MD_TEMPLATE = "report.md.j2"


class ReportError(LightnormError):
    """The report cannot be built (malformed input, an output path that is a file): exit 2."""

    exit_code = 2


@dataclass(frozen=True)
class ReportFiles:
    """The files :func:`build_report` wrote (final paths inside ``out_dir``)."""

    html: Path
    markdown: Path
    figures: list[Path]
    csv: list[Path]


# --------------------------------------------------------------------------------------------
# number formatting (the only place numbers become text)

def _num(value: Any) -> float | None:
    """``value`` as a float when it is a real number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _finite_or_text(value: float) -> str | None:
    return None if math.isfinite(value) else str(value)


def fmt_sig(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, fixed notation between 1e-3 and 1e6, else scientific."""
    bad = _finite_or_text(value)
    if bad is not None:
        return bad
    if value == 0:
        return "0"
    mag = abs(value)
    if 1e-3 <= mag < 1e6:
        decimals = max(0, digits - 1 - math.floor(math.log10(mag)))
        return f"{value:.{decimals}f}"
    return f"{value:.{digits - 1}e}"


def fmt_mm2(um2: float) -> str:
    """um2 shown as mm2 with 3 decimals."""
    return _finite_or_text(um2) or f"{um2 / 1e6:.3f}"


def fmt_mhz(mhz: float) -> str:
    return _finite_or_text(mhz) or f"{mhz:.1f}"


def fmt_int(value: float) -> str:
    """pJ, mW, cycles: integers."""
    return _finite_or_text(value) or f"{value:.0f}"


def fmt_count(value: float) -> str:
    """Large counts (gate equivalents, elements) with thousands separators."""
    return _finite_or_text(value) or f"{value:,.0f}"


def fmt_ns(value: float) -> str:
    return _finite_or_text(value) or f"{value:.2f}"


def fmt_mj(pj: float) -> str:
    """pJ shown as mJ, 3 significant digits."""
    return fmt_sig(pj / 1e9)


def fmt_err(value: float) -> str:
    """Errors: 3 significant digits, scientific (``1.23e-03``)."""
    bad = _finite_or_text(value)
    if bad is not None:
        return bad
    return "0" if value == 0 else f"{value:.2e}"


def fmt_db(value: float) -> str:
    return _finite_or_text(value) or f"{value:.1f}"


def fmt_ratio(value: float) -> str:
    """Ratios: 3 significant digits (``3.25×``, ``0.266×``)."""
    return fmt_sig(value) + TIMES


def fmt_pct(value: float) -> str:
    return _finite_or_text(value) or f"{value:.1f}%"


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _shorten(text: str, limit: int = REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _tools_text(versions: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {_one_line(v) if v is not None else '(unknown)'}"
                     for k, v in sorted(versions.items())) or MISSING


def _finished_text(finished: str | None) -> str:
    if not finished:
        return MISSING
    return finished.replace("T", " ")


# --------------------------------------------------------------------------------------------
# the normalised input

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
        status = _one_line(record.get("status") or "missing")
        reason = record.get("reason")
        finished = record.get("finished")
        tools = record.get("tool_versions")
        metrics = record.get("metrics")
        return cls(
            name=name,
            status=status,
            reason=_one_line(reason) if reason not in (None, "") else None,
            finished=str(finished) if finished else None,
            duration_s=_num(record.get("duration_s")),
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
        return _num(self.value(stage, path)[0])

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


IDENTITY_FIELDS = ["label", "spec", "spec_hash", "preset", "sweep", "point"]


def _point_text(point: Mapping[str, Any]) -> str:
    """``man_bits=7, block=16`` (the last component of each key, the whole key on a clash)."""
    shorts = [str(k).rsplit(".", 1)[-1] for k in point]
    out = []
    for (key, value), short in zip(point.items(), shorts, strict=True):
        name = short if shorts.count(short) == 1 else str(key)
        out.append(f"{name}={value}")
    return ", ".join(out)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "spec"


def _normalise(summaries: Sequence[Mapping[str, Any]], baseline: str) -> list[Entry]:
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
    # order: baseline, presets, other specs, then sweep points (grouped by sweep), input order
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
            label = f"{e.spec} [{_point_text(e.point)}]"
        seen[label] = seen.get(label, 0) + 1
        e.label = label if seen[label] == 1 else f"{label} #{seen[label]}"
        e.short = (_point_text(e.point) if e.is_point and e.point is not None else e.spec) + \
            ("" if seen[label] == 1 else f" #{seen[label]}")
        anchor = "spec-" + _slug(e.label)
        k = 2
        while anchor in anchors:
            anchor = f"spec-{_slug(e.label)}-{k}"
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


def _check_baseline(entries: Sequence[Entry], baseline: str) -> tuple[Entry | None, str | None]:
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


# --------------------------------------------------------------------------------------------
# tables

@dataclass
class Cell:
    text: str
    cls: str = "text"          # num | text | missing | ok | bad
    note: str | None = None    # HTML tooltip: why a value is missing
    href: str | None = None    # HTML only (anchors of the detail sections)


@dataclass
class Column:
    header: str
    numeric: bool = False

    @property
    def md_align(self) -> str:
        return "---:" if self.numeric else "---"


@dataclass
class Table:
    """A displayed table and, when ``csv`` is set, its CSV export (raw values)."""

    name: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]]
    csv_fields: list[str] = field(default_factory=list)
    csv_rows: list[list[Any]] = field(default_factory=list)
    csv: str | None = None     # relative path, set when the table is exported


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
_BY_KEY = {m.key: m for m in SYNTH_METRICS + ENERGY_METRICS + QUALITY_METRICS}
AREA = _BY_KEY["area_um2"]
FMAX = _BY_KEY["fmax_mhz"]
E_FWD = _BY_KEY["energy_forward_pj_per_element"]
E_BWD = _BY_KEY["energy_backward_pj_per_element"]
BYTES = _BY_KEY["offchip_bytes_per_element_total"]
MEM_PJ = _BY_KEY["memory_pj_per_element"]
DP_PJ = _BY_KEY["datapath_pj_per_element"]
TOTAL_PJ = _BY_KEY["total_pj_per_element"]
ERROR = _BY_KEY["error"]


@dataclass(frozen=True)
class Ratio:
    """A ratio against the baseline; ``inverse``: spec / baseline, else baseline / spec."""

    key: str
    header: str
    metric: Metric
    inverse: bool = False


RATIOS = (
    Ratio("area_ratio_baseline_over_spec", "area: baseline / spec (× smaller)", AREA),
    Ratio("energy_forward_ratio_baseline_over_spec",
          "energy/elem fwd: baseline / spec (× less)", E_FWD),
    Ratio("energy_backward_ratio_baseline_over_spec",
          "energy/elem bwd: baseline / spec (× less)", E_BWD),
    Ratio("memory_energy_ratio_baseline_over_spec",
          "memory energy: baseline / spec (× less)", MEM_PJ),
    Ratio("total_energy_ratio_baseline_over_spec",
          "total layer energy: baseline / spec (× less)", TOTAL_PJ),
    Ratio("offchip_bytes_ratio_spec_over_baseline",
          "off-chip bytes/elem: spec / baseline (fraction)", BYTES, inverse=True),
)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or not math.isfinite(num) or not math.isfinite(den) \
            or num <= 0 or den <= 0:
        return None
    return num / den


def _metric_cell(e: Entry, m: Metric) -> tuple[Cell, Any]:
    """(display cell, raw CSV value) of one metric of one entry."""
    raw, why = e.value(m.stage, m.path)
    x = _num(raw)
    if x is None:
        if why is None:
            why = f"{m.stage}: {'.'.join(m.path)} is not a number ({raw!r})"
        return Cell(MISSING, "missing", note=why), None
    return Cell(m.fmt(x), "num"), raw


def _status_cell(st: Stage) -> tuple[Cell, str]:
    if st.ok:
        return Cell("ok", "ok"), "ok"
    full = st.status_text()
    return Cell(_shorten(full), "bad", note=full), full


def _spec_cell(e: Entry) -> Cell:
    text = e.label + (" (baseline)" if e.is_baseline else "")
    return Cell(text, "text", href="#" + e.anchor)


def _verification(st: Stage) -> tuple[Cell, Any]:
    """csim/cosim: bit-exact, not bit-exact (mismatches), or the status and reason."""
    if not st.ok:
        return _status_cell(st)
    m = st.metrics
    exact = m.get("bit_exact")
    elements = _num(m.get("elements"))
    mism = _num(m.get("mismatches"))
    if exact is True:
        n = f" ({fmt_count(elements)} elements)" if elements is not None else ""
        return Cell("bit-exact" + n, "ok"), "bit-exact"
    if exact is False:
        detail = (f"{fmt_count(mism) if mism is not None else '?'} of "
                  f"{fmt_count(elements) if elements is not None else '?'} differ")
        return Cell(f"NOT bit-exact: {detail}", "bad"), "not bit-exact"
    return Cell("ok (bit-exactness not reported)", "missing"), "ok"


def _per_spec_table(name: str, title: str, entries: Sequence[Entry],
                    stage: str | None, metrics: Sequence[Metric]) -> Table:
    """Row per entry: spec, the stage's status (if given), the metrics."""
    columns = [Column("spec")]
    fields = list(IDENTITY_FIELDS)
    if stage is not None:
        columns.append(Column(stage))
        fields += [f"{stage}_status"]
    columns += [Column(m.header, numeric=True) for m in metrics]
    fields += [m.key for m in metrics]
    rows, csv_rows = [], []
    for e in entries:
        row, raw = [_spec_cell(e)], e.identity()
        if stage is not None:
            c, r = _status_cell(e.stage(stage))
            row.append(c)
            raw.append(r)
        for m in metrics:
            c, r = _metric_cell(e, m)
            row.append(c)
            raw.append(r)
        rows.append(row)
        csv_rows.append(raw)
    return Table(name, title, columns, rows, fields, csv_rows)


def _run_stages(entries: Sequence[Entry]) -> list[str]:
    """The stages at least one summary has (a stage no summary has was not run at all)."""
    return [n for n in dict.fromkeys([*STAGES, *(n for e in entries for n in e.stages)])
            if any(n in e.stages for e in entries)]


def _not_ok(e: Entry, stages: Iterable[str]) -> str:
    return "; ".join(e.stage(n).describe() for n in stages if not e.stage(n).ok)


def _overview_table(entries: Sequence[Entry]) -> Table:
    metrics = (AREA, FMAX, E_FWD, E_BWD, BYTES, TOTAL_PJ, ERROR)
    t = _per_spec_table("overview", "Overview", entries, None, metrics)
    t.columns.insert(1, Column("kind"))
    t.columns += [Column("csim"), Column("cosim"), Column("stages not ok")]
    t.csv_fields.insert(len(IDENTITY_FIELDS), "kind")
    t.csv_fields += ["csim", "cosim", "stages_not_ok"]
    for e, row, raw in zip(entries, t.rows, t.csv_rows, strict=True):
        row.insert(1, Cell(e.kind))
        raw.insert(len(IDENTITY_FIELDS), e.kind)
        for st in ("csim", "cosim"):
            c, r = _verification(e.stage(st))
            c.text = _shorten(c.text, 40) if c.cls == "bad" else c.text
            row.append(c)
            raw.append(r)
        text = _not_ok(e, _run_stages(entries))
        row.append(Cell(_shorten(text, 2 * REASON_CHARS), "bad", note=text) if text
                   else Cell("none", "ok"))
        raw.append(text)
    return t


def _area_table(entries: Sequence[Entry]) -> Table:
    extra = []
    for e in entries:
        bd = e.value("synth", ("area_breakdown",))[0]
        if isinstance(bd, Mapping):
            extra += [str(k) for k in bd if k not in BLOCKS and k not in extra]
    blocks = [*BLOCKS, *extra]
    metrics = [M(f"{b}_um2", f"{b} (mm²)", "synth", f"area_breakdown.{b}", fmt_mm2)
               for b in blocks]
    metrics.append(replace(AREA, header="total (mm²)"))
    return _per_spec_table("area_by_block", "Area by block", entries, "synth", metrics)


def _verification_table(entries: Sequence[Entry]) -> Table:
    columns = [Column("spec"), Column("csim"), Column("csim finished"), Column("cosim"),
               Column("cosim cycles", numeric=True), Column("cosim finished"),
               Column("tool versions")]
    fields = [*IDENTITY_FIELDS]
    for st in ("csim", "cosim"):
        fields += [f"{st}_status", f"{st}_reason", f"{st}_bit_exact", f"{st}_elements",
                   f"{st}_mismatches", f"{st}_finished", f"{st}_duration_s"]
    fields += ["cosim_cycles", "tool_versions"]
    rows, csv_rows = [], []
    for e in entries:
        csim, cosim = e.stage("csim"), e.stage("cosim")
        tools: dict[str, Any] = {**csim.tool_versions, **cosim.tool_versions}
        cycles, cycles_raw = _metric_cell(e, M("cycles", "", "cosim", "cycles", fmt_count))
        row = [_spec_cell(e), _verification(csim)[0], Cell(_finished_text(csim.finished)),
               _verification(cosim)[0], cycles, Cell(_finished_text(cosim.finished)),
               Cell(_tools_text(tools))]
        raw = e.identity()
        for rec in (csim, cosim):
            m = rec.metrics if rec.ok else {}
            raw += [rec.status, rec.reason, m.get("bit_exact"), m.get("elements"),
                    m.get("mismatches"), rec.finished, rec.duration_s]
        raw += [cycles_raw, json.dumps(tools, sort_keys=True) if tools else None]
        rows.append(row)
        csv_rows.append(raw)
    return Table("verification", "Verification", columns, rows, fields, csv_rows)


def _ratio_table(entries: Sequence[Entry], base: Entry | None) -> Table:
    columns = [Column("spec")] + [Column(r.header, numeric=True) for r in RATIOS]
    fields = [*IDENTITY_FIELDS] + [r.key for r in RATIOS]
    rows, csv_rows = [], []
    for e in entries:
        row, raw = [_spec_cell(e)], e.identity()
        for r in RATIOS:
            mine = e.number(r.metric.stage, r.metric.path)
            bas = None if base is None else base.number(r.metric.stage, r.metric.path)
            value = _ratio(mine, bas) if r.inverse else _ratio(bas, mine)
            if value is None:
                why = e.value(r.metric.stage, r.metric.path)[1] if mine is None else (
                    f"baseline has no {r.metric.key}" if bas is None else "not positive")
                row.append(Cell(MISSING, "missing", note=why))
            else:
                row.append(Cell(fmt_ratio(value), "num"))
            raw.append(value)
        rows.append(row)
        csv_rows.append(raw)
    return Table("ratios", "Ratios against the baseline"
                 + (f" ({base.label})" if base is not None else " (missing)"), columns, rows,
                 fields, csv_rows)


def _bare(header: str) -> str:
    """A column header without its unit: ``area (mm²)`` -> ``area``."""
    return re.sub(r"\s*\([^)]*\)$", "", header)


#: template-vs-XLS figures (lightnorm.cost.backend_compare): header, path in each side
XLS_FIGURES: tuple[tuple[str, tuple[str, ...], Callable[[float], str]], ...] = (
    ("area (mm²)", ("area_um2",), fmt_mm2),
    ("Fmax (MHz)", ("fmax_mhz",), fmt_mhz),
    ("forward cycles", ("cycles", "forward"), fmt_int),
    ("backward cycles", ("cycles", "backward"), fmt_int),
    ("energy fwd (pJ/element)", ("energy_pj_per_element", "forward"), fmt_int),
    ("energy bwd (pJ/element)", ("energy_pj_per_element", "backward"), fmt_int),
)
XLS_SIDES = (("template", "template"), ("xls", "XLS"))


def _xls_comparison(entries: Sequence[Entry]) -> list[Table]:
    """Per spec with a synth_xls stage: both designs at their common clock (figures, ratios)
    and the area of each block of both."""
    rows_of = [e for e in entries if "synth_xls" in e.stages]
    if not rows_of:
        return []
    columns = [Column("spec"), Column("synth_xls"), Column("common clock (ns)", True),
               Column("both meet it")]
    fields = [*IDENTITY_FIELDS, "synth_xls_status", "clock_ns", "both_met"]
    for header, path, _ in XLS_FIGURES:
        key = "_".join(path)
        columns += [Column(f"{header} {name}", True) for _, name in XLS_SIDES]
        columns.append(Column(f"{_bare(header)}: XLS / template", True))
        fields += [f"{key}_{side}" for side, _ in XLS_SIDES] + [f"{key}_ratio_xls_over_template"]
    b_columns = [Column("spec"), Column("block"), Column("template (mm²)", True),
                 Column("XLS (mm²)", True), Column("XLS / template", True)]
    b_fields = [*IDENTITY_FIELDS, "block", "area_um2_template", "area_um2_xls",
                "ratio_xls_over_template"]
    rows, csv_rows, b_rows, b_csv = [], [], [], []
    for e in rows_of:
        comp, why = e.value("synth_xls", ("comparison",))
        if not isinstance(comp, Mapping):
            comp, why = {}, why or "synth_xls reports no comparison"
        clock, met = _num(comp.get("clock_ns")), comp.get("both_met")
        row = [_spec_cell(e), _status_cell(e.stage("synth_xls"))[0],
               Cell(fmt_ns(clock), "num") if clock is not None else Cell(MISSING, "missing",
                                                                           note=why),
               Cell("yes", "ok") if met is True else Cell("no", "bad") if met is False
               else Cell(MISSING, "missing", note=why)]
        raw = [*e.identity(), e.stage("synth_xls").status_text(), clock,
               met if isinstance(met, bool) else None]
        for _, path, fmt in XLS_FIGURES:
            vals = []
            for side, _ in XLS_SIDES:
                cur: Any = comp.get(side)
                for k in path:
                    cur = cur.get(k) if isinstance(cur, Mapping) else None
                v = _num(cur)
                vals.append(v)
                row.append(Cell(fmt(v), "num") if v is not None
                           else Cell(MISSING, "missing", note=why or f"no {'.'.join(path)}"))
            ratio = _ratio(vals[1], vals[0])
            row.append(Cell(fmt_ratio(ratio), "num") if ratio is not None
                       else Cell(MISSING, "missing", note="needs both values"))
            raw += [*vals, ratio]
        rows.append(row)
        csv_rows.append(raw)
        areas = [comp.get(side, {}).get("area_breakdown") if isinstance(comp.get(side), Mapping)
                 else None for side, _ in XLS_SIDES]
        if all(isinstance(a, Mapping) for a in areas):
            for block in BLOCKS:
                t, x = (_num(a.get(block)) for a in areas)  # type: ignore[union-attr]
                ratio = _ratio(x, t)
                b_rows.append([_spec_cell(e), Cell(block)] + [
                    Cell(fmt_mm2(v), "num") if v is not None else Cell(MISSING, "missing")
                    for v in (t, x)] + [Cell(fmt_ratio(ratio), "num") if ratio is not None
                                        else Cell(MISSING, "missing", note="needs both")])
                b_csv.append([*e.identity(), block, t, x, ratio])
    return [Table("template_vs_xls", "Template RTL vs XLS RTL at a common clock", columns, rows,
                  fields, csv_rows),
            Table("template_vs_xls_blocks", "Area by block, template RTL vs XLS RTL", b_columns,
                  b_rows, b_fields, b_csv)]


def _quality_distributions(entries: Sequence[Entry]) -> Table:
    columns = [Column("spec"), Column("distribution"), Column("tensor"), Column("reference"),
               Column("rel. RMS", True), Column("max abs err", True), Column("SQNR (dB)", True)]
    fields = [*IDENTITY_FIELDS, "distribution", "tensor", "reference", "rel_rms",
              "max_abs_err", "sqnr_db"]
    rows, csv_rows = [], []
    for e in entries:
        dists = e.value("quality", ("distributions",))[0]
        if not isinstance(dists, Mapping):
            continue
        for dist, tensors in dists.items():
            for tensor, refs in (tensors.items() if isinstance(tensors, Mapping) else ()):
                for ref, vals in (refs.items() if isinstance(refs, Mapping) else ()):
                    vals = vals if isinstance(vals, Mapping) else {}
                    row = [_spec_cell(e), Cell(str(dist)), Cell(str(tensor)), Cell(str(ref))]
                    raw = [*e.identity(), dist, tensor, ref]
                    for key, fmt in (("rel_rms", fmt_err), ("max_abs_err", fmt_err),
                                     ("sqnr_db", fmt_db)):
                        x = _num(vals.get(key))
                        row.append(Cell(fmt(x), "num") if x is not None
                                   else Cell(MISSING, "missing", note=f"no {key}"))
                        raw.append(vals.get(key) if x is not None else None)
                    rows.append(row)
                    csv_rows.append(raw)
    return Table("quality_distributions", "Numerical error per input distribution", columns,
                 rows, fields, csv_rows)


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


def _front_members(entries: Sequence[Entry], y: Metric) -> set[int]:
    """Indices (Entry.index) on the (error, y) Pareto front of these entries."""
    pts, idx = [], []
    for e in entries:
        err, val = e.number("quality", ERROR.path), e.number(y.stage, y.path)
        if err is not None and val is not None and math.isfinite(err) and math.isfinite(val):
            pts.append((err, val))
            idx.append(e.index)
    return {idx[i] for i in pareto_front(pts)}


def _sweep_table(sweep: str, entries: Sequence[Entry]) -> Table:
    coords = list(dict.fromkeys(k for e in entries for k in (e.point or {})))
    on_area, on_energy = _front_members(entries, AREA), _front_members(entries, TOTAL_PJ)
    columns = ([Column("spec")] + [Column(str(k)) for k in coords]
               + [Column(AREA.header, True), Column(TOTAL_PJ.header, True),
                  Column(ERROR.header, True), Column("Pareto: area vs error"),
                  Column("Pareto: energy vs error"), Column("stages not ok")])
    fields = [*IDENTITY_FIELDS, *(str(k) for k in coords), AREA.key, TOTAL_PJ.key, ERROR.key,
              "pareto_area_error", "pareto_energy_error", "stages_not_ok"]
    rows, csv_rows = [], []
    for e in entries:
        row, raw = [_spec_cell(e)], e.identity()
        for k in coords:
            v = (e.point or {}).get(k)
            row.append(Cell(MISSING if v is None else str(v), "num" if v is not None
                            else "missing"))
            raw.append(v)
        for m in (AREA, TOTAL_PJ, ERROR):
            c, r = _metric_cell(e, m)
            row.append(c)
            raw.append(r)
        for front, m in ((on_area, AREA), (on_energy, TOTAL_PJ)):
            if e.number(m.stage, m.path) is None or e.number(ERROR.stage, ERROR.path) is None:
                row.append(Cell(MISSING, "missing", note=f"no {m.key} or no error"))
                raw.append(None)
            else:
                row.append(Cell("yes", "ok") if e.index in front else Cell("no"))
                raw.append(e.index in front)
        bad = _not_ok(e, ("synth", "energy", "quality"))
        row.append(Cell(_shorten(bad, 2 * REASON_CHARS), "bad", note=bad) if bad
                   else Cell(""))
        raw.append(bad)
        rows.append(row)
        csv_rows.append(raw)
    return Table(f"sweep_{_slug(sweep)}", f"Sweep {sweep}", columns, rows, fields, csv_rows)


def _kv_table(name: str, title: str, items: Iterable[tuple[str, str]]) -> Table:
    return Table(name, title, [Column("item"), Column("value")],
                 [[Cell(k), Cell(v)] for k, v in items])


def _detail(e: Entry) -> Section:
    facts = [("spec", e.spec), ("spec hash", e.spec_hash or MISSING), ("kind", e.kind)]
    if e.point is not None:
        facts += [(str(k), str(v)) for k, v in e.point.items()]
    synth = e.stage("synth")
    if synth.ok:
        m = synth.metrics
        met = m.get("timing_met")
        clock = _num(m.get("clock_ns"))
        fmax = _num(m.get("fmax_mhz"))
        timing = MISSING if met is None else ("met" if met else "NOT met")
        if clock is not None:
            timing += f" at {fmt_ns(clock)} ns"
        if fmax is not None:
            timing += f" (Fmax {fmt_mhz(fmax)} MHz)"
        facts.append(("timing", timing))
        if m.get("timing_flow"):
            facts.append(("timing netlist flow", str(m["timing_flow"])))
        cp = m.get("critical_path")
        if isinstance(cp, Mapping) and cp:
            facts.append(("critical path", " -> ".join(str(cp[k]) for k in ("start", "end")
                                                       if cp.get(k))
                          + (f" ({fmt_ns(a)} ns)" if (a := _num(cp.get("arrival_ns")))
                             is not None else "")))
        cpe = m.get("cycles_per_element")
        if isinstance(cpe, Mapping):
            facts += [(f"cycles per element ({p})", fmt_sig(x)) for p in PASSES
                      if (x := _num(cpe.get(p))) is not None]
        if m.get("liberty"):
            facts.append(("liberty", str(m["liberty"])))
        ge = m.get("gate_equivalents")
        for k, v in (ge.items() if isinstance(ge, Mapping) else ()):
            x = _num(v)
            facts.append((f"gate equivalents ({k})", fmt_count(x) if x is not None else MISSING))
    notes = synth.metrics.get("notes") if synth.ok else None
    if isinstance(notes, list):
        facts += [("synthesis note", _one_line(n)) for n in notes]
    energy = e.stage("energy")
    shape = energy.metrics.get("shape") if energy.ok else None
    if shape:
        facts.append(("energy layer shape", _shape_text(shape)))
    facts_t = _kv_table("facts", "Facts", facts)

    stages = Table("stages", "Stages", [Column("stage"), Column("status"), Column("finished"),
                                        Column("duration (s)", True), Column("tool versions")],
                   [])
    for name in dict.fromkeys([*STAGES, *e.stages]):
        st = e.stage(name)
        tools = dict(st.tool_versions)
        if st.ok and isinstance(st.metrics.get("tool_versions"), Mapping):
            tools.update(st.metrics["tool_versions"])
        stages.rows.append([
            Cell(name), Cell(st.status_text(), "ok" if st.ok else "bad"),
            Cell(_finished_text(st.finished)),
            Cell(fmt_sig(st.duration_s) if st.duration_s is not None else MISSING, "num"),
            Cell(_tools_text(tools)),
        ])
    tables = [facts_t, stages]

    bd = e.value("synth", ("area_breakdown",))[0]
    total = e.number("synth", ("area_um2",))
    if isinstance(bd, Mapping) and bd:
        blocks = Table("blocks", "Area by block", [Column("block"), Column("mm²", True),
                                                    Column("share", True)], [])
        for b in [*[b for b in BLOCKS if b in bd], *[b for b in bd if b not in BLOCKS]]:
            x = _num(bd[b])
            share = _ratio(x, total) if x else (0.0 if x == 0 and total else None)
            blocks.rows.append([Cell(str(b)),
                                Cell(fmt_mm2(x), "num") if x is not None else Cell(MISSING),
                                Cell(fmt_pct(100 * share), "num") if share is not None
                                else Cell(MISSING, "missing")])
        tables.append(blocks)
    dist = _quality_distributions([e])
    if dist.rows:
        for row in dist.rows:
            del row[0]
        del dist.columns[0]
        tables.append(dist)
    return Section(e.anchor, e.label + (" (baseline)" if e.is_baseline else ""), [], tables, [])


# --------------------------------------------------------------------------------------------
# figures

@dataclass
class Figure:
    name: str      # file stem
    title: str
    caption: str
    file: str = ""  # relative path, set when written


@dataclass
class Section:
    id: str
    title: str
    paragraphs: list[str]
    tables: list[Table]
    figures: list[Figure]


BLOCK_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
                 "#edc948", "#ff9da7", "#9c755f", "#bab0ac")


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _bar_width(n: int) -> float:
    return min(40.0, max(6.0, 1.0 + 0.55 * n))


def _mark_missing(ax: Any, x: int, text: str) -> None:
    ax.text(x, 0, text, rotation=90, ha="center", va="bottom", fontsize=7, color="#888888")


def _plot_area(entries: Sequence[Entry], path: Path) -> None:
    fig = _new_figure(_bar_width(len(entries)), 5.0)
    ax = fig.add_subplot()
    blocks: list[str] = list(BLOCKS)
    for e in entries:
        bd = e.value("synth", ("area_breakdown",))[0]
        if isinstance(bd, Mapping):
            blocks += [str(k) for k in bd if k not in blocks]
    bottoms = [0.0] * len(entries)
    for bi, block in enumerate(blocks):
        xs, hs, bs = [], [], []
        for i, e in enumerate(entries):
            v = e.number("synth", ("area_breakdown", block))
            if v is not None and math.isfinite(v):
                xs.append(i)
                hs.append(v / 1e6)
                bs.append(bottoms[i])
                bottoms[i] += v / 1e6
        if xs:
            ax.bar(xs, hs, bottom=bs, label=block, color=BLOCK_COLOURS[bi % len(BLOCK_COLOURS)])
    no_bd = [(i, e.number("synth", ("area_um2",))) for i, e in enumerate(entries)
             if bottoms[i] == 0.0]
    shown = [(i, v / 1e6) for i, v in no_bd if v is not None and math.isfinite(v)]
    if shown:
        ax.bar([i for i, _ in shown], [v for _, v in shown], color="#cccccc", hatch="//",
               label="total (no breakdown)")
    for i, v in no_bd:
        if v is None:
            _mark_missing(ax, i, "n/a: " + _shorten(entries[i].value("synth", ("area_um2",))[1]
                                                    or "no area", 40))
    ax.set_xticks(range(len(entries)), [e.short for e in entries], rotation=40, ha="right",
                  fontsize=8)
    ax.set_ylabel("area (mm²), hierarchical synthesis")
    ax.set_title("Area by block")
    if ax.get_legend_handles_labels()[0]:  # nothing synthesized: no legend (and no warning)
        ax.legend(fontsize=8, ncols=2)
    fig.savefig(path, format="png")


def _plot_energy(entries: Sequence[Entry], path: Path, shape: str) -> None:
    fig = _new_figure(_bar_width(len(entries)), 5.0)
    ax = fig.add_subplot()
    series: list[tuple[str, Metric, str]] = [("datapath (synthesis)", DP_PJ, "#4e79a7"),
                                            ("off-chip memory", MEM_PJ, "#f28e2b")]
    bottoms = [0.0] * len(entries)
    for name, m, colour in series:
        xs, hs, bs = [], [], []
        for i, e in enumerate(entries):
            v = e.number(m.stage, m.path)
            if v is not None and math.isfinite(v):
                xs.append(i)
                hs.append(v)
                bs.append(bottoms[i])
                bottoms[i] += v
        if xs:
            ax.bar(xs, hs, bottom=bs, label=name, color=colour)
    for i, e in enumerate(entries):
        if e.number(MEM_PJ.stage, MEM_PJ.path) is None:
            _mark_missing(ax, i, "n/a: " + _shorten(e.value("energy", MEM_PJ.path)[1] or "", 40))
        elif e.number(DP_PJ.stage, DP_PJ.path) is None:
            ax.text(i, bottoms[i], "datapath n/a", rotation=90, ha="center", va="bottom",
                    fontsize=7, color="#888888")
    ax.set_xticks(range(len(entries)), [e.short for e in entries], rotation=40, ha="right",
                  fontsize=8)
    ax.set_ylabel("energy per element (pJ), fwd + bwd")
    ax.set_title(f"Energy per element: datapath vs off-chip memory\none BN layer {shape}, "
                 "forward + backward", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.savefig(path, format="png")


def _plot_pareto(entries: Sequence[Entry], y: Metric, scale: float, ylabel: str, title: str,
                 path: Path) -> list[str]:
    """Sweep points (front connected), other specs as labelled stars; returns omitted labels."""
    fig = _new_figure(8.0, 5.5)
    ax = fig.add_subplot()
    omitted: list[str] = []
    data: list[tuple[Entry, float, float]] = []
    for e in entries:
        err, val = e.number("quality", ERROR.path), e.number(y.stage, y.path)
        if err is None or val is None or not math.isfinite(err) or not math.isfinite(val):
            omitted.append(e.label)
        else:
            data.append((e, err, val / scale))
    positive = [err for _, err, _ in data if err > 0]
    floor = min(positive) / 10 if positive else 1e-12

    def xpos(err: float) -> float:
        return err if err > 0 else floor

    sweeps = list(dict.fromkeys(e.sweep for e, _, _ in data if e.is_point))
    for k, sweep in enumerate(sweeps):
        colour = BLOCK_COLOURS[k % len(BLOCK_COLOURS)]
        pts = [(err, v) for e, err, v in data if e.is_point and e.sweep == sweep]
        ax.scatter([xpos(p[0]) for p in pts], [p[1] for p in pts], color=colour, alpha=0.45,
                   s=28, label=f"sweep {sweep}")
        front = [pts[i] for i in pareto_front(pts)]
        ax.plot([xpos(p[0]) for p in front], [p[1] for p in front], "-o", color=colour,
                markersize=6, label=f"Pareto front ({sweep})")
    labelled: set[bool] = set()
    for e, err, v in data:
        if e.is_point:
            continue
        colour = "#d62728" if e.preset else "#555555"
        ax.scatter([xpos(err)], [v], marker="*", s=180, color=colour, edgecolors="black",
                   linewidths=0.6, zorder=3,
                   label=None if e.preset in labelled else
                   ("presets" if e.preset else "other specs"))
        labelled.add(e.preset)
        ax.annotate(e.label + (" (error 0)" if err <= 0 else ""), (xpos(err), v),
                    textcoords="offset points", xytext=(6, 6), fontsize=8, color=colour)
    ax.set_xscale("log")
    ys = [v for _, _, v in data if v > 0]
    if ys and max(ys) > 4 * min(ys):
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_xlabel('numerical error: quality summary["error"] (log scale; 0 drawn at the floor)'
                  if any(err <= 0 for _, err, _ in data)
                  else 'numerical error: quality summary["error"] (log scale)')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if data:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no spec has both values", transform=ax.transAxes, ha="center")
    fig.savefig(path, format="png")
    return omitted


# --------------------------------------------------------------------------------------------
# templates

def template_root() -> Path:
    return Path(str(resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_FOLDER)))


_MD_SPECIAL = re.compile(r"([\\`*|<>\[\]])")


def md_escape(text: Any) -> str:
    """One line of Markdown text (table cells too): backslash-escape the active characters."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(text))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_root())),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    return env


# --------------------------------------------------------------------------------------------
# building

def _shape_text(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        return "(" + ", ".join(str(d) for d in shape) + ")"
    return str(shape)


def _distinct(entries: Sequence[Entry], stage: str, key: str,
              show: Callable[[Any], str] = str) -> list[str]:
    out: list[str] = []
    for e in entries:
        v = e.value(stage, (key,))[0]
        if v is not None and show(v) not in out:
            out.append(show(v))
    return out


def _write_csv(path: Path, fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for row in rows:
            w.writerow([cell(v) for v in row])


def build_report(
    summaries: Sequence[Mapping[str, Any]],
    out_dir: Path,
    baseline: str = "fp32-baseline",
    title: str | None = None,
    *,
    generated: datetime | None = None,
) -> ReportFiles:
    """Write ``report.html``, ``report.md``, ``figures/*.png`` and ``data/*.csv`` into
    ``out_dir`` (created; existing files of the same names are replaced, others left alone).

    Raises :class:`ReportError` (one line) before writing anything when the input is not a
    list of summaries. A missing baseline, or one whose ``synth``/``energy`` stage is not ok
    (a flow without synthesis), still gives a report: what is there, with — and a warning
    where a ratio needs what is missing.
    ``generated``: the date printed in the header (default: now, UTC).
    """
    entries = _normalise(summaries, baseline)
    base, base_warning = _check_baseline(entries, baseline)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"report folder {out_dir} exists and is not a folder")
    when = (generated or datetime.now(UTC)).astimezone(UTC)
    title = title or "lightnorm comparison report"

    sweeps: dict[str, list[Entry]] = {}
    for e in entries:
        if e.is_point:
            sweeps.setdefault(str(e.sweep), []).append(e)
    run_stages = _run_stages(entries)

    shapes = _distinct(entries, "energy", "shape", _shape_text)
    shape = shapes[0] if len(shapes) == 1 else ("mixed: " + "; ".join(shapes) if shapes
                                                else MISSING)
    libs = _distinct(entries, "synth", "liberty", lambda v: os.path.basename(str(v)))
    clocks = _distinct(entries, "synth", "clock_ns",
                       lambda v: f"{fmt_ns(x)} ns" if (x := _num(v)) is not None else str(v))
    quality_shapes = _distinct(entries, "quality", "shape", _shape_text)
    n_presets = sum(e.preset for e in entries)
    n_points = sum(len(v) for v in sweeps.values())
    parts = [f"{n_presets} preset{'s' if n_presets != 1 else ''}"]
    if len(entries) - n_presets - n_points:
        parts.append(f"{len(entries) - n_presets - n_points} other specs")
    if sweeps:
        parts.append(f"{n_points} sweep points in {len(sweeps)} "
                     f"sweep{'s' if len(sweeps) != 1 else ''}: {', '.join(sweeps)}")
    counts = f"{len(entries)} ({'; '.join(parts)})"
    header = [
        ("generated", when.strftime("%Y-%m-%d %H:%M UTC")),
        ("baseline", f"{baseline} (missing)" if base is None else
         base.label + (f" (spec hash {base.spec_hash[:12]})" if base.spec_hash else "")),
        ("specs", counts),
        ("layer shape of the energy figures (N, C, H, W)", shape),
        ("quality shape", "; ".join(quality_shapes) or MISSING),
        ("synthesis library", "; ".join(libs) or MISSING),
        ("synthesis clock", "; ".join(clocks) or MISSING),
    ]
    warnings = [] if base_warning is None else [base_warning]
    if len(shapes) > 1:
        warnings.append("the energy figures were computed for different layer shapes: per-layer "
                        "energies do not compare across them (per-element figures do)")
    if len(libs) > 1 or len(clocks) > 1:
        warnings.append("the specs were synthesized with different libraries or clocks")
    not_run = [n for n in STAGES if n not in run_stages]
    if not_run:
        warnings.append(f"stages run for no spec: {', '.join(not_run)} (their columns show —)")
    failing = [e for e in entries if _not_ok(e, run_stages)]
    if failing:
        warnings.append(f"{len(failing)} of {len(entries)} summaries have a stage that is "
                        "missing or not ok: their cells show — (the reason is in the status "
                        "columns and the detail sections)")

    figures: list[Figure] = []
    fig_area = Figure("area_by_block", "Area by block",
                      "Hierarchical synthesis area per spec, stacked by block "
                      "(docs/synthesis.md, Blocks).")
    fig_energy = Figure("energy_per_element", "Energy per element",
                        f"Energy per element of one BN layer {shape}, forward + backward: "
                        "datapath (synthesis) stacked on off-chip memory (energy model).")
    figures += [fig_area, fig_energy]

    sections = [
        Section("overview", "Overview", [
            "One row per summary. Energy per element fwd/bwd: datapath energy from synthesis; "
            "total pJ/elem: datapath + off-chip memory for one BN layer of the shape above; "
            "error: the quality summary's \"error\". Hover a — for the reason it is missing."],
            [_overview_table(entries)], []),
        Section("ratios", "Ratios against the baseline", [
            "Area and energy: baseline / spec (how many times smaller, > 1 is better). "
            "Off-chip bytes: spec / baseline (the fraction of the baseline's traffic, < 1 is "
            "better)."], [_ratio_table(entries, base)], []),
        Section("synthesis", "Synthesis", [
            "Area of the hierarchical netlist; Fmax, power and energy per element of the flat "
            "timing netlist at the synthesis clock, power from simulated switching activity "
            "(docs/synthesis.md)."],
            [_per_spec_table("synthesis", "Synthesis", entries, "synth", SYNTH_METRICS),
             _area_table(entries)], [fig_area]),
        Section("energy", "Off-chip memory and layer energy", [
            f"One BN layer of shape {shape} in training (forward + backward), "
            "docs/energy.md: bytes per element moved off chip, memory energy, datapath "
            "energy from synthesis, their total per element and per layer."],
            [_per_spec_table("energy", "Energy", entries, "energy", ENERGY_METRICS)],
            [fig_energy]),
        Section("quality", "Numerical error", [
            "Summary figures of the quality stage (docs/quality.md): relative RMS error of y "
            "and dx, averaged over the input distributions, against float64 batch "
            "normalization of the spec's own kind (vs own) and standard batch normalization "
            "(vs standard); error = max(y vs own, dx vs own), the figure the Pareto plots use. "
            "Per input distribution: in the per-spec details and "
            "data/quality_distributions.csv."],
            [_per_spec_table("quality", "Numerical error", entries, "quality",
                             QUALITY_METRICS)], []),
        Section("verification", "Verification", [
            "C simulation (csim) and RTL co-simulation (cosim) against the golden model: "
            "bit-exact or the number of differing elements."],
            [_verification_table(entries)], []),
    ]
    xls = _xls_comparison(entries)
    if xls:
        sections.append(Section("xls", "Template RTL vs XLS RTL", [
            "The same spec synthesized from the template-generated RTL and from the RTL of "
            "the XLS backend (XLS-HLS-generated arithmetic, statistics step and finalize in "
            "the template's streaming shell; its pipelines scheduled by XLS at the spec's "
            "clock), same library, flow and workload, at one common clock: the spec's clock, "
            "or, when either design misses it, the slower critical period + 5% on a 0.5 ns "
            "grid, synthesized again (lightnorm.cost.backend_compare; 'both meet it' says "
            "whether that worked). Cycles: of the simulated activity workload, per pass. "
            "Ratios: XLS / template (> 1: XLS is larger, faster, slower in cycles or uses "
            "more energy)."], xls, []))

    pareto_figs: list[tuple[Figure, Metric, float, str]] = []
    if sweeps:
        fig_pa = Figure("pareto_area_error", "Area vs error", "")
        fig_pe = Figure("pareto_energy_error", "Total energy per element vs error", "")
        pareto_figs = [(fig_pa, AREA, 1e6, "area (mm²)"),
                       (fig_pe, TOTAL_PJ, 1.0, f"total energy per element (pJ), layer {shape}")]
        figures += [fig_pa, fig_pe]
        sections.append(Section("sweeps", "Sweeps", [
            "Every sweep point, its coordinates and the three figures the Pareto plots use; "
            "Pareto \"yes\": on the Pareto front of its sweep (no other point of the sweep has "
            "both a lower error and a lower area / energy). Error axis: the quality summary's "
            "\"error\", log scale. Presets are the labelled stars."],
            [_sweep_table(name, pts) for name, pts in sweeps.items()], [fig_pa, fig_pe]))

    details = [_detail(e) for e in entries]
    # exported tables: those shown in the sections, then the CSV-only ones
    tables = [t for s in sections for t in s.tables] + [_quality_distributions(entries)]

    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    try:
        (tmp / "figures").mkdir()
        (tmp / "data").mkdir()
        rel: list[str] = []
        for t in tables:
            t.csv = f"data/{t.name}.csv"
            _write_csv(tmp / t.csv, t.csv_fields, t.csv_rows)
            rel.append(t.csv)
        for fig in figures:
            fig.file = f"figures/{fig.name}.png"
            rel.append(fig.file)
        _plot_area(entries, tmp / fig_area.file)
        _plot_energy(entries, tmp / fig_energy.file, shape)
        for fig, metric, scale, ylabel in pareto_figs:
            omitted = _plot_pareto(entries, metric, scale, ylabel, fig.title, tmp / fig.file)
            fig.caption = (f"{fig.title}: sweep points (the Pareto-optimal ones connected) and "
                           "the other specs (stars, labelled); error = quality summary "
                           "\"error\", log scale.")
            if omitted:
                fig.caption += (f" Not plotted (no {metric.key} or no error): "
                                + ", ".join(omitted) + ".")
        ctx = {
            "title": title,
            "header": header,
            "warnings": warnings,
            "sections": sections,
            "details": details,
            "csv_files": [t.csv for t in tables],
        }
        env = environment()
        (tmp / "report.md").write_text(env.get_template(MD_TEMPLATE).render(**ctx),
                                       encoding="utf-8")
        (tmp / "report.html").write_text(env.get_template(HTML_TEMPLATE).render(**ctx),
                                         encoding="utf-8")
        rel += ["report.md", "report.html"]
        _install(tmp, out_dir, rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReportFiles(
        html=out_dir / "report.html",
        markdown=out_dir / "report.md",
        figures=[out_dir / f.file for f in figures],
        csv=[out_dir / t.csv for t in tables if t.csv],
    )


def _install(tmp: Path, out_dir: Path, rel: Sequence[str]) -> None:
    """Move the finished report into place: the whole folder when ``out_dir`` does not exist
    (one rename), else file by file with os.replace (the HTML and Markdown last)."""
    if not out_dir.exists():
        tmp.chmod(0o755)
        try:
            os.rename(tmp, out_dir)
            return
        except OSError:
            if not out_dir.is_dir():  # not a lost race with another writer
                raise
    for r in rel:
        dest = out_dir / r
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / r, dest)
