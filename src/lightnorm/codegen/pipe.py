"""Registers at a unit's natural cut points, placed by the generator (FloPoCo-style).

A pipelinable RTL template is written as a sequence of combinational *sections* (for an
adder: operand compare and swap | align and add | normalize | round). Every signal is defined in
one section; a use in a later section reads its copy delayed by the registers on the cut points
in between. Which cut points carry a register (``cuts``) is chosen by the generator from the
characterized delays of the sections (:mod:`lightnorm.cost.oplib`); with no cut the template
renders exactly the combinational module it always did.

A template receives a :class:`Pipe` as ``p`` and uses it like this::

    <% set body %>
    <@ p.at(1) @>
        <@ p.wire("sum", p + 4) @> = opl + ops;      // defined in section 1
    <@ p.at(2) @>
        ... .in(<@ p.ref("sum") @>) ...             // sum as seen in section 2
    <% endset %>
    module <@ name @> (<@ p.clock_ports() @>...);
    <@ p.declarations() @><@ body @><@ p.registers() @>endmodule

The body is rendered first (into ``body``), so :meth:`declarations` knows every delayed copy
that a ``ref`` asked for and declares them before the body (Verilog wants declarations before
uses), and :meth:`registers` makes them after it. The copies are registers ``<name>_d<k>``
clocked by ``clk`` and enabled by ``en`` (a stalled pipeline holds its contents), so a
pipeline built of such units advances as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class _Signal:
    name: str
    width: int
    signed: bool
    section: int
    vector: bool = False


@dataclass
class Pipe:
    """The register placement of one unit: ``sections`` combinational sections, a register on
    every cut point in ``cuts`` (cut ``k`` sits between sections ``k - 1`` and ``k``,
    ``1 <= k < sections``)."""

    sections: int = 1
    cuts: frozenset[int] = frozenset()
    clock: str = "clk"
    enable: str = "en"
    _signals: dict[str, _Signal] = field(default_factory=dict)
    _section: int = 0
    #: the deepest delayed copy of each signal that a ref asked for
    _delays: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cuts = frozenset(self.cuts)
        if self.sections < 1:
            raise ValueError(f"a unit has at least one section, got {self.sections}")
        bad = sorted(c for c in self.cuts if not 1 <= c < self.sections)
        if bad:
            raise ValueError(f"cut points {bad} outside 1..{self.sections - 1}")

    # --- what the template asks ------------------------------------------------------------
    @property
    def latency(self) -> int:
        """Clock edges from the inputs to the output."""
        return len(self.cuts)

    @property
    def registered(self) -> bool:
        return bool(self.cuts)

    def at(self, section: int) -> str:
        """Start section ``section`` (sections come in order); renders nothing."""
        if not self._section <= section < self.sections:
            raise ValueError(f"section {section} after section {self._section} "
                             f"(of {self.sections})")
        self._section = section
        return ""

    def input(self, name: str, width: int, signed: bool = False) -> str:
        """A port (or a signal declared by hand) available from section 0; renders nothing."""
        self._define(name, width, signed, 0)
        return ""

    def wire(self, name: str, width: int = 1, signed: bool = False, vector: bool = False
             ) -> str:
        """Declare ``name`` in the current section: renders ``wire [w-1:0] name`` (a 1-bit
        ``vector`` gets ``[0:0]``: it is indexed)."""
        self._define(name, width, signed, self._section, vector)
        return f"wire {_range(width, signed, vector)}{name}"

    def defined(self, name: str, width: int = 1, signed: bool = False) -> str:
        """Record a signal the template declares itself (a ``reg`` of an ``always @*`` block,
        an instance output); renders nothing."""
        self._define(name, width, signed, self._section)
        return ""

    def ref(self, name: str) -> str:
        """``name`` as seen in the current section: the signal itself, or its copy delayed by
        the registers between its section and this one."""
        sig = self._signals.get(name)
        if sig is None:
            raise KeyError(f"signal {name!r} used before it was defined")
        k = self._crossed(sig.section, self._section)
        if k == 0:
            return name
        self._delays[name] = max(self._delays.get(name, 0), k)
        return f"{name}_d{k}"

    def describe(self) -> str:
        """A header comment line on the registers (nothing for a combinational unit)."""
        if not self.registered:
            return ""
        where = ", ".join(str(c) for c in sorted(self.cuts))
        return (f"// Pipelined: registers before section(s) {where} of {self.sections} "
                f"(latency {self.latency}; clk, en: all registers advance when en is high).\n")

    def clock_ports(self, indent: str = "    ") -> str:
        """``input wire clk, input wire en,`` lines when the unit has registers, else nothing."""
        if not self.registered:
            return ""
        return (f"{indent}input  wire {self.clock},\n"
                f"{indent}input  wire {self.enable},\n")

    def clock_connections(self) -> str:
        """``.clk(clk), .en(en), `` for an instance of a registered unit, else nothing."""
        if not self.registered:
            return ""
        return f".{self.clock}({self.clock}), .{self.enable}({self.enable}), "

    def declarations(self, indent: str = "    ") -> str:
        """Declare the delayed copies every ``ref`` asked for (before the body that uses
        them)."""
        out = []
        for name in sorted(self._delays):
            sig = self._signals[name]
            for k in range(1, self._delays[name] + 1):
                out.append(f"{indent}reg  {_range(sig.width, sig.signed, sig.vector)}"
                           f"{name}_d{k};\n")
        return "".join(out)

    def registers(self, indent: str = "    ") -> str:
        """The registers that make the delayed copies (after the body, which declares what
        they read)."""
        if not self._delays:
            return ""
        moves = []
        for name in sorted(self._delays):
            prev = name
            for k in range(1, self._delays[name] + 1):
                moves.append(f"{indent}        {name}_d{k} <= {prev};\n")
                prev = f"{name}_d{k}"
        return (f"{indent}always @(posedge {self.clock}) begin\n"
                f"{indent}    if ({self.enable}) begin\n" + "".join(moves)
                + f"{indent}    end\n{indent}end\n")

    def register_cuts(self) -> dict[str, int]:
        """Every delay register (``name_dk``) and the cut point it sits on."""
        cuts = sorted(self.cuts)
        out = {}
        for name, depth in self._delays.items():
            src = self._signals[name].section
            after = [c for c in cuts if c > src]
            for k in range(1, depth + 1):
                out[f"{name}_d{k}"] = after[k - 1]
        return out

    # --- internals -------------------------------------------------------------------------
    def _define(self, name: str, width: int, signed: bool, section: int,
                vector: bool = False) -> None:
        if name in self._signals:
            raise ValueError(f"signal {name!r} defined twice")
        if width < 1:
            raise ValueError(f"signal {name!r}: width {width}")
        self._signals[name] = _Signal(name, int(width), bool(signed), section, vector)

    def _crossed(self, src: int, dst: int) -> int:
        if dst < src:
            raise ValueError(f"a signal of section {src} used in the earlier section {dst}")
        return sum(1 for c in self.cuts if src < c <= dst)


@dataclass(frozen=True)
class PipePlan:
    """Where a unit's registers go: what a module's context holds (a fresh :class:`Pipe` is
    made from it for each rendering, since a Pipe records what the template asks)."""

    sections: int = 1
    cuts: frozenset[int] = frozenset()

    @property
    def latency(self) -> int:
        return len(self.cuts)

    @property
    def suffix(self) -> str:
        """The module-name suffix of a placement: ``_p13`` = registers at cuts 1 and 3."""
        return "_p" + "".join(str(c) for c in sorted(self.cuts)) if self.cuts else ""

    def pipe(self) -> Pipe:
        return Pipe(self.sections, self.cuts)


COMBINATIONAL = PipePlan()


def _range(width: int, signed: bool, vector: bool = False) -> str:
    s = "signed " if signed else ""
    return f"{s}[{width - 1}:0] " if width > 1 or signed or vector else ""


def balanced_cuts(delays: Iterable[float], stages: int) -> frozenset[int]:
    """The cut points that split sections of the given delays into ``stages + 1`` contiguous
    groups with the smallest largest group delay (ties: the earliest cuts). Exact (dynamic
    programming over the sections)."""
    d = [float(x) for x in delays]
    n = len(d)
    if not 0 <= stages < n:
        raise ValueError(f"{stages} registers do not fit between {n} sections")
    prefix = [0.0]
    for x in d:
        prefix.append(prefix[-1] + x)
    # best[g][i]: smallest max group delay of the first i sections in g groups; cut[g][i]: start
    # of the last group
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(stages + 2)]
    start = [[0] * (n + 1) for _ in range(stages + 2)]
    best[0][0] = 0.0
    for g in range(1, stages + 2):
        for i in range(1, n + 1):
            for j in range(g - 1, i):
                v = max(best[g - 1][j], prefix[i] - prefix[j])
                if v < best[g][i] - 1e-12:
                    best[g][i], start[g][i] = v, j
    cuts, i = [], n
    for g in range(stages + 1, 0, -1):
        j = start[g][i]
        if g > 1:
            cuts.append(j)
        i = j
    return frozenset(cuts)


def group_delays(delays: Iterable[float], cuts: Iterable[int]) -> list[float]:
    """The delay of each stage: the sum of the section delays between consecutive cuts."""
    d = list(delays)
    bounds = [0, *sorted(cuts), len(d)]
    return [sum(d[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


@dataclass
class Delays:
    """Delay lines of a composite module's side signals (valid, mask, last...), to keep them
    in step with data that takes a unit's latency: ``d("m1", 16, 3)`` is ``m1`` three enabled
    clock edges later (``m1`` itself when the latency is 0). :meth:`emit` writes the lines
    (registers on ``clk`` enabled by ``enable``, cleared by ``rst`` for ``reset=True``, e.g.
    valid bits) at the end of the module; ``names`` lists the valid bits in flight, for a
    pipeline's ``busy``."""

    enable: str = "en"
    clock: str = "clk"
    reset_signal: str = "rst"
    _lines: dict[str, tuple[int, bool, int, bool]] = field(default_factory=dict)

    def __call__(self, name: str, width: int, n: int, reset: bool = False,
                 vector: bool = False) -> str:
        """``vector``: declared with a range even at width 1 (one bit per lane: indexed)."""
        if n <= 0:
            return name
        old = self._lines.get(name)
        if old is not None and (old[0] != width or old[1] != reset or old[3] != vector):
            raise ValueError(f"delay line of {name!r} asked with two widths or resets")
        self._lines[name] = (width, reset, max(n, old[2] if old else 0), vector)
        return f"{name}_q{n}"

    def valid_bits(self, name: str) -> list[str]:
        """Every stage of ``name``'s delay line (for ``busy``)."""
        line = self._lines.get(name)
        return [f"{name}_q{k}" for k in range(1, line[2] + 1)] if line else []

    def emit(self, indent: str = "    ") -> str:
        out = []
        for name in sorted(self._lines):
            width, reset, n, vector = self._lines[name]
            for k in range(1, n + 1):
                out.append(f"{indent}reg  {_range(width, False, vector)}{name}_q{k};\n")
            out.append(f"{indent}always @(posedge {self.clock}) begin\n")
            body = "".join(f"{indent}        {name}_q{k} <= "
                           f"{name if k == 1 else f'{name}_q{k - 1}'};\n" for k in range(1, n + 1))
            if reset:
                zero = f"{width}'d0" if width > 1 else "1'b0"
                out.append(f"{indent}    if ({self.reset_signal}) begin\n"
                           + "".join(f"{indent}        {name}_q{k} <= {zero};\n"
                                     for k in range(1, n + 1))
                           + f"{indent}    end else if ({self.enable}) begin\n{body}"
                           f"{indent}    end\n")
            else:
                out.append(f"{indent}    if ({self.enable}) begin\n{body}{indent}    end\n")
            out.append(f"{indent}end\n")
        return "".join(out)
