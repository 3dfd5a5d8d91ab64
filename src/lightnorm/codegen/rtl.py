"""Render a spec into synthesizable Verilog (``OUT/rtl/``): arithmetic units, datapaths, top.

``render_rtl(spec)`` returns ``{file name: Verilog text}`` (deterministic: same spec, same
bytes). One module per file, named after its parameters (``fp_add_e6m9_rne``,
``bfp_enc_g16m7e8_rne_sat_e6m9_l16``...). Every number the templates print - widths, biases,
exponent limits, max patterns, counter widths, tree shapes, the finalize program - is computed
here or in the formats' views (``fmt.view``); the templates (``lightnorm/templates/rtl/*.v.j2``)
only substitute. What differs between storage-format families - the decoder of a stream, its
channel sums, the encoder of lane results - is one :class:`StorageRTL` per family
(:data:`STORAGE_RTL`, by kind) and the family's Jinja macros (``templates/rtl/formats/``).

The Verilog templates use their own Jinja2 environment whose delimiters cannot occur in
Verilog: ``<% %>`` statements, ``<@ @>`` expressions, ``<# #>`` comments (``{{ }}``/``{# #}``
clash with replication and concatenation, ``<< >>`` with shifts). See docs/rtl.md for the
architecture and the port list of ``lightnorm_top``.

The extension point of other backends (:mod:`lightnorm.backends`): :func:`render_design` renders
any module of the design from an :class:`Override` instead, a template that ``extends`` the
module's own and replaces some of its Jinja blocks - the unit templates' ``description`` and
``body`` (their data ports: :data:`UNIT_PORTS`), the lanes' ``x_decode``, ``dy_decode``,
``norm_lane``, ``dy_centre``, ``dx_weight``, ``dx_lane`` and the finalize's ``description`` and
``body``; the port lists and everything outside the blocks stay the template's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, cast

import jinja2

from lightnorm.codegen import timing
from lightnorm.codegen.env import HW_DELIMITERS, check_signed, check_unsigned, make_environment
from lightnorm.codegen.pipe import COMBINATIONAL, Delays, PipePlan
from lightnorm.spec import BFPFormat, FPFormat, Spec, SpecError
from lightnorm.spec.formats import MXFormat, NumberFormat

TOP = "lightnorm_top"
TB_TOP = "lightnorm_tb"
UNIT_TOP = "unit_harness"


# ---- the Verilog template environment ------------------------------------------------------


def template_dir() -> Path:
    return Path(str(resources.files("lightnorm").joinpath("templates", "rtl")))


def ulit(value: int, width: int) -> str:
    """Unsigned sized Verilog literal: ``8'd255``."""
    check_unsigned("ulit", value, width)
    return f"{width}'d{value}"


def slit(value: int, width: int) -> str:
    """Signed sized Verilog literal: ``12'sd5``, ``-12'sd7``."""
    check_signed("slit", value, width)
    return f"{width}'sd{value}" if value >= 0 else f"-{width}'sd{-value}"


def hlit(value: int, width: int) -> str:
    """Unsigned sized hex literal: ``15'h7bff``."""
    check_unsigned("hlit", value, width)
    return f"{width}'h{value:x}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return make_environment(template_dir(), {"u": ulit, "s": slit, "h": hlit}, **HW_DELIMITERS)


def render_template(name: str, ctx: dict[str, Any]) -> str:
    """Render ``name``; a module context's register placement (``plan``) becomes a fresh
    :class:`~lightnorm.codegen.pipe.Pipe` (``pipe``), and ``dly`` is a fresh
    :class:`~lightnorm.codegen.pipe.Delays`, for this rendering."""
    plan = ctx.get("plan", COMBINATIONAL)
    return environment().get_template(name).render(**ctx, pipe=plan.pipe(), dly=Delays())


# ---- formats as the templates see them -----------------------------------------------------


def bits_for(n: int) -> int:
    """Bits of an unsigned counter that holds 0..n."""
    return max(1, int(n).bit_length())


def exp_bound(fmts: Sequence[NumberFormat], lanes: int) -> int:
    """A bound on |exponent| of every unpacked value and biased intermediate in the design
    whose formats (arithmetic and storage) are ``fmts``."""
    top = max(STORAGE_RTL[f.kind].exp_top(f) for f in fmts)
    return max([8] + [STORAGE_RTL[f.kind].exp_bound(f, lanes, top) for f in fmts])


# ---- the module registry -------------------------------------------------------------------


@dataclass(frozen=True)
class UnitPorts:
    """The data ports of a unit template, in port-list order: what a backend connects when it
    puts its own logic into the unit's ``body`` block. ``handshake``: an iterative unit, whose
    port list is ``clk, rst, start, <inputs>, valid, <output>`` (``start`` samples the inputs
    and clears ``valid``; ``valid`` rises when the output holds the result)."""

    inputs: tuple[str, ...]
    output: str
    handshake: bool = False

    def names(self) -> list[str]:
        """Every port of the unit, in the template's order."""
        if self.handshake:
            return ["clk", "rst", "start", *self.inputs, "valid", self.output]
        return [*self.inputs, self.output]


#: unit template -> its ports (tests/test_backends.py checks them against the rendered units)
UNIT_PORTS = {
    "fp_add.v.j2": UnitPorts(("a", "b"), "y"),
    "fp_mul.v.j2": UnitPorts(("a", "b"), "y"),
    "fp_cvt.v.j2": UnitPorts(("in",), "out"),
    "fp_recip.v.j2": UnitPorts(("a",), "y", handshake=True),
    "fp_sqrt.v.j2": UnitPorts(("a",), "y", handshake=True),
    "bfp_scan.v.j2": UnitPorts(("in_data",), "scan"),
    "bfp_quant.v.j2": UnitPorts(("in", "eb"), "out"),
    "ln_bfp_beat.v.j2": UnitPorts(("ef", "in_data", "in_mask"), "t"),
    "mx_beat.v.j2": UnitPorts(("ef", "in_data", "in_mask"), "t"),
    "ln_bfp_dot.v.j2": UnitPorts(("efx", "efy", "x_data", "dy_data", "in_mask"), "t"),
    "mx_scan.v.j2": UnitPorts(("in_data",), "scan"),
    "mx_quant.v.j2": UnitPorts(("in", "eb"), "out"),
}


@dataclass
class _Mod:
    template: str
    ctx: dict[str, Any]


#: template -> its combinational sections, for the templates whose registers the generator
#: places (codegen.pipe): a module of such a template gets the cut points its timing plan
#: chooses, and a name suffix that says where (``fp_add_e8m15_rne_p13``)
SECTIONS = {
    "fp_add.v.j2": 5,
    # per module: its context says (``sections``)
    "fp_mul.v.j2": 0,
    "bfp_scan.v.j2": 0,
    "bfp_quant.v.j2": 3,
    "ln_bfp_beat.v.j2": 0,
    "mx_beat.v.j2": 0,
    "ln_bfp_dot.v.j2": 0,
    "mx_scan.v.j2": 0,
    "mx_quant.v.j2": 3,
}
#: the extrema's first compare in the design takes longer than its sections characterized
#: alone and the plan's margin say: on the five synthesized designs (of 118) whose critical
#: path it was (rnd-248, 265, 286, 289, 290 at 4 ns, unregistered), by 0.04-0.57 ns, 0.27 ns
#: on average (docs/timing.md, section 6)
EXTREMA_KEY_CONTEXT_NS = 0.3
#: width of the pieces of b in a registered multiplier's partial products (a 24 x 4-bit
#: product leaves room for its register in a 5 ns stage in OSU 0.18 um)
MUL_PIECE = 4


#: a module rendered with given cut points: (module name, its files with the modules it
#: instantiates, register name -> cut point)
Variant = tuple[str, dict[str, str], dict[str, int]]


class TimingPlan(Protocol):
    """Where the registers of each pipelinable module go (:mod:`lightnorm.codegen.timing`)."""

    def cuts(self, unit: str, template: str, sections: int,
             variant: Callable[[frozenset[int]], Variant],
             max_latency: int | None = None, context_ns: float = 0.0,
             instantiated: bool = True) -> frozenset[int]:
        """The cut points of module ``unit`` (its name without suffix) of ``template``;
        ``variant(cuts)`` renders it with other cut points (for characterization);
        ``max_latency``: at most this many (the unit closes a loop that allows no more);
        ``context_ns``: added to the unit's predicted stages on top of the plan's margin (what
        its context in the design adds beyond what the margin covers); ``instantiated``: False
        for a unit characterized only to decide a register of a module that is not a unit."""
        ...


class Combinational:
    """The plan without registers: every module as the combinational original."""

    def cuts(self, unit: str, template: str, sections: int,
             variant: Callable[[frozenset[int]], Variant],
             max_latency: int | None = None, context_ns: float = 0.0,
             instantiated: bool = True) -> frozenset[int]:
        del unit, template, sections, variant, max_latency, context_ns, instantiated
        return frozenset()


class Modules:
    """The parameterized modules a design needs, by name; ``text()`` renders them."""

    def __init__(self, eu: int, plan: TimingPlan | None = None) -> None:
        self.eu = eu  # signed width of unpacked (unbiased) exponents
        self.xw = eu + 1  # signed width of biased exponents into the rounder
        self.plan = plan or Combinational()
        self.mods: dict[str, _Mod] = {}
        #: unit name without suffix -> the module made of it
        self.units: dict[str, str] = {}

    def _add(self, name: str, template: str, max_latency: int | None = None, **ctx: Any
             ) -> str:
        if name in self.units:
            return self.units[name]
        plan = COMBINATIONAL
        base = {"eu": self.eu, "xw": self.xw, **ctx}
        if template in SECTIONS:
            n = ctx.get("sections") or SECTIONS[template]
            plan = PipePlan(n, self.plan.cuts(
                name, template, n, lambda cuts: self._variant(name, template, base, n, cuts),
                max_latency))
        full = name + plan.suffix
        self.units[name] = full
        self.mods[full] = _Mod(template, {"name": full, "plan": plan, **base})
        return full

    def _variant(self, name: str, template: str, ctx: dict[str, Any], sections: int,
                 cuts: frozenset[int]) -> Variant:
        """Module ``name`` rendered with ``cuts``, with the modules it instantiates."""
        plan = PipePlan(sections, cuts)
        full = name + plan.suffix
        pipe = plan.pipe()
        text = environment().get_template(template).render(**ctx, name=full, plan=plan,
                                                            pipe=pipe)
        files = {f"{full}.v": text}
        todo = [v for v in ctx.values() if isinstance(v, str) and v in self.mods]
        while todo:
            dep = todo.pop()
            if f"{dep}.v" not in files:
                files[f"{dep}.v"] = render_template(self.mods[dep].template, self.mods[dep].ctx)
                todo += [v for v in self.mods[dep].ctx.values()
                         if isinstance(v, str) and v in self.mods]
        return full, files, pipe.register_cuts()

    def latency(self, name: str) -> int:
        """Clock edges from a module's inputs to its output (0: combinational)."""
        plan = self.mods[name].ctx.get("plan", COMBINATIONAL)
        return int(plan.latency)

    # -- generic helpers
    def lzc(self, w: int) -> str:
        """Leading-zero count and normalize of a w-bit vector."""
        cw = bits_for(w)
        return self._add(f"ln_lzc_w{w}", "ln_lzc.v.j2", w=w, cw=cw)

    # -- FP
    def round(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_round_{i.ftag}", "fp_round.v.j2", f=i)

    def pack(self, f: FPFormat, gw: int) -> str:
        """Unpacked value (sign, zero, exponent, gw-bit significand) rounded into f."""
        i = f.view
        return self._add(f"fp_pack_g{gw}_{i.ftag}", "fp_pack.v.j2", f=i, gw=gw,
                         round=self.round(f))

    def unpack(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_unpack_{i.tag}", "fp_unpack.v.j2", f=i)

    def cvt(self, fi: FPFormat, fo: FPFormat) -> str:
        a, b = fi.view, fo.view
        return self._add(f"fp_cvt_{a.tag}_to_{b.ftag}", "fp_cvt.v.j2", fi=a, fo=b,
                         unpack=self.unpack(fi), pack=self.pack(fo, a.p))

    def add(self, f: FPFormat, ways: int = 0) -> str:
        """add_f; with ``ways``: the adder of a ``ways``-way accumulator loop, with at most
        ``ways - 1`` registers (a partial is read again ``ways`` items after it is issued); for
        more than one way its operands are selected from the partials in a first section of
        its own (ports parts, ia, ib, use_b, x: a = partial ia, b = use_b ? partial ib : x)."""
        i = f.view
        p = i.p
        dmax = i.emaxf  # bounds the exponent difference of two normal operands
        dw = max(i.e, bits_for(p + 3))
        name = f"fp_add_acc{ways}_{i.ftag}" if ways else f"fp_add_{i.ftag}"
        return self._add(name, "fp_add.v.j2", max_latency=ways - 1 if ways else None, f=i,
                         dw=dw, clamp=dmax > p + 3, lzc=self.lzc(p + 4), lw=bits_for(p + 4),
                         round=self.round(f), ways=ways,
                         sections=SECTIONS["fp_add.v.j2"] + (1 if ways > 1 else 0))

    def mul(self, fi: FPFormat, fo: FPFormat) -> str:
        a, b = fi.view, fo.view
        name = f"fp_mul_{b.ftag}" if a.tag == b.tag else f"fp_mul_{a.tag}_to_{b.ftag}"
        # a registered multiplier sums partial products of b's MUL_PIECE-bit pieces: each
        # term zero-extended to the product width (pad) and shifted to its place (lo)
        pieces = [{"k": k, "lo": lo, "n": min(MUL_PIECE, a.p - lo),
                   "pad": 2 * a.p - a.p - min(MUL_PIECE, a.p - lo)}
                  for k, lo in enumerate(range(0, a.p, MUL_PIECE))]
        # 3:2 carry-save levels over the partial products until two words are left (level i in
        # section i; a group of fewer than 3 passes on), then their sum in two sections (low
        # half, high half), then a section that normalizes, then one that rounds
        csa: list[dict[str, Any]] = []
        n = len(pieces)
        while n > 2:
            groups, outs = [], 0
            for g in range(0, n, 3):
                ins = list(range(g, min(n, g + 3)))
                k = 2 if len(ins) == 3 else len(ins)
                groups.append({"ins": ins, "outs": list(range(outs, outs + k))})
                outs += k
            csa.append({"i": len(csa) + 1, "groups": groups})
            n = outs
        sections = len(csa) + 5 if len(pieces) > 1 else 3
        return self._add(name, "fp_mul.v.j2", fi=a, fo=b, round=self.round(fo),
                         ebias=b.bias - 2 * a.bias, piece=MUL_PIECE, pieces=pieces,
                         csa=csa, sections=sections)

    def recip(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_recip_{i.ftag}", "fp_recip.v.j2", f=i, round=self.round(f),
                         cw=bits_for(i.p + 1))

    def sqrt(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_sqrt_{i.ftag}", "fp_sqrt.v.j2", f=i, round=self.round(f),
                         cw=bits_for(i.p + 1))

    # -- BFP
    def bfp_unpack(self, b: BFPFormat) -> str:
        """A BFP element and its block's exponent field -> unpacked value."""
        i = b.view
        return self._add(f"bfp_unpack_m{i.m}e{i.xw}", "bfp_unpack.v.j2", b=i,
                         lzc=self.lzc(i.m), lw=bits_for(i.m))

    def _beat(self, name: str, template: str, view: Any, kw: int, eoff: int, a: FPFormat,
              lanes: int, sq: bool, **more: Any) -> str:
        """A beat's exact integer sum (``sq``: sum of squares) of lane terms of ``kw`` bits
        (magnitude) at 2^(ef - eoff) (squares: 2^(2(ef - eoff))), rounded into A: a pairwise tree
        over the lanes, one section per level, then normalize and round (pipelinable).
        ``more``: what else the template needs."""
        lg = lanes.bit_length() - 1
        sw = kw + lg  # magnitude width of a beat sum of terms
        qw = 2 * kw + lg  # ... of a beat sum of squared terms
        w = qw if sq else sw
        levels = [{"i": d, "n": lanes >> d} for d in range(1, lg + 1)]
        return self._add(name, template, s=view, a=a.view, lanes=lanes, sq=sq, sw=sw, qw=qw,
                         sw_cw=bits_for(sw), qw_cw=bits_for(qw), eoff=eoff, lzc=self.lzc(w),
                         pack=self.pack(a, w), depth=lg, levels=levels, sections=lg + 3,
                         **more)

    def bfp_beat(self, b: BFPFormat, a: FPFormat, lanes: int, sq: bool) -> str:
        """The exact integer sum (``sq``: sum of squares) of a beat of BFP elements (signed
        mantissas at 2^(E - (m - 1))), rounded into the accumulator format (a statistics step)."""
        what = "sq" if sq else "sum"
        i = b.view
        return self._beat(f"ln_bfp_beat_{what}_m{b.man_bits}e{b.exp_bits}_l{lanes}_{a.view.ftag}",
                          "ln_bfp_beat.v.j2", i, b.man_bits, i.bias + i.m - 1, a, lanes, sq)

    def bfp_dot(self, x: BFPFormat, y: BFPFormat, a: FPFormat, lanes: int) -> str:
        """The beat dot product of two BFP streams (x, dy): the exact integer sum of the
        products of their signed mantissas, at 2^((Ex - (mx - 1)) + (Ey - (my - 1))), rounded
        into the accumulator format (docs/numerics.md section 6; pipelinable like the beat
        sums)."""
        xi, yi = x.view, y.view
        return self._beat(
            f"ln_bfp_dot_m{x.man_bits}e{x.exp_bits}_m{y.man_bits}e{y.exp_bits}_l{lanes}_"
            f"{a.view.ftag}", "ln_bfp_dot.v.j2", xi, x.man_bits + y.man_bits,
            (xi.bias + xi.m - 1) + (yi.bias + yi.m - 1), a, lanes, False, d=yi)

    def bfp_encoder(self, b: BFPFormat, p: FPFormat, lanes: int, nw: int) -> str:
        bi, pi = b.view, p.view
        beats = b.block // lanes
        quant = self.bfp_quant(b, p)
        return self._add(
            f"bfp_enc_{bi.ftag}_{pi.tag}_l{lanes}", "bfp_encoder.v.j2",
            b=bi, pf=pi, lanes=lanes, beats=beats, bank_beats=2 * beats,
            iw=bits_for(max(1, beats - 1)), aw=bits_for(max(1, 2 * beats - 1)),
            nwidth=nw, quant=quant, lq=self.latency(quant),
        )

    def bfp_scan(self, b: BFPFormat, p: FPFormat, lanes: int) -> str:
        """The exponent scan of a beat of lane results for a block: a pairwise tree over the
        lanes, one section per level (pipelinable)."""
        bi, pi = b.view, p.view
        depth = lanes.bit_length() - 1
        levels = [{"i": d, "n": lanes >> d} for d in range(1, depth + 1)]
        return self._add(f"bfp_scan_{bi.ftag}_{pi.tag}_l{lanes}", "bfp_scan.v.j2",
                         b=bi, pf=pi, lanes=lanes, unpack=self.unpack(p), depth=depth,
                         levels=levels, sections=depth + 1)

    def bfp_quant(self, b: BFPFormat, p: FPFormat) -> str:
        """One lane result as a BFP element at the block exponent (combinational)."""
        bi, pi = b.view, p.view
        return self._add(f"bfp_quant_{bi.ftag}_{pi.tag}", "bfp_quant.v.j2", b=bi,
                         pf=pi, unpack=self.unpack(p), sections=3)

    def acc_adder(self, f: FPFormat, ways: int) -> tuple[str, int]:
        """The adder of a ``ways``-way accumulator loop (format f) and its latency in clock
        edges (:meth:`add`; one way: the plain adder, ports a, b, y); a pipelined one has
        clk and en besides."""
        add = self.add(f, ways)
        return add, self.latency(add)

    def ways_acc(self, f: FPFormat, ways: int) -> str:
        """The W-way accumulator of a channel sum (format f, docs/numerics.md section 6)."""
        add, lat = self.acc_adder(f, ways)
        if not 0 <= lat < ways:
            raise SpecError("hw.accum_ways", ways,
                            f"more than {lat}: the accumulator adder {add} takes {lat} clock "
                            "edges at this clock (a partial is read again W items after it is "
                            "issued)")
        lw = ways.bit_length() - 1
        return self._add(f"ln_acc_w{ways}_{f.view.ftag}" + (f"_lat{lat}" if lat else ""),
                         "ln_acc.v.j2", a=f.view, ways=ways, lw=lw, add=add, lat=lat)

    # -- MX
    def mx_unpack(self, x: MXFormat) -> str:
        """An MX element and its block's scale field -> unpacked value."""
        i = x.view
        return self._add(f"mx_unpack_{i.tag}", "mx_unpack.v.j2", s=i, lzc=self.lzc(i.gw),
                         lw=bits_for(i.gw))

    def mx_beat(self, x: MXFormat, a: FPFormat, lanes: int, sq: bool) -> str:
        """The exact integer sum (``sq``: sum of squares) of a beat of MX elements (integers K
        on the element's finest grid, 2^(E + lsb)), rounded into the accumulator format."""
        what = "sq" if sq else "sum"
        i = x.view
        return self._beat(f"mx_beat_{what}_{i.tag}_l{lanes}_{a.view.ftag}", "mx_beat.v.j2", i,
                          i.kw, i.sbias - i.lsb, a, lanes, sq)

    def mx_scan(self, x: MXFormat, p: FPFormat, lanes: int) -> str:
        """The scale scan of a beat of lane results for an MX block: BFP's tree (no carry
        rule), offset by the element's emax (pipelinable)."""
        i, pi = x.view, p.view
        depth = lanes.bit_length() - 1
        levels = [{"i": d, "n": lanes >> d} for d in range(1, depth + 1)]
        view = {**{fl.name: getattr(i, fl.name) for fl in dataclasses.fields(i)},
                "raise_": False}
        return self._add(f"mx_scan_{i.tag}_{pi.tag}_l{lanes}", "mx_scan.v.j2", b=view, pf=pi,
                         lanes=lanes, unpack=self.unpack(p), depth=depth, levels=levels,
                         sections=depth + 1)

    def mx_quant(self, x: MXFormat, p: FPFormat) -> str:
        """One lane result as an MX element at the block's scale (pipelinable: 3 sections)."""
        i, pi = x.view, p.view
        return self._add(f"mx_quant_{i.tag}_{pi.tag}", "mx_quant.v.j2", b=i, pf=pi,
                         unpack=self.unpack(p), sections=3)

    def mx_encoder(self, x: MXFormat, p: FPFormat, lanes: int, nw: int) -> str:
        """The streaming MX encoder: BFP's block buffer and exponent tracking (given the view
        with the E8M0 scale's exponent range and no carry rule) and the MX quantizer; the lanes
        feed it the MX scale scan (:meth:`mx_scan`), as they feed BFP's its exponent scan."""
        i, pi = x.view, p.view
        beats = x.block // lanes
        quant = self.mx_quant(x, p)
        scale = {**{fl.name: getattr(i, fl.name) for fl in dataclasses.fields(i)},
                 "emin": i.smin, "emax": i.smax, "bias": i.sbias, "raise_": False}
        return self._add(
            f"mx_enc_{i.tag}_{pi.tag}_l{lanes}", "mx_encoder.v.j2",
            b=scale, pf=pi, lanes=lanes, beats=beats, bank_beats=2 * beats,
            iw=bits_for(max(1, beats - 1)), aw=bits_for(max(1, 2 * beats - 1)),
            nwidth=nw, quant=quant, lq=self.latency(quant),
        )

    def tree_acc(self, f: FPFormat, lanes: int, ways: int) -> str:
        """Pairwise tree over the lanes of a beat, then the W-way accumulator (format f)."""
        i = f.view
        depth = lanes.bit_length() - 1
        levels = [{"i": d, "n": lanes >> d} for d in range(1, depth + 1)]
        add = self.add(f)
        return self._add(f"ln_tree_acc_l{lanes}_w{ways}_{i.ftag}", "ln_tree_acc.v.j2", a=i,
                         lanes=lanes, depth=depth, levels=levels, add=add,
                         lat=self.latency(add), ways=ways, acc=self.ways_acc(f, ways))

    def extrema_key_register(self, s: Any, unpack: str, lanes: int, lg: int) -> tuple[str, bool]:
        """Whether ln_extrema registers a beat's keys before its first compare, and the name
        of the timing unit that decides it: the path from the beat's register through every
        lane's unpack and key to the first compare of two keys (characterized from
        ``ln_extrema_key.v.j2``, a module of its own that the design does not instantiate),
        predicted with :data:`EXTREMA_KEY_CONTEXT_NS` more than other units. One lane has no
        compare there."""
        name = f"ln_extrema_key_{unpack}_l{lanes}"
        if lanes < 2:
            return name, False
        template = "ln_extrema_key.v.j2"
        ctx = {"eu": self.eu, "xw": self.xw, "s": s, "unpack": unpack, "lanes": lanes, "lg": lg}
        cuts = self.plan.cuts(name, template, 2,
                              lambda c: self._variant(name, template, ctx, 2, c),
                              context_ns=EXTREMA_KEY_CONTEXT_NS, instantiated=False)
        return name, bool(cuts)

    def skid(self, w: int) -> str:
        """A w-bit stream register whose ready is a flip-flop (two-entry skid buffer)."""
        return self._add(f"ln_skid_w{w}", "ln_skid.v.j2", w=w)

    def design(self, name: str, template: str, **ctx: Any) -> str:
        """A spec-level composite module (its name is fixed, its body follows the spec)."""
        return self._add(name, template, **ctx)

    def text(self) -> dict[str, str]:
        return {f"{name}.v": render_template(m.template, m.ctx)
                for name, m in sorted(self.mods.items())}


# ---- storage-format families in the design ------------------------------------------------


class StorageRTL:
    """What the template RTL builds for one storage-format family: the bound its values put
    on unpacked exponents, the decoder of a stream into the lanes, the channel sums of a
    stream, and the encoder of lane results. The design templates take the family's own
    wiring of these from its Jinja macros (``fmt.fragments.rtl``)."""

    @staticmethod
    def exp_top(f: Any) -> int:
        """The exponent range (2^exp_bits) that values of this format bring into arithmetic
        results (0: none)."""
        raise NotImplementedError

    @staticmethod
    def exp_bound(f: Any, lanes: int, top: int) -> int:
        """A bound on |exponent| of this format's unpacked values and intermediates, given
        ``top``, the largest :meth:`exp_top` of the design."""
        raise NotImplementedError

    @staticmethod
    def decoder(reg: Modules, f: Any) -> str:
        """The module that unpacks one stored element (and its beat's shared exponent)."""
        raise NotImplementedError

    @staticmethod
    def sums(reg: Modules, mods: dict[str, str], role: str, f: Any, a: FPFormat, lanes: int,
             sq: bool) -> dict[str, Any]:
        """Registers the modules of a channel sum (``sq``: and sum of squares) of the stream
        ``role`` in accumulator format ``a``, in ``mods`` by their role; returns the parts the
        family's ``beat_body`` macro instantiates."""
        raise NotImplementedError

    @staticmethod
    def encoder(reg: Modules, mods: dict[str, str], role: str, f: Any, p: FPFormat, lanes: int,
                nw: int) -> None:
        """Registers the modules that encode lane results (format ``p``) into the stream."""
        raise NotImplementedError

    @staticmethod
    def zero_field(f: Any) -> tuple[int, int]:
        """The bits (high, low) of a stored element that are all 0 exactly when it is zero
        (standard BN's constancy test: zeros are equal whatever their sign and exponent)."""
        raise NotImplementedError


class FPStorageRTL(StorageRTL):
    """FP storage: elements unpacked one by one; each lane rounded into A (its square a
    product into A) and summed by the pairwise tree; each lane result converted."""

    @staticmethod
    def exp_top(f: FPFormat) -> int:
        return 1 << f.exp_bits

    @staticmethod
    def exp_bound(f: FPFormat, lanes: int, top: int) -> int:
        return 3 * (1 << f.exp_bits) + 2 * f.man_bits + 8

    @staticmethod
    def decoder(reg: Modules, f: FPFormat) -> str:
        return reg.unpack(f)

    @staticmethod
    def sums(reg: Modules, mods: dict[str, str], role: str, f: FPFormat, a: FPFormat,
             lanes: int, sq: bool) -> dict[str, Any]:
        if sq:
            mods[f"{role}_sq"] = reg.mul(f, a)
        cvt, mul = reg.cvt(f, a), mods.get(f"{role}_sq", "")
        # the squares take the multiplier's latency, the values the conversion's: the two
        # trees start when their inputs are there
        return {"cvt_a": cvt, "sq_mul": mul, "cvt_lat": reg.latency(cvt),
                "sq_lat": reg.latency(mul) if mul else 0}

    @staticmethod
    def encoder(reg: Modules, mods: dict[str, str], role: str, f: FPFormat, p: FPFormat,
                lanes: int, nw: int) -> None:
        mods[f"{role}_cvt"] = reg.cvt(p, f)

    @staticmethod
    def zero_field(f: FPFormat) -> tuple[int, int]:
        return f.man_bits + f.exp_bits - 1, f.man_bits  # the exponent field (no subnormals)


class BFPStorageRTL(StorageRTL):
    """BFP storage: elements unpacked with their beat's exponent; a beat summed exactly as
    integers and rounded once; lane results encoded block by block (exponent scan, two-bank
    buffer, quantizer)."""

    @staticmethod
    def exp_top(f: BFPFormat) -> int:
        return 0

    @staticmethod
    def exp_bound(f: BFPFormat, lanes: int, top: int) -> int:
        lg = max(1, lanes).bit_length()
        return 2 * ((1 << (f.exp_bits - 1)) + f.man_bits) + 2 * f.man_bits + lg + 8 + top

    @staticmethod
    def decoder(reg: Modules, f: BFPFormat) -> str:
        return reg.bfp_unpack(f)

    @staticmethod
    def beat(reg: Modules, f: Any, a: FPFormat, lanes: int, sq: bool) -> str:
        """The family's exact beat sum (``sq``: of squares) into A."""
        return reg.bfp_beat(f, a, lanes, sq)

    @staticmethod
    def encoder_parts(reg: Modules, f: Any, p: FPFormat, lanes: int, nw: int
                      ) -> tuple[str, str, str]:
        """The family's block encoder, the lanes' scan of a beat for it, and its quantizer."""
        return reg.bfp_encoder(f, p, lanes, nw), reg.bfp_scan(f, p, lanes), reg.bfp_quant(f, p)

    @classmethod
    def sums(cls, reg: Modules, mods: dict[str, str], role: str, f: Any, a: FPFormat,
             lanes: int, sq: bool) -> dict[str, Any]:
        mods[f"{role}_beat_sum"] = cls.beat(reg, f, a, lanes, False)
        if sq:
            mods[f"{role}_beat_sq"] = cls.beat(reg, f, a, lanes, True)
        beat, beat_sq = mods[f"{role}_beat_sum"], mods.get(f"{role}_beat_sq", "")
        return {"beat_sum": beat, "beat_sq": beat_sq, "sum_lat": reg.latency(beat),
                "sq_lat": reg.latency(beat_sq) if beat_sq else 0}

    @classmethod
    def encoder(cls, reg: Modules, mods: dict[str, str], role: str, f: Any, p: FPFormat,
                lanes: int, nw: int) -> None:
        # (the scan sits in the lanes, the quantizer in the encoder: both listed by role)
        enc, scan, quant = cls.encoder_parts(reg, f, p, lanes, nw)
        mods[f"{role}_enc"], mods[f"{role}_enc_scan"], mods[f"{role}_enc_quant"] = \
            enc, scan, quant

    @staticmethod
    def zero_field(f: Any) -> tuple[int, int]:  # a BFPFormat
        return f.man_bits - 1, 0  # the magnitude


class MXStorageRTL(BFPStorageRTL):
    """MX storage: elements unpacked with their beat's E8M0 scale; a beat summed exactly as
    integers on the element's grid and rounded once; lane results encoded block by block (the
    BFP encoder's block buffer, the MX scale scan and quantizer): BFP's wiring with MX's
    modules."""

    # BFP's hooks, bound to this class: its beat sums and encoder parts are MX's modules
    exp_top = BFPStorageRTL.__dict__["exp_top"]
    sums = BFPStorageRTL.__dict__["sums"]
    encoder = BFPStorageRTL.__dict__["encoder"]

    @staticmethod
    def exp_bound(f: Any, lanes: int, top: int) -> int:  # an MXFormat
        v = f.view
        lg = max(1, lanes).bit_length()
        return 2 * (v.sbias + 1 - v.lsb + v.eemax + 1) + 2 * v.kw + lg + 8 + top

    @staticmethod
    def decoder(reg: Modules, f: Any) -> str:  # an MXFormat
        return reg.mx_unpack(f)

    @staticmethod
    def beat(reg: Modules, f: Any, a: FPFormat, lanes: int, sq: bool) -> str:
        return reg.mx_beat(f, a, lanes, sq)

    @staticmethod
    def encoder_parts(reg: Modules, f: Any, p: FPFormat, lanes: int, nw: int
                      ) -> tuple[str, str, str]:
        return reg.mx_encoder(f, p, lanes, nw), reg.mx_scan(f, p, lanes), reg.mx_quant(f, p)

    @staticmethod
    def zero_field(f: Any) -> tuple[int, int]:  # an MXFormat
        v = f.view  # INT8: the whole two's complement code; FP elements: all but the sign
        return (v.w - 1 if v.is_int else v.w - 2), 0


#: the template RTL's part of each storage-format family, by kind
STORAGE_RTL: dict[str, type[StorageRTL]] = {"fp": FPStorageRTL, "bfp": BFPStorageRTL,
                                            "mx": MXStorageRTL}


# ---- the whole design ----------------------------------------------------------------------


def spec_formats(spec: Spec) -> list[NumberFormat]:
    """Every format of a spec (P, A, S, then the storage formats): what bounds every unbiased
    exponent of the design (``exp_bound``; the XLS backend's DSLX uses the same bound, so its
    exponent ports match the template's)."""
    return [spec.compute, spec.accum, spec.scalar, *spec.storage.roles().values()]


def dot_formats(spec: Spec) -> tuple[BFPFormat, BFPFormat]:
    """The BFP formats of x and dy of a spec whose backward is BFP-native (``exact_dot``)."""
    x, dy = spec.storage.x, spec.storage.dy
    if not spec.exact_dot:  # only BFP has integer_dot (spec.formats)
        raise ValueError(f"spec {spec.name}: no BFP-native backward (x {x}, dy {dy})")
    return cast(BFPFormat, x), cast(BFPFormat, dy)


def finalize_program(spec: Spec) -> dict[str, list[dict[str, str]]]:
    """The per-channel micro-programs of the finalize unit (docs/numerics.md 8 and 9; the
    backward one in its BFP-native form when the spec's ``exact_dot``: ``p_mean`` and
    ``p_isig`` are the forward's mean and inv_sigma given back per channel).

    Each step is ``{op, dst, a, b}``: ``op`` in cvt (accumulator -> S), add, sub, mul, sqrt,
    recip, relu (max(a, 0)), zsel (+0 if a is zero, else b); operands name registers
    (``r_*``), host constants (``c_*``), per-channel inputs (``p_*``) or accumulator inputs
    (``acc_*``; standard BN's ``acc_nonconst`` is the statistics' constancy flag as a value of
    A: 1.0, or +0 when every stored x equals the first).
    """
    std = spec.bn.mode == "standard"

    def st(op: str, dst: str, a: str, b: str = "") -> dict[str, str]:
        return {"op": op, "dst": dst, "a": a, "b": b}

    fwd = [st("cvt", "r_sum", "acc_sum"), st("mul", "r_mu", "r_sum", "c_inv_n")]
    if std:  # acc_nonconst: 1.0, or +0 for a constant channel; then var = +0, inv_sigma = +0
        fwd += [
            st("cvt", "r_sumsq", "acc_sumsq"),
            st("cvt", "r_nc", "acc_nonconst"),
            st("mul", "r_ex2", "r_sumsq", "c_inv_n"),
            st("mul", "r_mu2", "r_mu", "r_mu"),
            st("sub", "r_var0", "r_ex2", "r_mu2"),
            st("relu", "r_var1", "r_var0"),
            st("zsel", "r_disp", "r_nc", "r_var1"),
            st("add", "r_vare", "r_disp", "c_eps"),
            st("sqrt", "r_den", "r_vare"),
        ]
    else:
        fwd += [
            st("cvt", "r_smax", "acc_smax"),
            st("cvt", "r_smin", "acc_smin"),
            st("sub", "r_rng", "r_smax", "r_smin"),
            st("mul", "r_disp", "r_rng", "c_c_k"),
            st("add", "r_den", "r_disp", "c_eps"),
        ]
    # a constant channel (standard: flagged; range: rng = 0): inv_sigma = +0 (docs/numerics.md
    # section 10)
    fwd += [st("recip", "r_isig0", "r_den"),
            st("zsel", "r_isig", "r_nc" if std else "r_rng", "r_isig0")]
    fwd += [
        st("mul", "r_scale", "p_gamma", "r_isig"),
        st("mul", "r_ms", "r_mu", "r_scale"),
        st("sub", "r_shift", "p_beta", "r_ms"),
        st("sub", "r_d1", "r_mu", "p_run_mean"),
        st("mul", "r_e1", "c_momentum", "r_d1"),
        st("add", "r_run_mean", "p_run_mean", "r_e1"),
    ]
    if std:
        fwd += [st("mul", "r_v", "r_disp", "c_unbias"), st("sub", "r_d2", "r_v", "p_run_disp")]
    else:
        fwd += [st("sub", "r_d2", "r_disp", "p_run_disp")]
    fwd += [st("mul", "r_e2", "c_momentum", "r_d2"),
            st("add", "r_run_disp", "p_run_disp", "r_e2")]
    if spec.exact_dot:  # the BFP-native backward: dgamma = inv_sigma (sum x dy - mu sum dy)
        bwd = [
            st("cvt", "r_dbeta", "acc_dbeta"),
            st("cvt", "r_sxdy", "acc_sxdy"),
            st("mul", "r_mdot", "p_mean", "r_dbeta"),
            st("sub", "r_cen", "r_sxdy", "r_mdot"),
            st("mul", "r_dgamma", "p_isig", "r_cen"),
        ]
    else:
        bwd = [st("cvt", "r_dbeta", "acc_dbeta"), st("cvt", "r_dgamma", "acc_dgamma")]
    bwd += [
        st("mul", "r_mdb", "r_dbeta", "c_inv_n"),
        st("mul", "r_mdg", "r_dgamma", "c_inv_n") if std else
        st("mul", "r_cor", "r_dgamma", "c_c_k"),
    ]
    return {"forward": fwd, "backward": bwd}


FINALIZE_OUTPUTS = ("r_mu", "r_disp", "r_isig", "r_scale", "r_shift", "r_run_mean", "r_run_disp",
                    "r_dgamma", "r_dbeta", "r_mdb", "r_mdg", "r_cor")


def _finalize_ctx(spec: Spec) -> dict[str, Any]:
    """Operand muxes and write-back lists of the finalize sequencer, per unit."""
    prog = finalize_program(spec)
    steps: list[dict[str, Any]] = []
    for pass_, ops in (("forward", prog["forward"]), ("backward", prog["backward"])):
        for op in ops:
            steps.append({**op, "pass": pass_})
    nf = len(prog["forward"])
    for i, s in enumerate(steps):
        s["pc"] = i
    regs = sorted({s["dst"] for s in steps})
    units = {u: [s for s in steps if s["op"] in ops] for u, ops in (
        ("add", ("add", "sub")), ("mul", ("mul",)), ("cvt", ("cvt",)), ("sqrt", ("sqrt",)),
        ("recip", ("recip",)), ("relu", ("relu",)), ("zsel", ("zsel",)))}
    n = len(steps)
    operands = {s[k] for s in steps for k in ("a", "b") if s[k]}
    in_s = sorted(o for o in operands if o.startswith(("c_", "p_")))
    in_a = sorted(o for o in operands if o.startswith("acc_"))
    outputs = [r for r in FINALIZE_OUTPUTS if r in regs]
    return {"steps": steps, "regs": regs, "units": units, "n_steps": n, "in_s": in_s,
            "in_a": in_a, "outputs": outputs,
            "fwd_first": 0, "fwd_last": nf - 1, "bwd_first": nf, "bwd_last": n - 1,
            "pcw": bits_for(n), "sman": spec.scalar.man_bits}


def rtl_context(spec: Spec, plan: TimingPlan | None = None, *, clock_ns: float | None = None,
                liberty: str | Path | None = None) -> dict[str, Any]:
    """Everything the design templates print, computed from the spec. ``plan`` places the
    registers of the pipelinable modules; by default the characterized library chooses them
    for ``clock_ns`` (default the spec's ``hw.clock_ns``) on ``liberty`` (default OSU 0.18 um):
    :func:`timing_plan`."""
    if plan is None:
        plan = timing_plan(spec, clock_ns, liberty)
    lanes = spec.hw.lanes
    roles = spec.storage.roles()
    eu = bits_for(exp_bound(spec_formats(spec), lanes)) + 1
    reg = Modules(eu, plan)
    P, A, S = spec.compute, spec.accum, spec.scalar
    st = {r: f.view for r, f in roles.items()}
    nmax = spec.hw.max_channel_elems
    lg = lanes.bit_length() - 1
    # element index / n counter; wide enough for n + lanes - 1 (the beat count rounds up) and
    # for the lane index of the last beat, also when a channel is shorter than one beat
    nw = max(bits_for(nmax + lanes - 1), lg + 1)
    bmax = -(-nmax // lanes)
    bw = bits_for(bmax)  # beat counter
    k = spec.bn.chunks
    rng = spec.bn.mode == "range"
    # the BFP-native backward (docs/numerics.md section 9): pass 1 sums x * dy per beat
    # exactly, so the backward lanes only run the dx pass (no x_hat into A, no A products)
    dot = spec.exact_dot
    mods: dict[str, str] = {}

    # storage decode and conversions into the lanes (P) and the accumulators (A)
    for r in ("x", "dy"):
        f = roles[r]
        mods[f"{r}_unpack"] = STORAGE_RTL[f.kind].decoder(reg, f)
        mods[f"{r}_to_p"] = reg.pack(P, st[r].gw)
        if r == "x" or not dot:
            mods[f"{r}_to_a"] = reg.pack(A, st[r].gw)
    if not dot:
        mods["add_a"] = reg.add(A)
    mods["add_p"] = reg.add(P)
    mods["add_s"] = reg.add(S)
    mods["mul_p"] = reg.mul(P, P)
    if not dot:
        mods["mul_a"] = reg.mul(A, A)
    mods["mul_s"] = reg.mul(S, S)
    if not dot:
        mods["p_to_a"] = reg.cvt(P, A)
    mods["a_to_s"] = reg.cvt(A, S)
    mods["s_to_p"] = reg.cvt(S, P)
    mods["recip_s"] = reg.recip(S)
    if not rng:
        mods["sqrt_s"] = reg.sqrt(S)
    # outputs
    for r in ("y", "dx"):
        f = roles[r]
        STORAGE_RTL[f.kind].encoder(reg, mods, r, f, P, lanes, nw)

    fi = {"p": P.view, "a": A.view, "s": S.view}
    iw = bw + lg  # element index {beat, lane}
    ways = spec.hw.accum_ways
    mods["acc"] = reg.ways_acc(A, ways)
    if not dot:  # the reduction of dy * x_hat in the backward lanes
        mods["tree"] = reg.tree_acc(A, lanes, ways)
    # statistics: channel sums of x (and its squares for standard BN) and of dy
    for r, sq in (("x", not rng), ("dy", False)):
        f = roles[r]
        parts = STORAGE_RTL[f.kind].sums(reg, mods, r, f, A, lanes, sq)
        mods[f"sum_{r}"] = reg.design(
            f"ln_sum_{r}", "ln_beat_sum.v.j2", role=r, s=st[r], a=fi["a"], lanes=lanes, sq=sq,
            acc=mods["acc"], tree=mods.get("tree", ""), parts=parts,
        )
    if dot:
        mods["xdy_dot"] = reg.bfp_dot(*dot_formats(spec), A, lanes)
        mods["sum_xdy"] = reg.design(
            "ln_sum_xdy", "ln_dot_sum.v.j2", s=st["x"], d=st["dy"], a=fi["a"], lanes=lanes,
            dot=mods["xdy_dot"], lat=reg.latency(mods["xdy_dot"]), acc=mods["acc"])
    if not rng:  # standard BN's constancy flag (docs/numerics.md sections 8, 10)
        mods["const"] = reg.design(
            "ln_const", "ln_const.v.j2", s=st["x"], lanes=lanes,
            zero=STORAGE_RTL[roles["x"].kind].zero_field(roles["x"]))
    if rng:
        key_unit, key_reg = reg.extrema_key_register(st["x"], mods["x_unpack"], lanes, lg)
        mods["extrema"] = reg.design(
            "ln_extrema", "ln_extrema.v.j2", s=st["x"], a=fi["a"], lanes=lanes, lg=lg, bw=bw,
            key_reg=key_reg, key_unit=key_unit,
            iw=iw, chunks=k, kcw=bits_for(k), kw_idx=bits_for(max(1, k - 1)),
            tree=[{"i": d, "n": lanes >> d} for d in range(1, lg + 1)],
            unpack=mods["x_unpack"], to_a=mods["x_to_a"], acc=mods["acc"],
        )
    # the lanes' input streams, each behind a skid buffer (its ready a flip-flop: a stalled
    # lane pipeline's enable is not in front of the controller): (signal, width) packed in order
    x_exp = [("x_exp", st["x"].xw)] if st["x"].xbits else []
    dy_exp = [("dy_exp", st["dy"].xw)] if st["dy"].xbits else []
    streams = {
        "fwd": [("x_data", lanes * st["x"].w), *x_exp, ("bmask", lanes), ("is_last", 1)],
        # (the BFP-native range BN's backward lanes do not read x: no x_hat)
        "bwd": [*([("x_data", lanes * st["x"].w), *x_exp] if not (dot and rng) else []),
                ("dy_data", lanes * st["dy"].w), *dy_exp, ("bmask", lanes),
                *([("fmax", lanes), ("fmin", lanes)] if rng else []), ("is_last", 1)],
    }
    skids = {}
    for side, fields in streams.items():
        lo, packed = 0, []
        for name, w in fields:
            packed.append({"name": name, "w": w, "lo": lo})
            lo += w
        skids[side] = {"module": reg.skid(lo), "w": lo, "fields": packed}
    # each role's latency (clock edges through its module's registers) and, for an instance
    # of a registered module, its clock and enable connections
    lat = {role: reg.latency(m) if m in reg.mods else 0 for role, m in mods.items()}
    ce = {role: ".clk(clk), .en(en), " if n else "" for role, n in lat.items()}
    # the finalize sequencer waits for its pipelined units
    fin_lat = {"add": lat["add_s"], "sub": lat["add_s"], "mul": lat["mul_s"],
               "cvt": lat["a_to_s"]}
    # the backward lanes' stages 2..6: each as long as its slowest unit (docs/rtl.md); the
    # lane products leave stage 4 for the dgamma tree on their own (mul_A's latency)
    bl = {"s2": lat["add_p"], "s3": 0 if dot and rng else lat["mul_p"],  # (no x_hat)
          "s4": max(lat.get("p_to_a", 0), lat["mul_p"] if not rng else 0), "s5": lat["add_p"],
          "s6": lat["mul_p"]}
    # chunk tracker: (b+1)*K against (k+1)*B, both < (bmax+1)*K
    tw = bits_for((bmax + 1) * k)
    depth = lg
    ctx = {
        "spec_name": spec.name,
        "spec_hash": spec.hash,
        "desc": spec.description,
        "top": TOP,
        "eu": eu,
        "xw": eu + 1,
        "lanes": lanes,
        "lg": lg,
        "depth": depth,
        "chunks": k,
        "kw": bits_for(max(1, k - 1)),
        "range": rng,
        "std": not rng,
        "dot": dot,
        # the normalize pass's form (docs/numerics.md section 8): centered lanes subtract mu
        "centered": spec.bn.normalize == "centered",
        "nmax": nmax,
        "nw": nw,
        "bw": bw,
        "tw": tw,
        "iw": iw,
        "st": st,
        "fp": fi,
        "mods": mods,
        "skids": skids,
        "lat": lat,
        "ce": ce,
        "bl": bl,
        "fin": {**_finalize_ctx(spec), "lat": fin_lat,
                "cw": bits_for(max(fin_lat.values()) + 1)},
        "sw": fi["s"].w,
        "one_s": (S.bias << S.man_bits),  # pattern of 1.0 in S
        "one_a": (A.bias << A.man_bits),  # pattern of 1.0 in A
    }
    return {"ctx": ctx, "modules": reg}


@lru_cache(maxsize=32)
def _timing_plan(spec: Spec, clock_ns: float, liberty: str | None) -> timing.LibraryPlan:
    return timing.plan_for(lambda p: rtl_context(spec, p), clock_ns, liberty)


def timing_plan(spec: Spec, clock_ns: float | None = None, liberty: str | Path | None = None
                ) -> timing.LibraryPlan:
    """The register placement of ``spec``'s design for ``clock_ns`` (default ``hw.clock_ns``)
    from the characterized operator library (:mod:`lightnorm.codegen.timing`: what is not
    characterized yet is, once, in parallel). The plan's choices fill in when a design is
    built with it (:func:`rtl_context`)."""
    clk = float(clock_ns if clock_ns is not None else spec.hw.clock_ns)
    return _timing_plan(spec, clk, None if liberty is None else str(liberty))


def design_files() -> dict[str, str]:
    """Design templates rendered once per spec: template -> output file."""
    return {
        "ln_finalize.v.j2": "ln_finalize.v",
        "ln_fwd_lanes.v.j2": "ln_fwd_lanes.v",
        "ln_bwd_lanes.v.j2": "ln_bwd_lanes.v",
        "lightnorm_top.v.j2": f"{TOP}.v",
    }


@dataclass(frozen=True)
class Override:
    """A backend's version of one module of the template design: ``template`` starts with
    ``<% extends base %>`` (``base`` is the module's own template) and overrides some of its
    blocks; ``ctx`` is added to the module's context."""

    template: str
    ctx: Mapping[str, Any] = field(default_factory=dict)


def render_design(c: dict[str, Any], overrides: Mapping[str, Override] | None = None
                  ) -> dict[str, str]:
    """The Verilog files (``<module>.v`` -> text) of a design context (:func:`rtl_context`),
    each module rendered from its template or, when ``overrides`` names it, its override."""
    todo = dict(overrides or {})
    jobs = [(name[:-2], tpl, c["ctx"]) for tpl, name in design_files().items()]
    jobs += [(name, m.template, m.ctx) for name, m in c["modules"].mods.items()]
    out: dict[str, str] = {}
    for module, tpl, ctx in jobs:
        o = todo.pop(module, None)
        out[f"{module}.v"] = (render_template(tpl, ctx) if o is None
                              else render_template(o.template, {**ctx, **o.ctx, "base": tpl}))
    if todo:
        raise ValueError(f"overrides of modules the design does not have: {sorted(todo)}")
    return dict(sorted(out.items()))


def with_file_list(files: dict[str, str]) -> dict[str, str]:
    """``files`` plus ``lightnorm.f``, the sorted list of their names (tools read it)."""
    out = {**files, "lightnorm.f": "".join(f"{f}\n" for f in sorted(files))}
    return dict(sorted(out.items()))


def render_rtl(spec: Spec, plan: TimingPlan | None = None, *, clock_ns: float | None = None,
               liberty: str | Path | None = None) -> dict[str, str]:
    """Every Verilog file of a spec's design (relative name -> text), plus a file list; its
    registers placed for ``clock_ns`` (default the spec's) unless ``plan`` says otherwise."""
    return with_file_list(render_design(rtl_context(spec, plan, clock_ns=clock_ns,
                                                    liberty=liberty)))


def verilog_sources(files: dict[str, str]) -> list[str]:
    """The Verilog file names of a rendered design (no file lists)."""
    return [f for f in sorted(files) if f.endswith(".v")]


_INSTANCE = re.compile(r"^\s*(\w+)\s+(?:#\s*\(.*?\)\s*)?(\w+)\s*\(")


def instance_on(line: str, modules: Container[str]) -> tuple[str, str] | None:
    """(module, instance name) of an instantiation of one of ``modules`` that starts on
    ``line`` of a generated design's text (``fp_add_e8m23 u_add (...``), else None."""
    m = _INSTANCE.match(line)
    return (m.group(1), m.group(2)) if m and m.group(1) in modules else None


# ---- verification harnesses (not part of the design) ---------------------------------------


def render_tb(spec: Spec, depth_beats: int, depth_channels: int) -> dict[str, str]:
    """The co-simulation harness ``lightnorm_tb`` around ``lightnorm_top`` (memories, LFSRs)."""
    c = rtl_context(spec, Combinational())["ctx"]  # widths only: no register placement needed
    roles = spec.storage.roles()
    lanes = spec.hw.lanes
    words = {r: lanes * c["st"][r].w + c["st"][r].xw for r in roles}
    ctx = {**c, "tb_top": TB_TOP, "dbeats": depth_beats, "dch": depth_channels,
           "daw": bits_for(depth_beats - 1), "dcw": bits_for(depth_channels - 1),
           "words": words}
    return {f"{TB_TOP}.v": render_template("lightnorm_tb.v.j2", ctx)}


@dataclass(frozen=True)
class Unit:
    """One arithmetic unit in the unit-test harness: ``kind``, its formats and, for a
    pipelinable unit, the cut points that carry registers."""

    kind: str  # add, mul, cvt, recip, sqrt
    fin: FPFormat
    fout: FPFormat
    cuts: frozenset[int] = frozenset()

    @property
    def iterative(self) -> bool:
        return self.kind in ("recip", "sqrt")


@dataclass(frozen=True)
class FixedPlan:
    """A timing plan that names the cut points of each unit (by its name without suffix);
    the units it does not name are combinational."""

    cuts_of: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def cuts(self, unit: str, template: str, sections: int,
             variant: Callable[[frozenset[int]], Variant],
             max_latency: int | None = None, context_ns: float = 0.0,
             instantiated: bool = True) -> frozenset[int]:
        del template, sections, variant, context_ns, instantiated
        cuts = frozenset(self.cuts_of.get(unit, frozenset()))
        if max_latency is not None and len(cuts) > max_latency:
            raise ValueError(f"{unit}: {len(cuts)} cuts, more than the {max_latency} its loop "
                             "allows")
        return cuts


def _unit_args(u: Unit) -> tuple[FPFormat, ...]:
    """The arguments of the Modules method of a unit kind."""
    if u.kind in ("add", "recip", "sqrt"):
        return (u.fout,)
    if u.kind in ("mul", "cvt"):
        return (u.fin, u.fout)
    raise ValueError(f"unknown unit kind {u.kind!r}")


def render_unit_harness(units: list[Unit]) -> dict[str, str]:
    """A harness with every unit behind a selector (``sel`` = index in ``units``)."""
    fmts = sorted({u.fin for u in units} | {u.fout for u in units},
                  key=lambda f: (f.exp_bits, f.man_bits, f.rounding))
    eu = bits_for(exp_bound(fmts, 1)) + 1
    rows = []
    out: dict[str, str] = {}
    for i, u in enumerate(units):
        # one registry per unit: the same unit may be under test with several placements
        base = getattr(Modules(eu), u.kind)(*_unit_args(u))
        reg = Modules(eu, FixedPlan({base: u.cuts}))
        name = getattr(reg, u.kind)(*_unit_args(u))
        for file, text in reg.text().items():
            if out.setdefault(file, text) != text:
                raise AssertionError(f"two texts of {file}")
        rows.append({"i": i, "kind": u.kind, "name": name, "wi": u.fin.width,
                     "wo": u.fout.width, "iterative": u.iterative,
                     "binary": u.kind in ("add", "mul"), "latency": reg.latency(name)})
    out[f"{UNIT_TOP}.v"] = render_template("unit_harness.v.j2", {
        "units": rows, "top": UNIT_TOP, "sw": bits_for(max(1, len(units) - 1))})
    return dict(sorted(out.items()))


__all__ = [
    "Modules", "Override", "TB_TOP", "TOP", "UNIT_PORTS", "UNIT_TOP", "Unit", "UnitPorts",
    "dot_formats", "environment", "finalize_program", "render_design", "render_rtl", "render_tb",
    "render_unit_harness", "rtl_context", "spec_formats", "verilog_sources", "with_file_list",
]
