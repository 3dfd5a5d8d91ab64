"""What the report says, in order: the header facts, the warnings, the sections with their
explanations, tables and figures, one detail section per entry, and which tables are exported
as CSV. Nothing here writes a file (:mod:`.report` does)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..backends import DEFAULT_BACKEND, compared_backends, get_backend
from .figures import (
    Figure,
    area_figure,
    clock_figure,
    energy_figure,
    estimate_figure,
    pareto_figures,
)
from .metrics import (
    ACCURACY_STAGE,
    AREA,
    ENERGY_METRICS,
    ERROR,
    ESTIMATE_PAIRS,
    QUALITY_METRICS,
    TOTAL_PJ,
    Reference,
    Timing,
    accuracy_reference,
    clock_points,
    error_and,
    estimated_front,
    relative_error,
    synthesized_why,
)
from .model import STAGES, Entry, as_number, distinct, not_ok, run_stages, sweeps
from .render import Section
from .tables import (
    UNMET_MARK,
    Table,
    accuracy_table,
    area_table,
    backend_tables,
    clock_table,
    detail_tables,
    estimate_rows,
    estimate_table,
    overview_table,
    per_spec_table,
    quality_distributions,
    ratio_table,
    sweep_table,
    synthesis_table,
    verification_table,
)
from .text import MISSING, acc_text, fmt_clock, fmt_ns, fmt_rel, shape_text
from .trade import BYTES_ERROR, TRADES, curves_figure, trade_figure


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
                      lambda v: fmt_clock(x) if (x := as_number(v)) is not None else str(v))
    timings = {e.index: Timing.of(e) for e in entries}
    missed = [e for e in entries if timings[e.index].missed]
    judged = sum(t.met is not None for t in timings.values())
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
        ("timing", timing_summary(missed, judged)),
    ]
    refs = list(dict.fromkeys(r for e in entries if (r := accuracy_reference(e)) is not None))
    header.append(("accuracy (test, CNN with the spec's BN)", accuracy_summary(entries, refs)))
    warnings = [] if base_warning is None else [base_warning]
    if len(shapes) > 1:
        warnings.append("the energy figures were computed for different layer shapes: per-layer "
                        "energies do not compare across them (per-element figures do)")
    if len(libs) > 1:
        warnings.append("the specs were synthesized with different libraries")
    if len(clocks) > 1:
        warnings.append(f"the specs were synthesized at different clocks ({', '.join(clocks)}): "
                        "every ratio row names the clock of the spec and of the baseline")
    if missed:
        shown = [f"{e.label}: {timings[e.index].text()}" for e in missed[:8]]
        one = len(missed) == 1
        warnings.append(
            f"{len(missed)} of {judged} synthesized designs {'does' if one else 'do'} NOT meet "
            f"{'its' if one else 'their'} clock: " + "; ".join(shown)
            + (f"; ... ({len(missed)} designs)" if len(missed) > 8 else "")
            + ". Power and energy are computed at the clock, which "
            f"{'that netlist does' if one else 'those netlists do'} not reach; the timing "
            "columns say so, and the ratios of area and energy that involve "
            f"{'it' if one else 'them'} are marked \"{UNMET_MARK.strip()}\"")
    not_run = [n for n in STAGES if n not in stages_run]
    if not_run:
        warnings.append(f"stages run for no spec: {', '.join(not_run)} (their columns show —)")
    if len(refs) > 1:
        warnings.append("the accuracy results were trained with different settings ("
                        + "; ".join(r.settings() for r in refs) + "): accuracies compare only "
                        "between specs trained alike, and the plots draw no reference line")
    failing = [e for e in entries if not_ok(e, stages_run)]
    if failing:
        warnings.append(f"{len(failing)} of {len(entries)} summaries have a stage that is "
                        "missing or not ok: their cells show — (the reason is in the status "
                        "columns and the detail sections)")

    fig_area, fig_energy = area_figure(entries), energy_figure(entries, shape)
    figures = [fig_area, fig_energy]
    csv_only: list[Table] = []  # the data of the trade-off plots and the training curves
    base_clock = Timing.of(base).clock_text() if base is not None else MISSING
    sections = [
        Section("overview", "Overview", [
            "One row per summary. Energy per element fwd/bwd: datapath energy from synthesis; "
            "total pJ/elem: datapath + off-chip memory for one BN layer of the shape above; "
            "error: the quality summary's \"error\"; timing: whether the synthesized design "
            "meets the clock it was generated and synthesized for (NOT met: Fmax is below "
            "1 / clock, and its power and energy are at a clock it does not reach); test "
            "accuracy: of the CNN trained with the spec's BN arithmetic (accuracy stage), mean "
            "± standard deviation over the seeds, and its difference from FP32 "
            "torch.nn.BatchNorm2d in percentage points. Hover a — for the reason it is "
            "missing."],
            [overview_table(entries)], []),
        Section("ratios", "Ratios against the baseline", [
            "Area and energy: baseline / spec (how many times smaller, > 1 is better). "
            "Off-chip bytes: spec / baseline (the fraction of the baseline's traffic, < 1 is "
            "better). Each ratio compares the spec as synthesized at its own clock with the "
            f"baseline as synthesized at its own ({base_clock}); the columns spec clock and "
            "baseline clock say which clock each was synthesized at and whether it was met. "
            "A ratio of area or energy (datapath, total) where either design misses its clock "
            f"is marked \"{UNMET_MARK.strip()}\" (hover it for which); off-chip bytes and "
            "memory energy do not depend on the clock."], [ratio_table(entries, base)], []),
        trade_section(entries, refs[0] if len(refs) == 1 else None, figures, csv_only),
        Section("synthesis", "Synthesis", [
            "Area of the hierarchical netlist; Fmax, power and energy per element of the flat "
            "timing netlist at the synthesis clock, power from simulated switching activity "
            "(docs/synthesis.md). Timing: met or NOT met at that clock. Critical path: "
            "predicted by the characterized operator library when the design was pipelined "
            "for the clock (lightnorm.codegen.timing; — for results without a timing plan) and "
            "measured by OpenSTA on the netlist (clock - worst slack)."],
            [synthesis_table(entries), area_table(entries)], [fig_area]),
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
        accuracy_section(entries, figures, csv_only),
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
        # no Pareto plots when no sweep point has an error (a sweep without the quality stage)
        pareto = pareto_figures(entries, shape) if any(
            error_and(e, m) is not None for e in entries if e.is_point
            for m in (AREA, TOTAL_PJ)) else []
        figures += pareto
        sections.append(Section("sweeps", "Sweeps", [
            "Every sweep point, its coordinates, the three figures the Pareto plots use and "
            "whether it meets its clock; Pareto \"yes\": on the Pareto front of its sweep (no "
            "other point of the sweep has both a lower error and a lower area / energy). "
            "Error axis: the quality summary's \"error\", log scale. Presets are the labelled "
            "stars." + ("" if pareto else f" No Pareto plot: no sweep point has an "
                                          f"{ERROR.key} (the quality stage did not run).")],
            [sweep_table(name, pts) for name, pts in by_sweep.items()], pareto))
        explore = estimate_section(entries, by_sweep, shape)
        if explore is not None:
            sections.append(explore)
            figures += explore.figures
    clock_fig = clock_figure(entries, timing_library(entries))
    if clock_fig is not None:
        figures.append(clock_fig)
        sections.append(Section("clock", "Clock sweeps", [
            "The points of the sweeps over hw.clock_ns (specs/sweeps/clock-*.toml): for each "
            "target clock the design is generated for that clock (every arithmetic unit "
            "pipelined from the characterized operator library) and synthesized at it. Per "
            "point: whether the clock is met, Fmax, area, datapath energy per element, the "
            "cycles and latency (cycles × clock) of the simulated forward pass, and the "
            "critical path predicted by the library and measured by OpenSTA. Energy and "
            "latency of a point that does NOT meet its clock are at a clock it does not "
            "reach."], [clock_table(entries)], [clock_fig]))

    details = [Section(e.anchor, e.label + (" (baseline)" if e.is_baseline else ""), [],
                       detail_tables(e), []) for e in entries]
    tables = ([t for s in sections for t in s.tables] + [quality_distributions(entries)]
              + csv_only)
    return Page(title, header, warnings, sections, details, tables, figures)


def estimate_section(entries: Sequence[Entry], by_sweep: Mapping[str, Sequence[Entry]],
                     shape: str) -> Section | None:
    """Sweeps that explore (lightnorm sweep --synth front): the estimated cloud, the points
    synthesized and why, and estimate vs synthesis wherever both exist (None without
    estimates)."""
    if not any(e.stage("estimate").ok for e in entries):
        return None
    paras = []
    for name, pts in by_sweep.items():
        front = estimated_front([e for e in pts if e.is_point])
        why = [(e, w) for e in pts if (w := synthesized_why(e, front)) is not None]
        estimated = sum(e.stage("estimate").ok for e in pts)
        counts = {w: sum(x == w for _, x in why) for w in dict.fromkeys(x for _, x in why)}
        paras.append(f"Sweep {name}: {estimated} of {len(pts)} specs estimated, "
                     f"{len(front)} points on the estimated Pareto front of (estimated area, "
                     "estimated total energy per element, error), "
                     f"{len(why)} synthesized" + (": " + ", ".join(
                         f"{n} {w}" for w, n in counts.items()) if why else "") + ".")
    rows = estimate_rows(entries)
    if rows:
        worst = []
        for est, syn in ESTIMATE_PAIRS:
            rel = [r for e in rows if (r := relative_error(e.number(est.stage, est.path),
                                                           e.number(syn.stage, syn.path)))
                   is not None]
            if rel:
                worst.append(f"{syn.header.split(' (')[0]} {fmt_rel(max(rel, key=abs))}")
        paras.append(f"Estimate vs synthesis on the {len(rows)} specs that have both "
                     "(relative error = estimate / synthesis - 1; docs/estimate.md has the "
                     "estimator's validation): largest error " + ", ".join(worst) + ".")
    else:
        paras.append("No spec has both an estimate and a synthesis to compare.")
    fig = estimate_figure(entries, shape)
    return Section("estimates", "Estimates and the synthesized front", paras,
                   [estimate_table(entries)] if rows else [],
                   [fig] if fig is not None else [])


#: how to run the accuracy stage, said where its results are missing
ACCURACY_HOW = ("lightnorm flow --stages generate,csim,cosim,synth,energy,quality,accuracy; "
                "docs/accuracy.md")


def accuracy_summary(entries: Sequence[Entry], refs: Sequence[Reference]) -> str:
    """The header's accuracy line: how the specs were trained and the FP32 reference."""
    ran = [e for e in entries if ACCURACY_STAGE in e.stages]
    if not ran:
        return f"{MISSING} (the accuracy stage did not run: {ACCURACY_HOW})"
    if not refs:
        return f"{MISSING} (no accuracy stage of {len(ran)} succeeded)"
    return "; ".join(f"{r.settings()}, FP32 reference "
                     + ("—" if r.mean is None else f"{acc_text(r.mean, r.std)} %")
                     for r in refs) + f" ({len(ran)} of {len(entries)} specs)"


def trade_section(entries: Sequence[Entry], reference: Reference | None,
                  figures: list[Figure], csv_only: list[Table]) -> Section:
    """Cost against accuracy and off-chip bytes against error, with Pareto fronts; the
    figures and their data tables are appended to ``figures`` and ``csv_only``."""
    paragraphs = [
        "What the approximations buy and what they cost: area and energy per element against "
        "the test accuracy of the network trained with each spec's BN arithmetic (accuracy "
        "stage), and off-chip traffic against the numerical error of the BN outputs (quality "
        "stage). Pareto front: the specs no other spec beats on both axes (cheaper and more "
        "accurate, or cheaper and lower in error), over every spec plotted; the data of each "
        "plot is in data/<figure>.csv."]
    ran = any(ACCURACY_STAGE in e.stages for e in entries)
    drawn: list[Figure] = []
    for trade in TRADES:
        if trade.maximise_y and not ran:
            continue
        got = trade_figure(entries, trade, reference)
        if got is None:
            continue
        drawn.append(got[0])
        csv_only.append(got[1])
    if not ran:
        paragraphs.append("No accuracy plots: the accuracy stage did not run for any spec "
                          f"({ACCURACY_HOW}).")
    elif not any(f.name != BYTES_ERROR.name for f in drawn):
        paragraphs.append("No accuracy plots: fewer than two specs have both a test accuracy "
                          "and the synthesis and energy figures (the stages that failed or did "
                          "not run are in the overview).")
    if BYTES_ERROR.name not in {f.name for f in drawn}:
        paragraphs.append("No plot of off-chip bytes against numerical error: fewer than two "
                          "specs have both (energy and quality stages).")
    figures += drawn
    return Section("tradeoffs", "Trade-offs: cost, accuracy and error", paragraphs, [], drawn)


def accuracy_section(entries: Sequence[Entry], figures: list[Figure],
                     csv_only: list[Table]) -> Section:
    """The accuracy stage's results and training curves, or why there are none."""
    table = accuracy_table(entries)
    paragraphs = [
        "The small CNN of docs/accuracy.md (3 x conv3x3 + BN + ReLU, global average pooling, a "
        "linear classifier) trained with every BN layer computing exactly what the spec's "
        "hardware computes (lightnorm.train.LightNormBatchNorm2d: the golden model, bit for "
        "bit), for K seeds; each seed starts from the same weights and sees the same batches "
        "as the FP32 torch.nn.BatchNorm2d reference. Test accuracy after the last epoch, in "
        "eval mode; mean and sample standard deviation over the seeds; Δ: the difference of "
        "the means, in percentage points."]
    if table is None:
        paragraphs = [f"The accuracy stage did not run for any spec ({ACCURACY_HOW}): no "
                      "accuracy table or training curves."]
        return Section("accuracy", "Accuracy", paragraphs, [], [])
    got = curves_figure(entries)
    drawn = []
    if got is not None:
        drawn.append(got[0])
        csv_only.append(got[1])
    else:
        paragraphs.append("No training curves: no accuracy stage succeeded.")
    figures += drawn
    return Section("accuracy", "Accuracy", paragraphs, [table], drawn)


def timing_summary(missed: Sequence[Entry], judged: int) -> str:
    """The header's timing line: whether every synthesized design meets its clock."""
    if not judged:
        return MISSING
    if not missed:
        return f"met by all {judged} synthesized designs"
    names = ", ".join(e.label for e in missed[:4]) + (", ..." if len(missed) > 4 else "")
    return f"NOT met by {len(missed)} of {judged} synthesized designs: {names}"


def timing_library(entries: Sequence[Entry]) -> str:
    """How the points of the clock sweeps were pipelined: the operator library's liberty and
    margin from their timing plans."""
    plans = [p.entry.value("synth", ("timing_plan",))[0] for p in clock_points(entries)]
    plans = [p for p in plans if isinstance(p, Mapping)]
    if not plans:
        return "no timing plan recorded with these results"
    libs = list(dict.fromkeys(str(p.get("liberty") or MISSING) for p in plans))
    margins = list(dict.fromkeys(fmt_ns(m) for p in plans
                                 if (m := as_number(p.get("margin_ns"))) is not None))
    return ("registers placed by the operator library of lightnorm.codegen.timing, "
            f"characterized on {', '.join(libs)}"
            + (f", margin {' / '.join(margins)} ns" if margins else ""))
