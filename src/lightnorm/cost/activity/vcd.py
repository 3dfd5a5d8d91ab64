"""Toggle counts and duty cycles per bit from a VCD written once per clock cycle.

The activity harness (:mod:`.harness`) dumps the design under test once per cycle, after the
rising edge, so every value change in the file is a register (or input port) update and the
value at one timestamp holds for the whole cycle. From such a file, per bit of every variable:

* ``toggles``: value changes inside the window (the initial values at the first timestamp are
  not changes);
* ``high``: cycles during which the bit was 1 (``x`` and ``z`` count as 0).

Activity (toggles per clock cycle, what OpenSTA's ``set_power_activity`` takes) is
``toggles / cycles``; duty (fraction of cycles high) is ``high / cycles``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VcdError(ValueError):
    """A VCD file that cannot be read."""


@dataclass(frozen=True)
class SignalActivity:
    """One VCD variable, bits ``msb`` .. ``lsb``; per-bit arrays indexed by bit - min(msb, lsb)."""

    width: int
    msb: int
    lsb: int
    toggles: np.ndarray
    high: np.ndarray

    def index(self, bit: int | None) -> int | None:
        lo, hi = min(self.msb, self.lsb), max(self.msb, self.lsb)
        if bit is None:
            return 0 if self.width == 1 else None
        if not lo <= bit <= hi:
            return None
        return bit - lo


@dataclass(frozen=True)
class VcdActivity:
    """Every variable of a VCD, by hierarchical name below ``root`` (``u_fwd.acc``)."""

    #: cycles of the window: first timestamp .. ``end`` (exclusive)
    cycles: int
    signals: dict[str, SignalActivity]

    def bit(self, name: str, bit: int | None) -> tuple[int, int] | None:
        """``(toggles, high cycles)`` of one bit, or None when the name or bit is unknown."""
        sig = self.signals.get(name)
        if sig is None:
            return None
        i = sig.index(bit)
        if i is None:
            return None
        return int(sig.toggles[i]), int(sig.high[i])


_VAR = re.compile(r"^\$var\s+\S+\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+\[(-?\d+)(?::(-?\d+))?\])?\s+\$end")


def read_vcd(path: str | Path, root: str = "TOP.lightnorm_tb.u_dut",
             cycles: int | None = None) -> VcdActivity:
    """Read a per-cycle VCD: variables below the scope ``root`` (dotted), names relative to it.

    ``cycles``: length of the window in cycles (default: last timestamp - first + 1).
    """
    p = Path(path)
    codes: dict[str, list[tuple[str, int, int, int]]] = {}
    scope: list[str] = []
    root_parts = root.split(".") if root else []
    changes: dict[str, list[tuple[int, str]]] = {}
    t = None
    t_first = None
    with open(p, encoding="ascii", errors="replace") as fh:
        # ---- header
        for line in fh:
            s = line.strip()
            if not s:
                continue
            if s.startswith("$scope"):
                parts = s.split()
                if len(parts) < 3:
                    raise VcdError(f"{p}: bad $scope line {s!r}")
                scope.append(parts[2])
            elif s.startswith("$upscope"):
                if not scope:
                    raise VcdError(f"{p}: $upscope without $scope")
                scope.pop()
            elif s.startswith("$var"):
                m = _VAR.match(s)
                if not m:
                    raise VcdError(f"{p}: bad $var line {s!r}")
                if scope[:len(root_parts)] != root_parts:
                    continue
                width = int(m.group(1))
                code = m.group(2)
                rel = ".".join(scope[len(root_parts):] + [m.group(3)])
                if m.group(4) is not None:
                    msb = int(m.group(4))
                    lsb = int(m.group(5)) if m.group(5) is not None else msb
                else:
                    msb, lsb = width - 1, 0
                if abs(msb - lsb) + 1 != width:
                    msb, lsb = width - 1, 0
                codes.setdefault(code, []).append((rel, width, msb, lsb))
                changes.setdefault(code, [])
            elif s.startswith("$enddefinitions"):
                break
        else:
            raise VcdError(f"{p}: no $enddefinitions (truncated?)")
        # ---- value changes
        for line in fh:
            c = line[:1]
            if c == "#":
                t = int(line[1:])
                if t_first is None:
                    t_first = t
            elif c == "b" or c == "B":
                val, code = line[1:].split()
                lst = changes.get(code)
                if lst is not None:
                    lst.append((t, val))  # type: ignore[arg-type]
            elif c in "01xzXZ" and c:
                code = line[1:].strip()
                lst = changes.get(code)
                if lst is not None:
                    lst.append((t, c))  # type: ignore[arg-type]
            # $dumpvars / $end / comments / real values: ignored
    if t_first is None:
        raise VcdError(f"{p}: no timestamps (empty window)")
    t_last = t if t is not None else t_first
    n = cycles if cycles is not None else t_last - t_first + 1
    end = t_first + n
    signals: dict[str, SignalActivity] = {}
    for code, names in codes.items():
        width = names[0][1]
        ch = changes[code]
        if ch:
            times = np.fromiter((x[0] for x in ch), dtype=np.int64, count=len(ch))
            rows = []
            for _, v in ch:
                v = v.lower()
                if len(v) < width:
                    v = v.rjust(width, v[0] if v[0] in "xz" else "0")
                elif len(v) > width:
                    v = v[-width:]
                rows.append(v)
            arr = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8)
            bits = (arr.reshape(len(rows), width) == ord("1"))
            # one timestamp can carry several values of the same variable: keep the last
            keep = np.ones(len(times), dtype=bool)
            keep[:-1] = times[1:] != times[:-1]
            times, bits = times[keep], bits[keep]
            inside = (times >= t_first) & (times < end)
            times, bits = times[inside], bits[inside]
        if not ch or len(times) == 0:
            tog = np.zeros(width, dtype=np.int64)
            high = np.zeros(width, dtype=np.int64)
        else:
            tog = (bits[1:] != bits[:-1]).sum(axis=0).astype(np.int64)
            dur = np.diff(np.append(times, end)).astype(np.int64)
            dur[0] += times[0] - t_first  # a first value after the window start holds back
            high = (bits * dur[:, None]).sum(axis=0).astype(np.int64)
        # columns are MSB first; store indexed by bit - min(msb, lsb)
        for rel, _w, msb, lsb in names:
            if msb >= lsb:
                t_arr, h_arr = tog[::-1].copy(), high[::-1].copy()
            else:
                t_arr, h_arr = tog.copy(), high.copy()
            signals[rel] = SignalActivity(width, msb, lsb, t_arr, h_arr)
    return VcdActivity(int(n), signals)
