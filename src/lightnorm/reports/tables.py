"""The report's tables: what each shows per entry (display cells) and exports (raw CSV values).

A table's rows are lists of :class:`Cell` (formatted text, a CSS class, the reason a value is
missing); ``csv_fields``/``csv_rows`` hold the raw values of the same table for its CSV. The
rendering (:mod:`.render`) only lays them out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..backends import Backend
from .metrics import (
    ACC,
    ACC_DELTA,
    ACC_STD,
    ACCURACY_STAGE,
    AREA,
    BACKEND_FIGURES,
    BYTES,
    E_BWD,
    E_FWD,
    ERROR,
    EST_AREA,
    EST_TOTAL_PJ,
    ESTIMATE_PAIRS,
    FMAX,
    FRONT_OBJECTIVES,
    RATIOS,
    SYNTH_METRICS,
    TOTAL_PJ,
    M,
    Metric,
    Timing,
    accuracy_reference,
    clock_points,
    critical_paths,
    estimated_front,
    front_members,
    ratio_of,
    relative_error,
    synthesized_why,
)
from .model import (
    BLOCKS,
    IDENTITY_FIELDS,
    PASSES,
    STAGES,
    Entry,
    Stage,
    as_mapping,
    as_number,
    not_ok,
    run_stages,
)
from .text import (
    MISSING,
    REASON_CHARS,
    acc_text,
    finished_text,
    fmt_clock,
    fmt_count,
    fmt_db,
    fmt_err,
    fmt_int,
    fmt_mhz,
    fmt_mm2,
    fmt_ns,
    fmt_pct,
    fmt_ratio,
    fmt_rel,
    fmt_sig,
    fmt_us,
    one_line,
    shape_text,
    shorten,
    slug,
    tools_text,
)


@dataclass
class Cell:
    text: str
    cls: str = "text"          # num | text | missing | ok | bad | unmet (a marked number)
    note: str | None = None    # HTML tooltip: why a value is missing or marked
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
    href: str | None = None    # the link to it: ``csv``, or a data URI in a single-file report


def metric_cell(e: Entry, m: Metric) -> tuple[Cell, Any]:
    """(display cell, raw CSV value) of one metric of one entry."""
    raw, why = e.value(m.stage, m.path)
    x = as_number(raw)
    if x is None:
        if why is None:
            why = f"{m.stage}: {'.'.join(m.path)} is not a number ({raw!r})"
        return Cell(MISSING, "missing", note=why), None
    return Cell(m.fmt(x), "num"), raw


def status_cell(st: Stage) -> tuple[Cell, str]:
    if st.ok:
        return Cell("ok", "ok"), "ok"
    full = st.status_text()
    return Cell(shorten(full), "bad", note=full), full


def spec_cell(e: Entry) -> Cell:
    text = e.label + (" (baseline)" if e.is_baseline else "")
    return Cell(text, "text", href="#" + e.anchor)


def verification_cell(st: Stage) -> tuple[Cell, Any]:
    """csim/cosim: bit-exact, not bit-exact (mismatches), or the status and reason."""
    if not st.ok:
        return status_cell(st)
    m = st.metrics
    exact = m.get("bit_exact")
    elements = as_number(m.get("elements"))
    mism = as_number(m.get("mismatches"))
    if exact is True:
        n = f" ({fmt_count(elements)} elements)" if elements is not None else ""
        return Cell("bit-exact" + n, "ok"), "bit-exact"
    if exact is False:
        detail = (f"{fmt_count(mism) if mism is not None else '?'} of "
                  f"{fmt_count(elements) if elements is not None else '?'} differ")
        return Cell(f"NOT bit-exact: {detail}", "bad"), "not bit-exact"
    return Cell("ok (bit-exactness not reported)", "missing"), "ok"


#: what a design that misses its clock is, said wherever one is marked
UNMET_WHY = ("a design that misses its clock has its power and energy computed at a clock its "
             "netlist does not reach, and meeting the clock would take more registers or "
             "larger cells")
#: appended to a number that involves a design missing its clock
UNMET_MARK = " (clock not met)"
#: the CSV fields of a design's timing (raw values of :func:`timing_cell`)
TIMING_FIELDS = ["clock_ns", "timing_met"]


def timing_cell(t: Timing) -> tuple[Cell, list[Any]]:
    """``met at 5 ns`` (ok) / ``NOT met at 5 ns (Fmax ...)`` (bad), and [clock_ns, timing_met]."""
    raw = [t.clock_ns, t.met]
    if t.met is None:
        return Cell(t.text(), "missing", note=t.why or "synthesis reports no timing_met"), raw
    return (Cell(t.text(), "ok") if t.met else Cell(t.text(), "bad", note=UNMET_WHY)), raw


def clock_cell(t: Timing) -> Cell:
    """``5 ns, met`` (ok) / ``5 ns, NOT met`` (bad)."""
    if t.met is None:
        return Cell(t.clock_text(), "missing", note=t.why or "synthesis reports no timing_met")
    return Cell(t.clock_text(), "ok" if t.met else "bad",
                note=None if t.met else f"{t.text()} - {UNMET_WHY}")


def _with_timing(t: Table, entries: Sequence[Entry], at: int, csv_at: int) -> None:
    """Insert a ``timing`` column at ``at`` and its CSV fields at ``csv_at``."""
    t.columns.insert(at, Column("timing"))
    t.csv_fields[csv_at:csv_at] = TIMING_FIELDS
    for e, row, raw in zip(entries, t.rows, t.csv_rows, strict=True):
        cell, values = timing_cell(Timing.of(e))
        row.insert(at, cell)
        raw[csv_at:csv_at] = values


def per_spec_table(name: str, title: str, entries: Sequence[Entry],
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
        row, raw = [spec_cell(e)], e.identity()
        if stage is not None:
            c, r = status_cell(e.stage(stage))
            row.append(c)
            raw.append(r)
        for m in metrics:
            c, r = metric_cell(e, m)
            row.append(c)
            raw.append(r)
        rows.append(row)
        csv_rows.append(raw)
    return Table(name, title, columns, rows, fields, csv_rows)


def accuracy_cells(e: Entry) -> tuple[list[Cell], list[Any]]:
    """``99.35 ± 0.16`` and ``+0.46`` (the difference from the FP32 reference), and the raw
    [mean, std, delta] in percent and percentage points."""
    mean, why = e.value(ACC.stage, ACC.path)
    std = e.number(ACC_STD.stage, ACC_STD.path)
    delta, why_delta = e.value(ACC_DELTA.stage, ACC_DELTA.path)
    m, d = as_number(mean), as_number(delta)
    return ([Cell(acc_text(m, std), "num") if m is not None
             else Cell(MISSING, "missing", note=why or "no accuracy"),
             Cell(ACC_DELTA.fmt(d), "num") if d is not None
             else Cell(MISSING, "missing", note=why_delta or "no difference")],
            [m, std if m is not None else None, d])


#: the overview's accuracy columns and their CSV fields (:func:`accuracy_cells`)
ACCURACY_COLUMNS = [Column("test accuracy (%, mean ± std)", True),
                    Column(ACC_DELTA.header, True)]
ACCURACY_FIELDS = [ACC.key, ACC_STD.key, ACC_DELTA.key]


def overview_table(entries: Sequence[Entry]) -> Table:
    metrics = (AREA, FMAX, E_FWD, E_BWD, BYTES, TOTAL_PJ, ERROR)
    t = per_spec_table("overview", "Overview", entries, None, metrics)
    fmax = metrics.index(FMAX)  # timing after it: in [spec, *metrics], [*IDENTITY, *keys]
    _with_timing(t, entries, fmax + 2, len(IDENTITY_FIELDS) + fmax + 1)
    t.columns.insert(1, Column("kind"))
    t.columns += [*ACCURACY_COLUMNS, Column("csim"), Column("cosim"), Column("stages not ok")]
    t.csv_fields.insert(len(IDENTITY_FIELDS), "kind")
    t.csv_fields += [*ACCURACY_FIELDS, "csim", "cosim", "stages_not_ok"]
    for e, row, raw in zip(entries, t.rows, t.csv_rows, strict=True):
        row.insert(1, Cell(e.kind))
        raw.insert(len(IDENTITY_FIELDS), e.kind)
        cells, values = accuracy_cells(e)
        row += cells
        raw += values
        for st in ("csim", "cosim"):
            c, r = verification_cell(e.stage(st))
            c.text = shorten(c.text, 40) if c.cls == "bad" else c.text
            row.append(c)
            raw.append(r)
        text = not_ok(e, run_stages(entries))
        row.append(Cell(shorten(text, 2 * REASON_CHARS), "bad", note=text) if text
                   else Cell("none", "ok"))
        raw.append(text)
    return t


def synthesis_table(entries: Sequence[Entry]) -> Table:
    """The synthesis figures, whether each design meets its clock, and its critical path as
    the timing library predicted it and as OpenSTA measured it."""
    t = per_spec_table("synthesis", "Synthesis", entries, "synth", SYNTH_METRICS)
    _with_timing(t, entries, 2, len(IDENTITY_FIELDS) + 1)
    t.columns += [Column("critical path predicted (ns)", True),
                  Column("critical path measured (ns)", True)]
    t.csv_fields += ["predicted_critical_ns", "measured_critical_ns"]
    for e, row, raw in zip(entries, t.rows, t.csv_rows, strict=True):
        predicted, measured = critical_paths(e)
        row += [Cell(fmt_ns(predicted), "num") if predicted is not None else
                Cell(MISSING, "missing", note="no timing plan (a result from before timing "
                                              "plans, a backend without one) or synth not ok"),
                Cell(fmt_ns(measured), "num") if measured is not None else
                Cell(MISSING, "missing", note="no clock or worst slack (synth not ok?)")]
        raw += [predicted, measured]
    return t


def area_table(entries: Sequence[Entry]) -> Table:
    extra = []
    for e in entries:
        bd = e.value("synth", ("area_breakdown",))[0]
        if isinstance(bd, Mapping):
            extra += [str(k) for k in bd if k not in BLOCKS and k not in extra]
    blocks = [*BLOCKS, *extra]
    metrics = [M(f"{b}_um2", f"{b} (mm²)", "synth", f"area_breakdown.{b}", fmt_mm2)
               for b in blocks]
    metrics.append(replace(AREA, header="total (mm²)"))
    return per_spec_table("area_by_block", "Area by block", entries, "synth", metrics)


def verification_table(entries: Sequence[Entry]) -> Table:
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
        cycles, cycles_raw = metric_cell(e, M("cycles", "", "cosim", "cycles", fmt_count))
        row = [spec_cell(e), verification_cell(csim)[0], Cell(finished_text(csim.finished)),
               verification_cell(cosim)[0], cycles, Cell(finished_text(cosim.finished)),
               Cell(tools_text(tools))]
        raw = e.identity()
        for rec in (csim, cosim):
            m = rec.metrics if rec.ok else {}
            raw += [rec.status, rec.reason, m.get("bit_exact"), m.get("elements"),
                    m.get("mismatches"), rec.finished, rec.duration_s]
        raw += [cycles_raw, json.dumps(tools, sort_keys=True) if tools else None]
        rows.append(row)
        csv_rows.append(raw)
    return Table("verification", "Verification", columns, rows, fields, csv_rows)


def ratio_table(entries: Sequence[Entry], base: Entry | None) -> Table:
    """Every ratio with the clock each side was synthesized at and whether it met it; a ratio
    of figures that depend on the clock (:attr:`Ratio.clocked`) is marked when either side
    misses its clock."""
    base_t = Timing.of(base) if base is not None else Timing(why="no baseline")
    columns = ([Column("spec"), Column("spec clock"), Column("baseline clock")]
               + [Column(r.header, numeric=True) for r in RATIOS])
    fields = ([*IDENTITY_FIELDS, "spec_clock_ns", "spec_timing_met", "baseline_clock_ns",
               "baseline_timing_met"] + [r.key for r in RATIOS])
    rows, csv_rows = [], []
    for e in entries:
        mine_t = Timing.of(e)
        row = [spec_cell(e), clock_cell(mine_t), clock_cell(base_t)]
        raw = [*e.identity(), mine_t.clock_ns, mine_t.met, base_t.clock_ns, base_t.met]
        unmet = [f"{side}: {t.text()}" for side, t in (("spec", mine_t), ("baseline", base_t))
                 if t.missed]
        for r in RATIOS:
            mine = e.number(r.metric.stage, r.metric.path)
            bas = None if base is None else base.number(r.metric.stage, r.metric.path)
            value = ratio_of(mine, bas) if r.inverse else ratio_of(bas, mine)
            if value is None:
                why = e.value(r.metric.stage, r.metric.path)[1] if mine is None else (
                    f"baseline has no {r.metric.key}" if bas is None else "not positive")
                row.append(Cell(MISSING, "missing", note=why))
            elif r.clocked and unmet:
                row.append(Cell(fmt_ratio(value) + UNMET_MARK, "unmet",
                                note="; ".join(unmet) + " - " + UNMET_WHY))
            elif r.clocked and mine_t.clock_ns != base_t.clock_ns:
                row.append(Cell(fmt_ratio(value), "num", note=(
                    f"different clocks: the spec at {mine_t.clock_text()}, the baseline at "
                    f"{base_t.clock_text()}")))
            else:
                row.append(Cell(fmt_ratio(value), "num"))
            raw.append(value)
        rows.append(row)
        csv_rows.append(raw)
    title = ("Ratios against the baseline"
             + (f" ({base.label}, {base_t.clock_text()})" if base is not None else " (missing)"))
    return Table("ratios", title, columns, rows, fields, csv_rows)


def _bare(header: str) -> str:
    """A column header without its unit: ``area (mm²)`` -> ``area``."""
    return re.sub(r"\s*\([^)]*\)$", "", header)


def backend_tables(entries: Sequence[Entry], ref: Backend, other: Backend) -> list[Table]:
    """Per spec with the flow stage of ``other`` (``synth_xls``): both designs at their common
    clock (figures, ratios) and the area of each block of both."""
    stage = other.flow_stage
    rows_of = [e for e in entries if stage in e.stages]
    if not rows_of:
        return []
    sides = ((ref.name, ref.label), (other.name, other.label))
    over = f"{other.label} / {ref.label}"
    ratio_key = f"ratio_{other.name}_over_{ref.name}"
    columns = [Column("spec"), Column(stage), Column("common clock (ns)", True),
               Column("both meet it")]
    fields = [*IDENTITY_FIELDS, f"{stage}_status", "clock_ns", "both_met"]
    for header, path, _ in BACKEND_FIGURES:
        key = "_".join(path)
        columns += [Column(f"{header} {label}", True) for _, label in sides]
        columns.append(Column(f"{_bare(header)}: {over}", True))
        fields += [f"{key}_{side}" for side, _ in sides] + [f"{key}_{ratio_key}"]
    b_columns = [Column("spec"), Column("block")] + [Column(f"{label} (mm²)", True)
                                                      for _, label in sides] + [
        Column(over, True)]
    b_fields = [*IDENTITY_FIELDS, "block", *(f"area_um2_{side}" for side, _ in sides),
                ratio_key]
    rows, csv_rows, b_rows, b_csv = [], [], [], []
    for e in rows_of:
        comp, why = e.value(stage, ("comparison",))
        if not isinstance(comp, Mapping):
            comp, why = {}, why or f"{stage} reports no comparison"
        clock, met = as_number(comp.get("clock_ns")), comp.get("both_met")
        row = [spec_cell(e), status_cell(e.stage(stage))[0],
               Cell(fmt_ns(clock), "num") if clock is not None else Cell(MISSING, "missing",
                                                                           note=why),
               Cell("yes", "ok") if met is True else Cell("no", "bad") if met is False
               else Cell(MISSING, "missing", note=why)]
        raw = [*e.identity(), e.stage(stage).status_text(), clock,
               met if isinstance(met, bool) else None]
        for _, path, fmt in BACKEND_FIGURES:
            vals = []
            for side, _ in sides:
                cur: Any = comp.get(side)
                for k in path:
                    cur = cur.get(k) if isinstance(cur, Mapping) else None
                v = as_number(cur)
                vals.append(v)
                row.append(Cell(fmt(v), "num") if v is not None
                           else Cell(MISSING, "missing", note=why or f"no {'.'.join(path)}"))
            ratio = ratio_of(vals[1], vals[0])
            row.append(Cell(fmt_ratio(ratio), "num") if ratio is not None
                       else Cell(MISSING, "missing", note="needs both values"))
            raw += [*vals, ratio]
        rows.append(row)
        csv_rows.append(raw)
        areas = [comp.get(side, {}).get("area_breakdown") if isinstance(comp.get(side), Mapping)
                 else None for side, _ in sides]
        if all(isinstance(a, Mapping) for a in areas):
            for block in BLOCKS:
                t, x = (as_number(a.get(block)) for a in areas)  # type: ignore[union-attr]
                ratio = ratio_of(x, t)
                b_rows.append([spec_cell(e), Cell(block)] + [
                    Cell(fmt_mm2(v), "num") if v is not None else Cell(MISSING, "missing")
                    for v in (t, x)] + [Cell(fmt_ratio(ratio), "num") if ratio is not None
                                        else Cell(MISSING, "missing", note="needs both")])
                b_csv.append([*e.identity(), block, t, x, ratio])
    vs = f"{ref.label} RTL vs {other.label} RTL"
    return [Table(f"{ref.name}_vs_{other.name}", f"{vs[0].upper()}{vs[1:]} at a common clock",
                  columns, rows, fields, csv_rows),
            Table(f"{ref.name}_vs_{other.name}_blocks", f"Area by block, {vs}", b_columns,
                  b_rows, b_fields, b_csv)]


def quality_distributions(entries: Sequence[Entry]) -> Table:
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
                    row = [spec_cell(e), Cell(str(dist)), Cell(str(tensor)), Cell(str(ref))]
                    raw = [*e.identity(), dist, tensor, ref]
                    for key, fmt in (("rel_rms", fmt_err), ("max_abs_err", fmt_err),
                                     ("sqnr_db", fmt_db)):
                        x = as_number(vals.get(key))
                        row.append(Cell(fmt(x), "num") if x is not None
                                   else Cell(MISSING, "missing", note=f"no {key}"))
                        raw.append(vals.get(key) if x is not None else None)
                    rows.append(row)
                    csv_rows.append(raw)
    return Table("quality_distributions", "Numerical error per input distribution", columns,
                 rows, fields, csv_rows)


def _seeds_text(values: Any) -> str:
    """``99.17, 99.44, 99.44``: per-seed accuracies (percent)."""
    if not isinstance(values, list) or not values:
        return MISSING
    return ", ".join(ACC.fmt(x) if (x := as_number(v)) is not None else "failed"
                     for v in values)


def accuracy_table(entries: Sequence[Entry]) -> Table | None:
    """Per spec with an accuracy stage: how it was trained, test accuracy (mean ± std and per
    seed), the FP32 reference it was compared with and the difference, the final training
    loss and the time per epoch. None when no entry has the stage."""
    rows_of = [e for e in entries if ACCURACY_STAGE in e.stages]
    if not rows_of:
        return None
    columns = [Column("spec"), Column(ACCURACY_STAGE), Column("data set, epochs, seeds"),
               Column("test accuracy (%, mean ± std)", True), Column("per seed (%)", True),
               Column("FP32 reference (%, mean ± std)", True), Column(ACC_DELTA.header, True),
               Column("final training loss", True), Column("s per epoch", True)]
    fields = [*IDENTITY_FIELDS, f"{ACCURACY_STAGE}_status", "dataset", "epochs", "seeds",
              ACC.key, ACC_STD.key, "accuracy_per_seed_pct", "reference_mean_pct",
              "reference_std_pct", "reference_per_seed_pct", ACC_DELTA.key,
              "final_train_loss", "seconds_per_epoch"]
    rows, csv_rows = [], []
    for e in rows_of:
        st = e.stage(ACCURACY_STAGE)
        m = st.metrics if st.ok else {}
        ref = accuracy_reference(e)
        (acc_cell, delta_cell), (mean, std, delta) = accuracy_cells(e)
        acc = as_mapping(m.get("accuracy_pct"))
        ref_acc = as_mapping(as_mapping(m.get("reference")).get("accuracy_pct"))
        loss = as_mapping(m.get("final_train_loss"))
        loss_mean = as_number(loss.get("mean"))
        spe = as_number(m.get("seconds_per_epoch"))
        why = st.describe()
        rows.append([
            spec_cell(e), status_cell(st)[0],
            Cell(ref.settings()) if ref is not None else Cell(MISSING, "missing", note=why),
            acc_cell, Cell(_seeds_text(acc.get("per_seed")), "num"),
            Cell(acc_text(ref.mean, ref.std), "num") if ref is not None and ref.mean is not None
            else Cell(MISSING, "missing", note=why),
            delta_cell,
            Cell(fmt_sig(loss_mean), "num") if loss_mean is not None
            else Cell(MISSING, "missing", note=why),
            Cell(fmt_sig(spe), "num") if spe is not None else Cell(MISSING, "missing", note=why)])
        csv_rows.append([
            *e.identity(), st.status_text(), None if ref is None else ref.dataset,
            None if ref is None else ref.epochs, None if ref is None else ref.seeds,
            mean, std, json.dumps(acc["per_seed"]) if acc.get("per_seed") else None,
            None if ref is None else ref.mean, None if ref is None else ref.std,
            json.dumps(ref_acc["per_seed"]) if ref_acc.get("per_seed") else None,
            delta, loss_mean, spe])
    return Table(ACCURACY_STAGE, "Test accuracy", columns, rows, fields, csv_rows)


def sweep_table_name(sweep: str) -> str:
    """The name (and CSV file stem) of a sweep's table."""
    return f"sweep_{slug(sweep)}"


def sweep_table(sweep: str, entries: Sequence[Entry]) -> Table:
    coords = list(dict.fromkeys(k for e in entries for k in (e.point or {})))
    on_area, on_energy = front_members(entries, AREA), front_members(entries, TOTAL_PJ)
    columns = ([Column("spec")] + [Column(str(k)) for k in coords]
               + [Column(AREA.header, True), Column(TOTAL_PJ.header, True),
                  Column(ERROR.header, True), Column("timing"), Column("Pareto: area vs error"),
                  Column("Pareto: energy vs error"), Column("stages not ok")])
    fields = [*IDENTITY_FIELDS, *(str(k) for k in coords), AREA.key, TOTAL_PJ.key, ERROR.key,
              *TIMING_FIELDS, "pareto_area_error", "pareto_energy_error", "stages_not_ok"]
    rows, csv_rows = [], []
    for e in entries:
        row, raw = [spec_cell(e)], e.identity()
        for k in coords:
            v = (e.point or {}).get(k)
            row.append(Cell(MISSING if v is None else str(v), "num" if v is not None
                            else "missing"))
            raw.append(v)
        for m in (AREA, TOTAL_PJ, ERROR):
            c, r = metric_cell(e, m)
            row.append(c)
            raw.append(r)
        c, values = timing_cell(Timing.of(e))
        row.append(c)
        raw += values
        for front, m in ((on_area, AREA), (on_energy, TOTAL_PJ)):
            if e.number(m.stage, m.path) is None or e.number(ERROR.stage, ERROR.path) is None:
                row.append(Cell(MISSING, "missing", note=f"no {m.key} or no error"))
                raw.append(None)
            else:
                row.append(Cell("yes", "ok") if e.index in front else Cell("no"))
                raw.append(e.index in front)
        bad = not_ok(e, ("synth", "energy", "quality"))
        row.append(Cell(shorten(bad, 2 * REASON_CHARS), "bad", note=bad) if bad
                   else Cell(""))
        raw.append(bad)
        rows.append(row)
        csv_rows.append(raw)
    table = Table(sweep_table_name(sweep), f"Sweep {sweep}", columns, rows, fields, csv_rows)
    if any("estimate" in e.stages for e in entries):
        _with_estimates(table, entries, len(coords))
    return table


def _with_estimates(t: Table, entries: Sequence[Entry], n_coords: int) -> None:
    """A sweep table's estimate columns: the estimated area and total energy per element,
    whether the point is on the estimated front, and why it was synthesized."""
    front = estimated_front([e for e in entries if e.is_point])
    at, csv_at = 1 + n_coords, len(IDENTITY_FIELDS) + n_coords  # after the coordinates
    t.columns[at:at] = [Column(EST_AREA.header, True), Column(EST_TOTAL_PJ.header, True),
                        Column("estimated front"), Column("synthesized because")]
    t.csv_fields[csv_at:csv_at] = [EST_AREA.key, EST_TOTAL_PJ.key, "on_estimated_front",
                                   "synthesized_because"]
    for e, row, raw in zip(entries, t.rows, t.csv_rows, strict=True):
        cells, values = [], []
        for m in (EST_AREA, EST_TOTAL_PJ):
            c, r = metric_cell(e, m)
            cells.append(c)
            values.append(r)
        has = all(e.number(m.stage, m.path) is not None for m in FRONT_OBJECTIVES)
        cells.append(Cell(("yes" if e.index in front else "no") if has else MISSING,
                          "ok" if e.index in front else "text" if has else "missing"))
        values.append(e.index in front if has else None)
        why = synthesized_why(e, front)
        cells.append(Cell(why or "not synthesized", "text"))
        values.append(why)
        row[at:at] = cells
        raw[csv_at:csv_at] = values


#: the estimate-vs-synthesis table's name (and CSV file stem)
ESTIMATE_TABLE = "estimate_vs_synthesis"


def estimate_rows(entries: Sequence[Entry]) -> list[Entry]:
    """The entries with both an estimate and a synthesis that succeeded."""
    return [e for e in entries if e.stage("estimate").ok and e.stage("synth").ok]


def estimate_table(entries: Sequence[Entry]) -> Table:
    """Per spec with both: each estimated figure, the synthesized one and the relative error
    (estimate / synthesis - 1), and why a sweep point was synthesized."""
    front = estimated_front([e for e in entries if e.is_point])
    columns = [Column("spec"), Column("synthesized because")]
    fields = [*IDENTITY_FIELDS, "synthesized_because"]
    for est, syn in ESTIMATE_PAIRS:
        columns += [Column(est.header, True), Column(syn.header, True),
                    Column(f"error: {_bare(syn.header)}", True)]
        fields += [est.key, syn.key, f"{syn.key}_relative_error"]
    rows, csv_rows = [], []
    for e in estimate_rows(entries):
        why = synthesized_why(e, front) if e.sweep is not None else None
        row, raw = [spec_cell(e), Cell(why or MISSING, "text" if why else "missing")], \
            [*e.identity(), why]
        for est, syn in ESTIMATE_PAIRS:
            for m in (est, syn):
                c, r = metric_cell(e, m)
                row.append(c)
                raw.append(r)
            rel = relative_error(e.number(est.stage, est.path), e.number(syn.stage, syn.path))
            row.append(Cell(MISSING, "missing", note="needs both figures") if rel is None
                       else Cell(fmt_rel(rel), "num"))
            raw.append(rel)
        rows.append(row)
        csv_rows.append(raw)
    return Table(ESTIMATE_TABLE, "Estimate vs synthesis", columns, rows, fields, csv_rows)


def clock_table(entries: Sequence[Entry]) -> Table:
    """The points of the clock sweeps (:func:`.metrics.clock_points`): per target clock, what
    the design generated for it costs and whether it meets it."""
    columns = [Column("spec"), Column("series"), Column("clock", True), Column("timing"),
               Column(FMAX.header, True), Column(AREA.header, True), Column(E_FWD.header, True),
               Column(E_BWD.header, True), Column("forward cycles", True),
               Column("forward latency (µs)", True), Column("critical path predicted (ns)", True),
               Column("critical path measured (ns)", True)]
    fields = [*IDENTITY_FIELDS, "series", *TIMING_FIELDS, FMAX.key, AREA.key, E_FWD.key,
              E_BWD.key, "forward_cycles", "forward_elements", "forward_latency_us",
              "predicted_critical_ns", "measured_critical_ns"]
    rows, csv_rows = [], []

    def num(x: float | None, fmt: Any, why: str) -> Cell:
        return Cell(fmt(x), "num") if x is not None else Cell(MISSING, "missing", note=why)

    for p in clock_points(entries):
        e, t = p.entry, p.timing
        predicted, measured = critical_paths(e)
        why = t.why or "synth reports no such figure"
        timing, _ = timing_cell(t)
        latency = p.forward_latency_us
        rows.append([spec_cell(e), Cell(p.series), Cell(fmt_clock(p.clock_ns), "num"), timing,
                     num(t.fmax_mhz, fmt_mhz, why), num(p.area_um2, fmt_mm2, why),
                     num(p.energy_pj[0], fmt_int, why), num(p.energy_pj[1], fmt_int, why),
                     num(p.forward_cycles, fmt_count, why), num(latency, fmt_us, why),
                     num(predicted, fmt_ns, "no timing plan"), num(measured, fmt_ns, why)])
        csv_rows.append([*e.identity(), p.series, p.clock_ns, t.met, t.fmax_mhz, p.area_um2,
                         *p.energy_pj, p.forward_cycles, p.forward_elements, latency,
                         predicted, measured])
    return Table("clock_sweep", "Clock sweeps", columns, rows, fields, csv_rows)


def kv_table(name: str, title: str, items: Iterable[tuple[str, str]]) -> Table:
    return Table(name, title, [Column("item"), Column("value")],
                 [[Cell(k), Cell(v)] for k, v in items])


def plan_text(plan: Mapping[str, Any]) -> str:
    """``9 pipelined units, 23 pipeline registers, margin 0.50 ns; predicted not to fit: x
    (why)``."""
    units = [u for u in plan.get("units") or () if isinstance(u, Mapping)]
    regs = sum(int(n) for u in units if (n := as_number(u.get("latency"))) is not None)
    margin = as_number(plan.get("margin_ns"))
    text = (f"{len(units)} pipelined unit{'s' if len(units) != 1 else ''}, {regs} pipeline "
            f"register{'s' if regs != 1 else ''}"
            + (f", margin {fmt_ns(margin)} ns" if margin is not None else ""))
    misfits = [f"{u.get('unit')} ({u.get('why') or 'does not fit'})" for u in units
               if u.get("fits") is False]
    if misfits:
        text += "; predicted not to fit: " + ", ".join(misfits)
    return text


def detail_tables(e: Entry) -> list[Table]:
    """The tables of one entry's detail section: facts, stages, area by block, numerical error
    per input distribution."""
    facts = [("spec", e.spec), ("spec hash", e.spec_hash or MISSING), ("kind", e.kind)]
    if e.point is not None:
        facts += [(str(k), str(v)) for k, v in e.point.items()]
    synth = e.stage("synth")
    if synth.ok:
        m = synth.metrics
        facts.append(("timing", Timing.of(e).text()))
        predicted, measured = critical_paths(e)
        facts.append(("critical path predicted / measured",
                      f"{fmt_ns(predicted) + ' ns' if predicted is not None else MISSING} "
                      "(timing library) / "
                      f"{fmt_ns(measured) + ' ns' if measured is not None else MISSING} "
                      "(OpenSTA)"))
        plan = m.get("timing_plan")
        if isinstance(plan, Mapping):
            facts.append(("timing plan", plan_text(plan)))
        if m.get("timing_flow"):
            facts.append(("timing netlist flow", str(m["timing_flow"])))
        cp = m.get("critical_path")
        if isinstance(cp, Mapping) and cp:
            facts.append(("critical path", " -> ".join(str(cp[k]) for k in ("start", "end")
                                                       if cp.get(k))
                          + (f" ({fmt_ns(a)} ns)" if (a := as_number(cp.get("arrival_ns")))
                             is not None else "")))
        cpe = m.get("cycles_per_element")
        if isinstance(cpe, Mapping):
            facts += [(f"cycles per element ({p})", fmt_sig(x)) for p in PASSES
                      if (x := as_number(cpe.get(p))) is not None]
        if m.get("liberty"):
            facts.append(("liberty", str(m["liberty"])))
        ge = m.get("gate_equivalents")
        for k, v in (ge.items() if isinstance(ge, Mapping) else ()):
            x = as_number(v)
            facts.append((f"gate equivalents ({k})", fmt_count(x) if x is not None else MISSING))
    notes = synth.metrics.get("notes") if synth.ok else None
    if isinstance(notes, list):
        facts += [("synthesis note", one_line(n)) for n in notes]
    energy = e.stage("energy")
    shape = energy.metrics.get("shape") if energy.ok else None
    if shape:
        facts.append(("energy layer shape", shape_text(shape)))
    ref = accuracy_reference(e)
    (acc_cell, delta_cell), (mean, _, _) = accuracy_cells(e)
    if ref is not None and mean is not None:
        acc = e.value(ACC.stage, ("accuracy_pct", "per_seed"))[0]
        facts.append(("test accuracy", f"{acc_cell.text} % (per seed {_seeds_text(acc)}; "
                      f"{ref.settings()}), {delta_cell.text} pp against the FP32 reference "
                      + (acc_text(ref.mean, ref.std) + " %" if ref.mean is not None
                         else MISSING)))
    facts_t = kv_table("facts", "Facts", facts)

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
            Cell(finished_text(st.finished)),
            Cell(fmt_sig(st.duration_s) if st.duration_s is not None else MISSING, "num"),
            Cell(tools_text(tools)),
        ])
    tables = [facts_t, stages]

    bd = e.value("synth", ("area_breakdown",))[0]
    total = e.number("synth", ("area_um2",))
    if isinstance(bd, Mapping) and bd:
        blocks = Table("blocks", "Area by block", [Column("block"), Column("mm²", True),
                                                    Column("share", True)], [])
        for b in [*[b for b in BLOCKS if b in bd], *[b for b in bd if b not in BLOCKS]]:
            x = as_number(bd[b])
            share = ratio_of(x, total) if x else (0.0 if x == 0 and total else None)
            blocks.rows.append([Cell(str(b)),
                                Cell(fmt_mm2(x), "num") if x is not None else Cell(MISSING),
                                Cell(fmt_pct(100 * share), "num") if share is not None
                                else Cell(MISSING, "missing")])
        tables.append(blocks)
    dist = quality_distributions([e])
    if dist.rows:
        for row in dist.rows:
            del row[0]
        del dist.columns[0]
        tables.append(dist)
    return tables
