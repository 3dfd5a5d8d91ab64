"""How the report writes numbers and short texts: the only place a number becomes text.

Every function takes a plain float (or a string) and returns what a table cell, a figure label
or a header line shows; a non-finite number is shown as itself (``nan``, ``inf``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: the text of a cell without a value (the reason is in the cell's note)
MISSING = "—"
TIMES = "×"
#: longest reason shown in a table cell (the full text is in its note)
REASON_CHARS = 90


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


def fmt_clock(ns: float) -> str:
    """A clock period as the spec gives it: ``5 ns``, ``7.5 ns``."""
    return (_finite_or_text(ns) or f"{ns:g}") + " ns"


def fmt_us(value: float) -> str:
    """Microseconds: 3 significant digits."""
    return fmt_sig(value)


def timing_text(met: bool | None, clock_ns: float | None, fmax_mhz: float | None) -> str:
    """``met at 5 ns``, ``NOT met at 5 ns (Fmax 170.0 MHz)``; — when nothing is known."""
    at = "" if clock_ns is None else f" at {fmt_clock(clock_ns)}"
    if met is None:
        return f"timing not reported{at}" if at else MISSING
    if met:
        return f"met{at}"
    return f"NOT met{at}" + ("" if fmax_mhz is None else f" (Fmax {fmt_mhz(fmax_mhz)} MHz)")


def clock_text(met: bool | None, clock_ns: float | None) -> str:
    """``5 ns, met``, ``5 ns, NOT met``: the clock a design was synthesized at, and the verdict."""
    verdict = "timing not reported" if met is None else "met" if met else "NOT met"
    if clock_ns is None:
        return MISSING if met is None else f"clock not reported, {verdict}"
    return f"{fmt_clock(clock_ns)}, {verdict}"


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


def fmt_rel(fraction: float) -> str:
    """A relative error, signed, in percent with 1 decimal (``+3.3%``)."""
    return _finite_or_text(fraction) or f"{100 * fraction:+.1f}%"


def fmt_acc(pct: float) -> str:
    """A test accuracy in percent, 2 decimals (one test image of 360 is 0.28 %)."""
    return _finite_or_text(pct) or f"{pct:.2f}"


def fmt_pp(value: float) -> str:
    """A difference in percentage points, signed: ``+0.46``, ``-8.52``."""
    return _finite_or_text(value) or f"{value:+.2f}"


def acc_text(mean: float, std: float | None) -> str:
    """``99.35 ± 0.16``: mean and standard deviation over seeds, in percent."""
    return fmt_acc(mean) + ("" if std is None else f" ± {fmt_acc(std)}")


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def tools_text(versions: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {one_line(v) if v is not None else '(unknown)'}"
                     for k, v in sorted(versions.items())) or MISSING


def finished_text(finished: str | None) -> str:
    if not finished:
        return MISSING
    return finished.replace("T", " ")


def shape_text(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        return "(" + ", ".join(str(d) for d in shape) + ")"
    return str(shape)


def point_text(point: Mapping[str, Any]) -> str:
    """``man_bits=7, block=16`` (the last component of each key, the whole key on a clash)."""
    shorts = [str(k).rsplit(".", 1)[-1] for k in point]
    out = []
    for (key, value), short in zip(point.items(), shorts, strict=True):
        name = short if shorts.count(short) == 1 else str(key)
        out.append(f"{name}={value}")
    return ", ".join(out)


def slug(text: str) -> str:
    """A lower-case name made of letters, digits and dashes (anchors, CSV file names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "spec"
