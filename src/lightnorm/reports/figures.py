"""The report's figures (PNG): area by block, energy per element, for sweeps the Pareto
plots of area and energy against the numerical error, and for clock sweeps area, energy, Fmax
and latency against the target clock.

Matplotlib is imported inside the plotting functions (object-oriented API on an Agg canvas, no
pyplot, no global backend switch). A figure is described (:class:`Figure`: file stem, title,
caption) before it is drawn, so the pages can be laid out without drawing anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics import (
    AREA,
    DP_PJ,
    ERROR,
    EST_AREA,
    EST_TOTAL_PJ,
    MEM_PJ,
    TOTAL_PJ,
    ClockPoint,
    Metric,
    clock_points,
    error_and,
    estimated_front,
    pareto_front,
)
from .model import BLOCKS, Entry
from .tables import ESTIMATE_TABLE, sweep_table_name
from .text import shorten


@dataclass
class Figure:
    """One figure of the report: ``draw(path)`` writes its PNG."""

    name: str      # file stem
    title: str
    caption: str
    draw: Callable[[Path], None]
    #: the tables (by name) holding what the figure plots: linked under it as data/<name>.csv
    data: tuple[str, ...] = ()
    file: str = ""  # relative path, set when written
    src: str = ""   # what the page loads: ``file``, or a data URI in a single-file report
    #: (CSV file, link) of each table of ``data``, set when written
    data_links: list[tuple[str, str]] = field(default_factory=list)


def area_figure(entries: Sequence[Entry]) -> Figure:
    return Figure("area_by_block", "Area by block",
                  "Hierarchical synthesis area per spec, stacked by block "
                  "(docs/synthesis.md, Blocks).",
                  lambda path: plot_area(entries, path), ("area_by_block",))


def energy_figure(entries: Sequence[Entry], shape: str) -> Figure:
    return Figure("energy_per_element", "Energy per element",
                  f"Energy per element of one BN layer {shape}, forward + backward: "
                  "datapath (synthesis) stacked on off-chip memory (energy model).",
                  lambda path: plot_energy(entries, path, shape), ("energy",))


def pareto_figures(entries: Sequence[Entry], shape: str) -> list[Figure]:
    """Area vs error and total energy per element vs error, every entry that has both."""
    out = []
    for name, title, metric, scale, ylabel in (
            ("pareto_area_error", "Area vs error", AREA, 1e6, "area (mm²)"),
            ("pareto_energy_error", "Total energy per element vs error", TOTAL_PJ, 1.0,
             f"total energy per element (pJ), layer {shape}")):
        caption = (f"{title}: sweep points (the Pareto-optimal ones connected) and the other "
                   "specs (stars, labelled); error = quality summary \"error\", log scale.")
        caption += omitted_text([e for e in entries if error_and(e, metric) is None],
                                f"no {metric.key} or no error")

        def draw(path: Path, metric: Metric = metric, scale: float = scale,
                 ylabel: str = ylabel, title: str = title) -> None:
            plot_pareto(entries, metric, scale, ylabel, title, path)

        sweep_tables = tuple(dict.fromkeys(sweep_table_name(str(e.sweep)) for e in entries
                                           if e.is_point))
        out.append(Figure(name, title, caption, draw, sweep_tables))
    return out


#: the panels of the estimate figure: (estimated, synthesized) figure, scale, axis label
EXPLORE_PANELS = ((EST_AREA, AREA, 1e6, "area (mm²)"),
                  (EST_TOTAL_PJ, TOTAL_PJ, 1.0, "total energy per element (pJ)"))


def estimate_figure(entries: Sequence[Entry], shape: str) -> Figure | None:
    """The estimated cloud of every sweep point and what synthesis made of the points
    synthesized (None when no sweep point has an estimate and an error)."""
    points = [e for e in entries if e.is_point]
    if not any(e.number(EST_AREA.stage, EST_AREA.path) is not None
               and e.number(ERROR.stage, ERROR.path) is not None for e in points):
        return None
    caption = ("Every sweep point as estimated without synthesis (grey: lightnorm estimate), "
               "the points on the Pareto front of estimated area, estimated total energy per "
               "element and error ringed (the ones lightnorm sweep --synth front synthesizes), "
               "and the synthesized points at what synthesis measured (blue, joined to their "
               f"estimate by a line; the blue line: the synthesized front). Layer {shape}; "
               "error = quality summary \"error\", log scale.")
    return Figure("explore_estimates", "Estimated cloud and synthesized front", caption,
                  lambda path: plot_explore(points, path),
                  (*dict.fromkeys(sweep_table_name(str(e.sweep)) for e in points),
                   ESTIMATE_TABLE))


def plot_explore(points: Sequence[Entry], path: Path) -> None:
    """Two panels (area, total energy per element) against the error."""
    fig = new_figure(12.0, 5.0)
    front = estimated_front(points)
    errs = [x for e in points if (x := e.number(ERROR.stage, ERROR.path)) is not None]
    floor = zero_floor(errs)
    for k, (est, syn, scale, label) in enumerate(EXPLORE_PANELS):
        ax = fig.add_subplot(1, 2, k + 1)
        cloud, ringed, synth, links = [], [], [], []
        for e in points:
            err = e.number(ERROR.stage, ERROR.path)
            if err is None:
                continue
            x = err if err > 0 else floor
            ev, sv = e.number(est.stage, est.path), e.number(syn.stage, syn.path)
            if ev is not None:
                cloud.append((x, ev / scale))
                if e.index in front:
                    ringed.append((x, ev / scale))
            if sv is not None:
                synth.append((x, sv / scale))
                if ev is not None:
                    links.append(((x, x), (ev / scale, sv / scale)))
        ax.scatter([p[0] for p in cloud], [p[1] for p in cloud], s=12, color="#999999",
                   alpha=0.6, label=f"estimated ({len(cloud)} points)")
        ax.scatter([p[0] for p in ringed], [p[1] for p in ringed], s=60, facecolors="none",
                   edgecolors="black", linewidths=0.9,
                   label=f"on the estimated front ({len(ringed)})")
        for xs, ys in links:
            ax.plot(xs, ys, color="#4e79a7", linewidth=0.8, alpha=0.7)
        if synth:
            ax.scatter([p[0] for p in synth], [p[1] for p in synth], s=30, color="#4e79a7",
                       zorder=3, label=f"synthesized ({len(synth)})")
            line = [synth[i] for i in pareto_front(synth)]
            ax.plot([p[0] for p in line], [p[1] for p in line], "-", color="#4e79a7",
                    linewidth=1.4, label="synthesized front")
        ax.set_xscale("log")
        heights = [p[1] for p in cloud + synth if p[1] > 0]
        if heights and max(heights) > 4 * min(heights):
            ax.set_yscale("log")
            label += " (log scale)"
        ax.set_xlabel('numerical error: quality summary["error"] (log scale)')
        ax.set_ylabel(label)
        ax.set_title(f"{_bare_label(label)} vs error")
        ax.legend(fontsize=8)
    fig.savefig(path, format="png")


def _bare_label(label: str) -> str:
    return label.split(" (", 1)[0].capitalize()


def omitted_text(omitted: Sequence[Entry], why: str) -> str:
    """The caption's sentence on the entries a figure leaves out: named, except the sweep
    points that were only estimated (``lightnorm sweep --synth front``), which are counted."""
    estimated = [e for e in omitted if e.is_point and e.stage("estimate").ok
                 and e.stage("synth").status == "missing"]
    named = [e.label for e in omitted if e not in estimated]
    return ((f" Not plotted ({why}): " + ", ".join(named) + "." if named else "")
            + (f" Not plotted: {len(estimated)} sweep points estimated but not synthesized "
               "(Estimates and the synthesized front)." if estimated else ""))


def clock_figure(entries: Sequence[Entry], library: str) -> Figure | None:
    """Area, energy per element, Fmax and forward latency against the target clock, one line
    per clock sweep (None when no entry is a point of one). ``library``: how the designs were
    pipelined (the caption says it)."""
    points = clock_points(entries)
    if not points:
        return None
    plotted = [p for p in points if p.area_um2 is not None]
    caption = ("Area, datapath energy per element (forward solid, backward dashed), Fmax and "
               "latency of the simulated forward pass (cycles × clock) against the target "
               "clock, one line per sweep. Each point is the design generated for its clock "
               f"({library}) and synthesized at that clock. Hollow markers: the clock is not "
               "met (Fmax below 1 / clock), so its energy and latency are at a clock the "
               "design does not reach; the dotted line in the Fmax panel is 1 / clock.")
    caption += omitted_text([p.entry for p in points if p not in plotted], "no synthesis")
    return Figure("clock_sweep", "Clock sweeps", caption,
                  lambda path: plot_clock(plotted, path), ("clock_sweep",))


BLOCK_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
                 "#edc948", "#ff9da7", "#9c755f", "#bab0ac")


def new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def zero_floor(values: Sequence[float]) -> float:
    """Where a log axis draws 0: a tenth of the smallest positive value (1e-12 if none)."""
    positive = [v for v in values if v > 0]
    return min(positive) / 10 if positive else 1e-12


def _bar_width(n: int) -> float:
    return min(40.0, max(6.0, 1.0 + 0.55 * n))


def _mark_missing(ax: Any, x: int, text: str) -> None:
    ax.text(x, 0, text, rotation=90, ha="center", va="bottom", fontsize=7, color="#888888")


def plot_area(entries: Sequence[Entry], path: Path) -> None:
    fig = new_figure(_bar_width(len(entries)), 5.0)
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
            _mark_missing(ax, i, "n/a: " + shorten(entries[i].value("synth", ("area_um2",))[1]
                                                    or "no area", 40))
    ax.set_xticks(range(len(entries)), [e.short for e in entries], rotation=40, ha="right",
                  fontsize=8)
    ax.set_ylabel("area (mm²), hierarchical synthesis")
    ax.set_title("Area by block")
    if ax.get_legend_handles_labels()[0]:  # nothing synthesized: no legend (and no warning)
        ax.legend(fontsize=8, ncols=2)
    fig.savefig(path, format="png")


def plot_energy(entries: Sequence[Entry], path: Path, shape: str) -> None:
    fig = new_figure(_bar_width(len(entries)), 5.0)
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
            _mark_missing(ax, i, "n/a: " + shorten(e.value("energy", MEM_PJ.path)[1] or "", 40))
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


def plot_pareto(entries: Sequence[Entry], y: Metric, scale: float, ylabel: str, title: str,
                path: Path) -> None:
    """Sweep points (front connected), other specs as labelled stars; entries without the
    error or ``y`` are left out (the caption says which: :func:`omitted_text`)."""
    fig = new_figure(8.0, 5.5)
    ax = fig.add_subplot()
    data: list[tuple[Entry, float, float]] = []
    for e in entries:
        p = error_and(e, y)
        if p is not None:
            data.append((e, p[0], p[1] / scale))
    floor = zero_floor([err for _, err, _ in data])

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


def plot_clock(points: Sequence[ClockPoint], path: Path) -> None:
    """Four panels against the clock (ns): area, energy per element, Fmax, forward latency.
    A point whose clock is not met is drawn hollow."""
    from matplotlib.lines import Line2D

    fig = new_figure(10.0, 7.5)
    axes = fig.subplots(2, 2, sharex=True)
    panels: list[tuple[Any, str, list[tuple[str, Callable[[ClockPoint], float | None]]]]] = [
        (axes[0][0], "area (mm²)", [("-", lambda p: None if p.area_um2 is None
                                     else p.area_um2 / 1e6)]),
        (axes[0][1], "datapath energy per element (pJ)", [("-", lambda p: p.energy_pj[0]),
                                                 ("--", lambda p: p.energy_pj[1])]),
        (axes[1][0], "Fmax (MHz)", [("-", lambda p: p.timing.fmax_mhz)]),
        (axes[1][1], "forward pass latency (µs)", [("-", lambda p: p.forward_latency_us)]),
    ]
    series = list(dict.fromkeys(p.series for p in points))
    for k, name in enumerate(series):
        colour = BLOCK_COLOURS[k % len(BLOCK_COLOURS)]
        pts = [p for p in points if p.series == name]
        for ax, _, lines in panels:
            for style, y in lines:
                xy = [(p.clock_ns, v, p.timing.missed) for p in pts
                      if (v := y(p)) is not None and math.isfinite(v)]
                if not xy:
                    continue
                ax.plot([x for x, _, _ in xy], [v for _, v, _ in xy], style, color=colour)
                for x, v, missed in xy:
                    ax.plot([x], [v], "o", markersize=7, color=colour,
                            markerfacecolor="none" if missed else colour)
    clocks = sorted({p.clock_ns for p in points})
    if clocks:
        axes[1][0].plot(clocks, [1e3 / c for c in clocks], ":", color="#888888")
    for ax, ylabel, _ in panels:
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if clocks:
            ax.set_xticks(clocks, [f"{c:g}" for c in clocks], fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("target clock (ns)")
    handles = [Line2D([], [], color=BLOCK_COLOURS[k % len(BLOCK_COLOURS)], label=name)
               for k, name in enumerate(series)]
    handles += [Line2D([], [], color="#444444", marker="o", linestyle="none",
                       label="clock met"),
                Line2D([], [], color="#444444", marker="o", markerfacecolor="none",
                       linestyle="none", label="clock NOT met (hollow)"),
                Line2D([], [], color="#444444", linestyle="--", label="energy: backward pass"),
                Line2D([], [], color="#888888", linestyle=":", label="Fmax needed: 1 / clock")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle("Clock sweeps: each point generated and synthesized for its target clock")
    if not points:
        axes[0][0].text(0.5, 0.5, "no point has synthesis results", ha="center",
                        transform=axes[0][0].transAxes)
    fig.savefig(path, format="png")
