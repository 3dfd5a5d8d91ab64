"""The trade the designs make, drawn: cost against test accuracy (area, energy per element) and
off-chip traffic against numerical error, each with its Pareto front and the presets labelled,
and the training curves of the accuracy stage.

Each figure comes with the table of what it plots (CSV only: ``data/<figure name>.csv``), so
a plot can be read as data too. A figure is only described when it has something to draw: no
accuracy stage, no accuracy plots (:mod:`.contents` says so instead).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .figures import BLOCK_COLOURS, Figure, new_figure, omitted_text, zero_floor
from .metrics import (
    ACC,
    ACC_STD,
    ACCURACY_STAGE,
    AREA,
    BYTES,
    ERROR,
    TOTAL_PJ,
    Metric,
    Reference,
    pareto_front,
)
from .model import IDENTITY_FIELDS, Entry, as_mapping, as_number
from .tables import Table
from .text import acc_text, fmt_pp, shorten

#: the reference's label in the plots and the curves' CSV
REFERENCE_LABEL = "FP32 reference (torch.nn.BatchNorm2d)"
#: most spec panels the training-curves figure draws (the CSV has every spec)
MAX_CURVE_PANELS = 24


@dataclass(frozen=True)
class Trade:
    """One trade-off plot: ``x`` (a cost, lower is better) against ``y`` (accuracy, higher is
    better, or an error, lower is better)."""

    name: str
    title: str
    x: Metric
    x_scale: float
    x_label: str
    y: Metric
    y_label: str
    maximise_y: bool
    y_std: Metric | None = None


TRADES = (
    Trade("trade_area_accuracy", "Area vs test accuracy", AREA, 1e6,
          "area (mm²), hierarchical synthesis", ACC, "test accuracy (%), mean over seeds", True,
          ACC_STD),
    Trade("trade_energy_accuracy", "Energy per element vs test accuracy", TOTAL_PJ, 1.0,
          "energy per element (pJ): datapath + off-chip memory, fwd + bwd", ACC,
          "test accuracy (%), mean over seeds", True, ACC_STD),
    Trade("trade_bytes_error", "Off-chip bytes vs numerical error", BYTES, 1.0,
          "off-chip bytes per element (forward + backward)", ERROR,
          'numerical error: quality summary "error"', False),
)
BYTES_ERROR = TRADES[2]


@dataclass(frozen=True)
class TradePoint:
    entry: Entry
    x: float          # in the plot's unit (x_scale applied)
    y: float
    std: float | None
    on_front: bool


def trade_points(entries: Sequence[Entry], trade: Trade) -> list[TradePoint]:
    """Every entry with both figures (finite), and whether it is on the Pareto front of all of
    them: no other entry has a lower x and a better y."""
    raw: list[tuple[Entry, float, float, float | None]] = []
    for e in entries:
        x, y = e.number(trade.x.stage, trade.x.path), e.number(trade.y.stage, trade.y.path)
        if x is None or y is None or not math.isfinite(x) or not math.isfinite(y):
            continue
        std = None if trade.y_std is None else e.number(trade.y_std.stage, trade.y_std.path)
        raw.append((e, x / trade.x_scale, y, std))
    front = set(pareto_front([(x, -y if trade.maximise_y else y) for _, x, y, _ in raw]))
    return [TradePoint(e, x, y, std, i in front) for i, (e, x, y, std) in enumerate(raw)]


def trade_figure(entries: Sequence[Entry], trade: Trade,
                 reference: Reference | None) -> tuple[Figure, Table] | None:
    """The figure of ``trade`` and its CSV table; None when fewer than two entries have both
    figures (nothing to trade). ``reference``: the FP32 reference line of the accuracy plots
    (when every accuracy result shares one)."""
    points = trade_points(entries, trade)
    if len(points) < 2:
        return None
    better = "more accurate" if trade.maximise_y else "lower in error"
    caption = (f"{trade.title}: every spec with both figures - presets as red stars and other "
               "specs as grey stars (labelled), sweep points as dots (a colour per sweep). The "
               f"black line joins the Pareto front: specs no other spec beats by being both "
               f"cheaper and {better}.")
    if trade.y_std is not None:
        caption += " Error bars: ± one standard deviation over the seeds."
    if reference is not None and trade.maximise_y and reference.mean is not None:
        caption += (f" Dashed line and band: {REFERENCE_LABEL}, "
                    f"{acc_text(reference.mean, reference.std)} % ({reference.settings()}).")
    plotted = {p.entry.index for p in points}
    caption += omitted_text([e for e in entries if e.index not in plotted],
                            f"no {trade.x.key} or no {trade.y.key}")
    ref = reference if trade.maximise_y else None
    figure = Figure(trade.name, trade.title, caption,
                    lambda path: plot_trade(points, trade, ref, path), (trade.name,))
    return figure, trade_table(points, trade)


def trade_table(points: Sequence[TradePoint], trade: Trade) -> Table:
    """What a trade-off plot shows (CSV only): the raw figures, in the stores' units."""
    fields = [*IDENTITY_FIELDS, "kind", trade.x.key, trade.y.key]
    fields += [trade.y_std.key] if trade.y_std is not None else []
    fields.append("pareto")
    rows = []
    for p in points:
        row = [*p.entry.identity(), p.entry.kind, p.x * trade.x_scale, p.y]
        row += [p.std] if trade.y_std is not None else []
        rows.append([*row, p.on_front])
    return Table(trade.name, trade.title, [], [], fields, rows)


def _log_span(values: Sequence[float]) -> bool:
    """Whether an axis of these (positive) values is clearer in log scale: spans > 4x."""
    pos = [v for v in values if v > 0]
    return bool(pos) and max(pos) > 4 * min(pos)


def plot_trade(points: Sequence[TradePoint], trade: Trade, reference: Reference | None,
               path: Path) -> None:
    fig = new_figure(8.5, 6.0)
    ax = fig.add_subplot()
    ylog = not trade.maximise_y  # errors span decades; accuracies do not
    floor = zero_floor([p.y for p in points]) if ylog else 0.0

    def ypos(p: TradePoint) -> float:
        return p.y if not ylog or p.y > 0 else floor

    if reference is not None and reference.mean is not None:
        std = reference.std or 0.0
        ax.axhspan(reference.mean - std, reference.mean + std, color="#888888", alpha=0.15,
                   linewidth=0)
        ax.axhline(reference.mean, color="#555555", linestyle="--", linewidth=1.2,
                   label=f"{REFERENCE_LABEL}: {acc_text(reference.mean, reference.std)} %")
    sweeps = list(dict.fromkeys(p.entry.sweep for p in points if p.entry.is_point))
    for k, sweep in enumerate(sweeps):
        mine = [p for p in points if p.entry.is_point and p.entry.sweep == sweep]
        colour = BLOCK_COLOURS[k % len(BLOCK_COLOURS)]
        ax.errorbar([p.x for p in mine], [ypos(p) for p in mine],
                    yerr=[p.std or 0.0 for p in mine] if trade.y_std is not None else None,
                    fmt="o", color=colour, markersize=5, alpha=0.7, elinewidth=0.8,
                    capsize=2, label=f"sweep {sweep}")
    labelled: set[bool] = set()
    for p in points:
        if p.entry.is_point:
            continue
        colour = "#d62728" if p.entry.preset else "#555555"
        if trade.y_std is not None and p.std:
            ax.errorbar([p.x], [ypos(p)], yerr=[p.std], fmt="none", ecolor=colour,
                        elinewidth=1.0, capsize=3, zorder=2)
        ax.scatter([p.x], [ypos(p)], marker="*", s=200, color=colour, edgecolors="black",
                   linewidths=0.6, zorder=4,
                   label=None if p.entry.preset in labelled else
                   ("presets" if p.entry.preset else "other specs"))
        labelled.add(p.entry.preset)
    front = sorted((p for p in points if p.on_front), key=lambda p: p.x)
    ax.plot([p.x for p in front], [ypos(p) for p in front], "-", color="black", linewidth=1.3,
            zorder=3, label="Pareto front")
    ax.scatter([p.x for p in front], [ypos(p) for p in front], s=150, facecolors="none",
               edgecolors="black", linewidths=1.2, zorder=3)
    xlabel = trade.x_label
    if _log_span([p.x for p in points]):
        ax.set_xscale("log")
        xlabel += " (log scale)"
    ylabel = trade.y_label
    if ylog:
        ax.set_yscale("log")
        ylabel += " (log scale" + ("; 0 drawn at the floor)" if any(p.y <= 0 for p in points)
                                   else ")")
    if ax.get_xscale() == "log":  # plain numbers (6, 10, 20), not 6x10^0
        from matplotlib.ticker import LogFormatter

        ax.xaxis.set_major_formatter(LogFormatter())
        ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False,
                                                  minor_thresholds=(2, 0.5)))
    named = [p for p in points if not p.entry.is_point]
    for p, offset in zip(named, _label_offsets(ax, [(p.x, ypos(p)) for p in named]),
                         strict=True):
        colour = "#d62728" if p.entry.preset else "#555555"
        ax.annotate(shorten(p.entry.label, 40) + (" (error 0)" if ylog and p.y <= 0 else ""),
                    (p.x, ypos(p)), textcoords="offset points", xytext=offset, fontsize=8,
                    color=colour, zorder=5,  # a label moved away from its point: a leader line
                    arrowprops=None if offset == _OFFSETS[0] else
                    {"arrowstyle": "-", "color": colour, "linewidth": 0.5})
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(trade.title + (" (up and left is better)" if trade.maximise_y
                                else " (down and left is better)"))
    ax.grid(True, alpha=0.3, which="both")
    ax.margins(x=0.12, y=0.12)
    ax.legend(fontsize=8, loc="best")
    # labels next to points near the edge must not be cut off
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.15)


# --- training curves ------------------------------------------------------------------------------
def _curves(m: Any) -> list[Mapping[str, Any]]:
    return [c for c in (m if isinstance(m, list) else []) if isinstance(c, Mapping)]


def _series(curves: Sequence[Mapping[str, Any]], key: str
            ) -> tuple[list[int], list[float], list[float], list[float]]:
    """(epochs, mean, min, max) over the seeds of one curve, as long as the shortest seed's
    (a seed that diverged stops early)."""
    runs = [[x for v in c[key] if (x := as_number(v)) is not None] for c in curves
            if isinstance(c.get(key), list)]
    n = min((len(r) for r in runs), default=0)
    cols = [[r[i] for r in runs] for i in range(n)]
    return (list(range(1, n + 1)), [sum(c) / len(c) for c in cols], [min(c) for c in cols],
            [max(c) for c in cols])


def curve_entries(entries: Sequence[Entry]) -> list[Entry]:
    """The entries whose accuracy stage recorded training curves."""
    return [e for e in entries if _curves(e.value(ACCURACY_STAGE, ("curves",))[0])]


def curves_figure(entries: Sequence[Entry]) -> tuple[Figure, Table] | None:
    """Test accuracy per epoch, a panel per spec with its FP32 reference, and the training
    loss of every spec in the first panel; None when no entry has curves."""
    have = curve_entries(entries)
    if not have:
        return None
    shown = have[:MAX_CURVE_PANELS]
    caption = ("Training curves of the accuracy stage. First panel: training loss (mean over "
               "each epoch's steps, then over the seeds; log scale) of every spec. Then a "
               "panel per spec: test accuracy after each epoch (%), mean over the seeds "
               "(line) and min..max (band), and the "
               f"{REFERENCE_LABEL} trained from the same weights on the same batches (dashed). "
               "The panel title gives the final test accuracy (mean ± std) and the difference "
               "from the reference (pp).")
    if len(have) > len(shown):
        caption += (f" {len(have) - len(shown)} more specs are in "
                    "data/training_curves.csv only: " + ", ".join(e.label for e in
                                                                  have[len(shown):]) + ".")
    figure = Figure("training_curves", "Training curves", caption,
                    lambda path: plot_curves(shown, path), ("training_curves",))
    return figure, curves_table(have)


def curves_table(entries: Sequence[Entry]) -> Table:
    """Every epoch of every seed of each spec and of its reference (CSV only)."""
    fields = [*IDENTITY_FIELDS, "variant", "seed", "epoch", "train_loss", "test_acc_pct",
              "test_loss"]
    rows: list[list[Any]] = []
    for e in entries:
        m = as_mapping(e.value(ACCURACY_STAGE, ())[0])
        ref = as_mapping(m.get("reference"))
        for variant, curves in (("spec", _curves(m.get("curves"))),
                                ("reference", _curves(ref.get("curves")))):
            for c in curves:
                cols: list[list[Any]] = [
                    c[k] if isinstance(c.get(k), list) else []
                    for k in ("train_loss", "test_acc_pct", "test_loss")]
                for i in range(max(len(v) for v in cols)):
                    rows.append([*e.identity(), variant, c.get("seed"), i + 1,
                                 *(v[i] if i < len(v) else None for v in cols)])
    return Table("training_curves", "Training curves", [], [], fields, rows)


def plot_curves(entries: Sequence[Entry], path: Path) -> None:
    from matplotlib.ticker import MaxNLocator

    n = len(entries) + 1
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig = new_figure(4.4 * ncols, 3.1 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    flat = [ax for row in axes for ax in row]
    loss_ax = flat[0]
    for k, e in enumerate(entries):
        m = as_mapping(e.value(ACCURACY_STAGE, ())[0])
        ref = as_mapping(m.get("reference"))
        colour = BLOCK_COLOURS[k % len(BLOCK_COLOURS)]
        ep, mean, _, _ = _series(_curves(m.get("curves")), "train_loss")
        name = e.short if e.is_point else e.label  # a point by its coordinates
        loss_ax.plot(ep, mean, "-", color=colour, linewidth=1.2, label=shorten(name, 32))
        if k == 0:
            rep, rmean, _, _ = _series(_curves(ref.get("curves")), "train_loss")
            loss_ax.plot(rep, rmean, "--", color="#555555", linewidth=1.2,
                         label="FP32 reference")
        ax = flat[k + 1]
        for curves, style, col, label in ((_curves(ref.get("curves")), "--", "#555555",
                                           "FP32 reference"),
                                          (_curves(m.get("curves")), "-", colour, "this spec")):
            ep, mean, lo, hi = _series(curves, "test_acc_pct")
            if ep:
                ax.fill_between(ep, lo, hi, color=col, alpha=0.15, linewidth=0)
                ax.plot(ep, mean, style, color=col, linewidth=1.4, label=label)
        acc = as_mapping(m.get("accuracy_pct"))
        mean_acc, std_acc = as_number(acc.get("mean")), as_number(acc.get("std"))
        delta = as_number(m.get("delta_pp"))
        final = ("failed" if mean_acc is None else f"{acc_text(mean_acc, std_acc)} %"
                 + ("" if delta is None else f" ({fmt_pp(delta)} pp)"))
        ax.set_title(f"{shorten(name, 44)}\n{final}", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    loss_ax.set_yscale("log")
    loss_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set_title("Training loss, every spec", fontsize=9)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss (log scale)")
    loss_ax.grid(True, alpha=0.3, which="both")
    if len(entries) <= 12:
        loss_ax.legend(fontsize=6, loc="best")
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.15)


#: label offsets (points) tried in turn, so that labels of neighbouring points do not overlap
_OFFSETS = ((7, 6), (7, -13), (7, 19), (7, -26), (7, 32), (7, -39))


def _label_offsets(ax: Any, xy: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """An offset per point: the first of :data:`_OFFSETS` whose label position (in display
    coordinates, after the axes' scales are set) is not within a label's height and width of
    one already placed."""
    fig = ax.get_figure()
    fig.canvas.draw()  # fixes the limits and scales the transform uses
    to_px = ax.transData.transform
    dpi = fig.dpi / 72.0  # pixels per point
    placed: list[tuple[float, float]] = []
    out = []
    for x, y in xy:
        px, py = to_px((x, y))
        for dx, dy in _OFFSETS:
            lx, ly = px + dx * dpi, py + dy * dpi
            if all(abs(lx - ox) > 110 * dpi or abs(ly - oy) > 11 * dpi for ox, oy in placed):
                break
        placed.append((lx, ly))
        out.append((dx, dy))
    return out
