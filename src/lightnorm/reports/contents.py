"""What the report says, in order: the header facts, the warnings, the sections with their
explanations, tables and figures, one detail section per entry, and which tables are exported
as CSV. Nothing here writes a file (:mod:`.report` does)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..backends import DEFAULT_BACKEND, compared_backends, get_backend
from .figures import Figure, area_figure, energy_figure, pareto_figures
from .metrics import ENERGY_METRICS, QUALITY_METRICS, SYNTH_METRICS
from .model import STAGES, Entry, as_number, distinct, not_ok, run_stages, sweeps
from .render import Section
from .tables import (
    Table,
    area_table,
    backend_tables,
    detail_tables,
    overview_table,
    per_spec_table,
    quality_distributions,
    ratio_table,
    sweep_table,
    verification_table,
)
from .text import MISSING, fmt_ns, shape_text


@dataclass
class Page:
    """Everything the HTML and Markdown pages show, and the files besides them."""

    title: str
    header: list[tuple[str, str]]
    warnings: list[str]
    sections: list[Section]
    details: list[Section]
    #: exported as data/<name>.csv: the tables of the sections, then the CSV-only ones
    tables: list[Table]
    figures: list[Figure]


def compose(entries: Sequence[Entry], base: Entry | None, title: str, when: datetime,
            baseline: str = "fp32-baseline", base_warning: str | None = None) -> Page:
    """The page of these entries (normalised, baseline checked: ``base`` None when it is
    missing, ``base_warning`` what the ratios lack) generated at ``when``."""
    by_sweep = sweeps(entries)
    stages_run = run_stages(entries)

    shapes = distinct(entries, "energy", "shape", shape_text)
    shape = shapes[0] if len(shapes) == 1 else ("mixed: " + "; ".join(shapes) if shapes
                                                else MISSING)
    libs = distinct(entries, "synth", "liberty", lambda v: os.path.basename(str(v)))
    clocks = distinct(entries, "synth", "clock_ns",
                      lambda v: f"{fmt_ns(x)} ns" if (x := as_number(v)) is not None else str(v))
    quality_shapes = distinct(entries, "quality", "shape", shape_text)
    n_presets = sum(e.preset for e in entries)
    n_points = sum(len(v) for v in by_sweep.values())
    parts = [f"{n_presets} preset{'s' if n_presets != 1 else ''}"]
    if len(entries) - n_presets - n_points:
        parts.append(f"{len(entries) - n_presets - n_points} other specs")
    if by_sweep:
        parts.append(f"{n_points} sweep points in {len(by_sweep)} "
                     f"sweep{'s' if len(by_sweep) != 1 else ''}: {', '.join(by_sweep)}")
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
    not_run = [n for n in STAGES if n not in stages_run]
    if not_run:
        warnings.append(f"stages run for no spec: {', '.join(not_run)} (their columns show —)")
    failing = [e for e in entries if not_ok(e, stages_run)]
    if failing:
        warnings.append(f"{len(failing)} of {len(entries)} summaries have a stage that is "
                        "missing or not ok: their cells show — (the reason is in the status "
                        "columns and the detail sections)")

    fig_area, fig_energy = area_figure(entries), energy_figure(entries, shape)
    figures = [fig_area, fig_energy]
    sections = [
        Section("overview", "Overview", [
            "One row per summary. Energy per element fwd/bwd: datapath energy from synthesis; "
            "total pJ/elem: datapath + off-chip memory for one BN layer of the shape above; "
            "error: the quality summary's \"error\". Hover a — for the reason it is missing."],
            [overview_table(entries)], []),
        Section("ratios", "Ratios against the baseline", [
            "Area and energy: baseline / spec (how many times smaller, > 1 is better). "
            "Off-chip bytes: spec / baseline (the fraction of the baseline's traffic, < 1 is "
            "better)."], [ratio_table(entries, base)], []),
        Section("synthesis", "Synthesis", [
            "Area of the hierarchical netlist; Fmax, power and energy per element of the flat "
            "timing netlist at the synthesis clock, power from simulated switching activity "
            "(docs/synthesis.md)."],
            [per_spec_table("synthesis", "Synthesis", entries, "synth", SYNTH_METRICS),
             area_table(entries)], [fig_area]),
        Section("energy", "Off-chip memory and layer energy", [
            f"One BN layer of shape {shape} in training (forward + backward), "
            "docs/energy.md: bytes per element moved off chip, memory energy, datapath "
            "energy from synthesis, their total per element and per layer."],
            [per_spec_table("energy", "Energy", entries, "energy", ENERGY_METRICS)],
            [fig_energy]),
        Section("quality", "Numerical error", [
            "Summary figures of the quality stage (docs/quality.md): relative RMS error of y "
            "and dx, averaged over the input distributions, against float64 batch "
            "normalization of the spec's own kind (vs own) and standard batch normalization "
            "(vs standard); error = max(y vs own, dx vs own), the figure the Pareto plots use. "
            "Per input distribution: in the per-spec details and "
            "data/quality_distributions.csv."],
            [per_spec_table("quality", "Numerical error", entries, "quality",
                            QUALITY_METRICS)], []),
        Section("verification", "Verification", [
            "C simulation (csim) and RTL co-simulation (cosim) against the golden model: "
            "bit-exact or the number of differing elements."],
            [verification_table(entries)], []),
    ]
    ref = get_backend(DEFAULT_BACKEND)
    for other in compared_backends():
        tables = backend_tables(entries, ref, other)
        if tables:
            vs = f"{ref.label} RTL vs {other.label} RTL"
            sections.append(Section(other.name, f"{vs[0].upper()}{vs[1:]}", [
                f"The same spec synthesized as the {ref.label} backend's design and as the "
                f"{other.label} backend's ({other.description}; pipelines it schedules itself "
                "are scheduled at the spec's clock), same library, flow and workload, at one "
                "common clock: the "
                "spec's clock, or, when either design misses it, the slower critical period "
                "+ 5% on a 0.5 ns grid, synthesized again (lightnorm.cost.backend_compare; "
                "'both meet it' says whether that worked). Cycles: of the simulated activity "
                f"workload, per pass. Ratios: {other.label} / {ref.label} (> 1: "
                f"{other.label} is larger, faster, slower in cycles or uses more energy)."],
                tables, []))
    if by_sweep:
        pareto = pareto_figures(entries, shape)
        figures += pareto
        sections.append(Section("sweeps", "Sweeps", [
            "Every sweep point, its coordinates and the three figures the Pareto plots use; "
            "Pareto \"yes\": on the Pareto front of its sweep (no other point of the sweep has "
            "both a lower error and a lower area / energy). Error axis: the quality summary's "
            "\"error\", log scale. Presets are the labelled stars."],
            [sweep_table(name, pts) for name, pts in by_sweep.items()], pareto))

    details = [Section(e.anchor, e.label + (" (baseline)" if e.is_baseline else ""), [],
                       detail_tables(e), []) for e in entries]
    tables = [t for s in sections for t in s.tables] + [quality_distributions(entries)]
    return Page(title, header, warnings, sections, details, tables, figures)
