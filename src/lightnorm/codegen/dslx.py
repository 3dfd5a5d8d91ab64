"""Render DSLX (Google XLS's HLS language) for the arithmetic units of a spec (``OUT/xls/``).

Every unit implements one primitive of docs/numerics.md bit-exactly: ``add``, ``mul`` (also
from one FP format into another), ``cvt``, ``recip`` and ``sqrt``, each in both rounding modes
of the spec (``nearest``, ``truncate``). They share one rounding function per destination
format (``fp_round_<tag>_<rm>``: subnormal grid below the normal range, flush after rounding,
saturation, +0), so the contract sits in one place, as in the template RTL.

Where the standard library's ``apfloat`` agrees with the contract - ``add`` and ``mul`` of one
format into the same format with round-to-nearest-even - it is used by default (with a two-line
fix-up: IEEE infinity -> largest finite, -0 -> +0); ``apfloat=False`` selects the own code for
those too. Truncation, mixed-format products, conversions, reciprocal and square root have no
``apfloat`` counterpart that matches the contract (``apfloat`` rounds only to nearest even, and
has no correctly rounded reciprocal or square root), so they are always own code.

As for the RTL (:mod:`lightnorm.codegen.rtl`), every number the templates print is computed
here; the templates (``lightnorm/templates/dslx/*.x.j2``) substitute. Their Jinja2
delimiters are the RTL's (``<% %>``, ``<@ @>``, ``<# #>``), which cannot occur in DSLX.
Function names follow the RTL module names (``fp_add_e5m10_rne``, ``fp_mul_e5m4_to_e8m23_rtz``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from lightnorm.codegen.env import HW_DELIMITERS, check_signed, check_unsigned, make_environment
from lightnorm.codegen.rtl import Unit, bits_for, exp_bound, spec_formats
from lightnorm.spec import ROUNDING_MODES, BFPFormat, FPFormat, Spec, SpecError
from lightnorm.spec.formats import RND_TAG, MXFormat, NumberFormat

UNIT_KINDS = ("add", "mul", "cvt", "recip", "sqrt")
BINARY_KINDS = ("add", "mul")
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")


# ---- the template environment --------------------------------------------------------------


def template_dir() -> Path:
    return Path(str(resources.files("lightnorm").joinpath("templates", "dslx")))


def ulit(value: int, width: int) -> str:
    """Unsigned DSLX literal: ``uN[8]:255``."""
    check_unsigned("ulit", value, width)
    return f"uN[{width}]:{value}"


def hlit(value: int, width: int) -> str:
    """Unsigned DSLX literal in hex (bit patterns): ``uN[15]:0x7dff``."""
    check_unsigned("hlit", value, width)
    return f"uN[{width}]:0x{value:x}"


def slit(value: int, width: int) -> str:
    """Signed DSLX literal: ``sN[12]:-5``."""
    check_signed("slit", value, width)
    return f"sN[{width}]:{value}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return make_environment(template_dir(), {"u": ulit, "s": slit, "h": hlit}, **HW_DELIMITERS)


def render_template(name: str, ctx: dict[str, Any]) -> str:
    return environment().get_template(name).render(**ctx)


def check_ident(name: str) -> str:
    """A DSLX function or module name: lower-case identifier (spec names are checked too)."""
    if not _IDENT.fullmatch(name):
        raise ValueError(f"{name!r} is not a lower-case DSLX identifier")
    return name


# ---- formats --------------------------------------------------------------------------------


def check_rounding(f: FPFormat, what: str) -> None:
    """The XLS backend implements exactly the spec's rounding modes; anything else is an error."""
    if f.rounding not in ROUNDING_MODES:
        raise SpecError(f"{what}.rounding", f.rounding,
                        f"one of {', '.join(ROUNDING_MODES)} (the XLS backend's modes)")


def exponent_width(fmts: Sequence[NumberFormat], lanes: int = 1) -> int:
    """Signed width of every unbiased exponent in the generated code (the RTL's bound) for a
    design whose formats are ``fmts``."""
    return bits_for(exp_bound(fmts, lanes)) + 1


def spec_exponent_width(spec: Spec) -> int:
    """The exponent width of a spec's design: the template RTL's (``rtl_context``'s ``eu``)."""
    return exponent_width(spec_formats(spec), spec.hw.lanes)


# ---- the function registry ------------------------------------------------------------------


@dataclass
class _Fn:
    template: str
    ctx: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """A verification wrapper with one array parameter (``xls.c_api.jit_fn_predict``):
    ``n_in`` input words of ``word`` bits, ``n_out`` output words of ``wo`` bits."""

    name: str
    fn: str
    word: int
    n_in: int
    wo: int
    n_out: int = 1
    args: tuple[int, ...] = ()  # width of each scalar argument (the word is cast to it)
    tuple_out: bool = False  # the function returns a tuple of n_out values (else, with
    #                          n_out > 1, a block encoder's (exponent field, elements))
    beat: bool = False  # a BFP beat: words (ef, element 0..L-1, mask), args = (es, ew, L)
    array_in: bool = False  # one array parameter of n_in words, one output word
    signed: tuple[bool, ...] = ()  # per scalar argument: cast to sN (two's complement word)


@dataclass
class DslxModule:
    """A rendered DSLX module: its text, the function of each requested unit, and (when rendered
    for verification) the batch wrappers by the function they wrap."""

    name: str
    text: str
    functions: dict[Unit, str]
    batch: dict[str, Batch] = field(default_factory=dict)
    uses_apfloat: bool = False

    def batch_of(self, unit: Unit) -> Batch:
        b = self.batch.get(self.functions[unit])
        if b is None:
            raise ValueError(f"{unit}: the module was rendered without batch wrappers")
        return b


class Functions:
    """The parameterized DSLX functions a module needs, in definition order (callees first)."""

    def __init__(self, xw: int, apfloat: bool = True) -> None:
        self.xw = xw  # signed width of unbiased exponents
        self.apfloat = apfloat
        self.fns: dict[str, _Fn] = {}
        self.batches: dict[str, Batch] = {}
        self.uses_apfloat = False
        self.uses_std = False

    def _add(self, name: str, template: str, **ctx: Any) -> str:
        if name not in self.fns:
            self.fns[name] = _Fn(template, {"name": check_ident(name), "xw": self.xw, **ctx})
        return name

    # -- FP primitives
    def unpack(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_unpack_{i.tag}", "fp_unpack.x.j2", f=i)

    def round(self, f: FPFormat) -> str:
        check_rounding(f, "format")
        i = f.view
        return self._add(f"fp_round_{i.ftag}", "fp_round.x.j2", f=i)

    def neg(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_neg_{i.tag}", "fp_neg.x.j2", f=i)

    def _apfloat_ok(self, fi: FPFormat, fo: FPFormat, kind: str) -> bool:
        """apfloat agrees with the contract for one format into itself, nearest-even - except
        ``apfloat::mul`` with a 1-bit fraction, whose sticky bit lands on the round bit
        (measured: FP(3,1) 0.375 * 0.375 gives 0.25 instead of a flushed 0)."""
        return (self.apfloat and fi.exp_bits == fo.exp_bits and fi.man_bits == fo.man_bits
                and fo.rounding == "nearest" and (kind == "add" or fo.man_bits >= 2))

    def add(self, f: FPFormat) -> str:
        i = f.view
        name = f"fp_add_{i.ftag}"
        if self._apfloat_ok(f, f, "add"):
            self.uses_apfloat = True
            return self._add(name, "fp_apfloat.x.j2", f=i, op="add", sym="+")
        return self._add(name, "fp_add.x.j2", f=i, unpack=self.unpack(f), round=self.round(f))

    def mul(self, fi: FPFormat, fo: FPFormat) -> str:
        a, b = fi.view, fo.view
        name = (f"fp_mul_{b.ftag}" if a.tag == b.tag
                else f"fp_mul_{a.tag}_to_{b.ftag}")
        if self._apfloat_ok(fi, fo, "mul"):
            self.uses_apfloat = True
            return self._add(name, "fp_apfloat.x.j2", f=b, op="mul", sym="*")
        self.uses_std = True
        return self._add(name, "fp_mul.x.j2", fi=a, fo=b, unpack=self.unpack(fi),
                         round=self.round(fo), sw=max(2 * a.p, b.p + 1))

    def cvt(self, fi: FPFormat, fo: FPFormat) -> str:
        a, b = fi.view, fo.view
        return self._add(f"fp_cvt_{a.tag}_to_{b.ftag}", "fp_cvt.x.j2", fi=a, fo=b,
                         unpack=self.unpack(fi), round=self.round(fo),
                         sw=max(a.p, b.p + 1))

    def recip(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_recip_{i.ftag}", "fp_recip.x.j2", f=i, unpack=self.unpack(f),
                         round=self.round(f))

    def sqrt(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"fp_sqrt_{i.ftag}", "fp_sqrt.x.j2", f=i, unpack=self.unpack(f),
                         round=self.round(f))

    def unit(self, u: Unit) -> str:
        """The function of one arithmetic unit (``rtl.Unit``: kind, input and output format)."""
        check_rounding(u.fout, f"{u.kind} output")
        if u.kind == "add":
            if u.fin != u.fout:
                raise ValueError(f"add: input {u.fin} and output {u.fout} must be one format")
            return self.add(u.fout)
        if u.kind == "mul":
            return self.mul(u.fin, u.fout)
        if u.kind == "cvt":
            return self.cvt(u.fin, u.fout)
        if u.kind in ("recip", "sqrt"):
            if (u.fin.exp_bits, u.fin.man_bits) != (u.fout.exp_bits, u.fout.man_bits):
                raise ValueError(f"{u.kind}: input {u.fin} and output {u.fout} must be one "
                                 "format")
            return self.recip(u.fout) if u.kind == "recip" else self.sqrt(u.fout)
        raise ValueError(f"unknown unit kind {u.kind!r} (expected one of {UNIT_KINDS})")

    # -- BFP storage
    def bfp_cvt(self, b: BFPFormat, f: FPFormat) -> str:
        """A BFP element and its block's exponent field -> cvt into FP format f."""
        bi, fi = b.view, f.view
        return self._add(f"bfp_cvt_m{b.man_bits}e{b.exp_bits}_to_{fi.ftag}", "bfp_cvt.x.j2",
                         b=bi, f=fi, round=self.round(f), sw=max(b.man_bits, fi.p + 1))

    def bfp_beat(self, b: BFPFormat, f: FPFormat, lanes: int, sq: bool) -> str:
        """A beat of ``lanes`` BFP elements (one exponent field, a lane mask) -> the exact sum
        of their values (``sq``: of their squares) rounded into FP format f."""
        bi, fi = b.view, f.view
        lg = lanes.bit_length() - 1
        w = (2 * b.man_bits if sq else b.man_bits) + lg  # magnitude width of the exact sum
        what = "sq" if sq else "sum"
        return self._add(f"ln_bfp_beat_{what}_m{b.man_bits}e{b.exp_bits}_l{lanes}_{fi.ftag}",
                         "ln_bfp_beat.x.j2", b=bi, a=fi, L=lanes, sq=sq, w=w, iw=w + 1,
                         rw=max(w, fi.p + 1), round=self.round(f), dot=False)

    def bfp_dot(self, x: BFPFormat, y: BFPFormat, f: FPFormat, lanes: int) -> str:
        """A beat of ``lanes`` lanes of two BFP streams (x, dy: their exponent fields, their
        elements, a lane mask) -> the exact sum of the products rounded into FP format f (the
        beat dot product of the BFP-native backward, docs/numerics.md section 6)."""
        xi, yi, fi = x.view, y.view, f.view
        w = x.man_bits + y.man_bits + lanes.bit_length() - 1
        return self._add(f"ln_bfp_dot_m{x.man_bits}e{x.exp_bits}_m{y.man_bits}e{y.exp_bits}_"
                         f"l{lanes}_{fi.ftag}", "ln_bfp_beat.x.j2", b=xi, d=yi, a=fi, L=lanes,
                         sq=False, w=w, iw=w + 1, rw=max(w, fi.p + 1), round=self.round(f),
                         dot=True)

    def _bfp_elem(self, b: BFPFormat, f: FPFormat) -> tuple[str, str]:
        """One value of FP format f as a BFP element at a given block exponent (+ carry):
        the function and the name part the block functions built on it share."""
        check_rounding(f, "format")
        if b.rounding not in ROUNDING_MODES:
            raise SpecError("bfp.rounding", b.rounding, f"one of {', '.join(ROUNDING_MODES)}")
        bi, fi = b.view, f.view
        fb = fi.p + 1  # fraction bits of the element's fixed-point image
        core = f"m{b.man_bits}e{b.exp_bits}_{RND_TAG[b.rounding]}_{fi.tag}"
        return self._add(f"bfp_round_{core}", "bfp_encode.x.j2", part="elem", b=bi, f=fi,
                         unpack=self.unpack(f), fb=fb, xwid=fi.p + fb + b.man_bits + 1,
                         qw=fi.p + b.man_bits + 2, g=b.block), core

    def bfp_encode(self, b: BFPFormat, f: FPFormat) -> str:
        """A block of ``b.block`` values of FP format f -> (exponent field, elements)."""
        elem, core = self._bfp_elem(b, f)
        bi, fi = b.view, f.view
        lanes = self._add(f"bfp_round_g{b.block}{core}", "bfp_encode.x.j2", part="lanes",
                          b=bi, f=fi, elem=elem, g=b.block)
        return self._add(f"bfp_enc_{bi.ftag}_{fi.tag}", "bfp_encode.x.j2", part="block",
                         b=bi, f=fi, unpack=self.unpack(f), lanes_fn=lanes, g=b.block)

    def bfp_quant(self, b: BFPFormat, f: FPFormat) -> str:
        """The streaming encoder's read side: one value of FP format f as a BFP element at
        the block's exponent (the template's ``bfp_quant_*``)."""
        elem, _ = self._bfp_elem(b, f)
        bi, fi = b.view, f.view
        return self._add(f"bfp_quant_{bi.ftag}_{fi.tag}", "bfp_encode.x.j2",
                         part="quant", b=bi, f=fi, elem=elem)

    def bfp_scan(self, b: BFPFormat, f: FPFormat, lanes: int) -> str:
        """The streaming encoder's write side: a beat of ``lanes`` values of FP format f ->
        {any nonzero, carry at the largest exponent, the largest exponent} (the template's
        ``bfp_scan_*``)."""
        check_rounding(f, "format")
        bi, fi = b.view, f.view
        return self._add(f"bfp_scan_{bi.ftag}_{fi.tag}_l{lanes}", "bfp_encode.x.j2",
                         part="scan", b=bi, f=fi, g=lanes, unpack=self.unpack(f),
                         wc=b.carry == "raise" and b.rounding == "nearest"
                         and b.man_bits < fi.p)

    # -- MX storage
    def mx_cvt(self, x: MXFormat, f: FPFormat) -> str:
        """An MX element and its block's scale field -> cvt into FP format f."""
        xi, fi = x.view, f.view
        return self._add(f"mx_cvt_{xi.element}_to_{fi.ftag}", "mx_cvt.x.j2", s=xi, f=fi,
                         round=self.round(f), sw=max(xi.gw, fi.p + 1))

    # -- lanes (format P)
    def norm_lane(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"ln_norm_lane_{i.ftag}", "ln_norm_lane.x.j2", f=i,
                         add=self.add(f), mul=self.mul(f, f))

    def xhat_lane(self, f: FPFormat) -> str:
        i = f.view
        return self._add(f"ln_xhat_lane_{i.ftag}", "ln_xhat_lane.x.j2", f=i,
                         add=self.add(f), mul=self.mul(f, f), neg=self.neg(f))

    def dx_lane(self, f: FPFormat, standard: bool) -> str:
        i = f.view
        mode = "std" if standard else "range"
        return self._add(f"ln_dx_lane_{mode}_{i.ftag}", "ln_dx_lane.x.j2", f=i,
                         std=standard, add=self.add(f), mul=self.mul(f, f), neg=self.neg(f))

    # -- the per-channel finalize (scalar format S; accumulator inputs in A)
    def finalize(self, steps: list[dict[str, str]], pass_: str, s: FPFormat, a: FPFormat,
                 standard: bool, outputs: tuple[str, ...]) -> str:
        """One pass of the finalize program (``rtl.finalize_program``) as a straight-line
        function of its inputs (:func:`finalize_io`) returning the ``outputs`` it writes."""
        si, ai = s.view, a.view
        params, outs = finalize_io(steps, outputs)
        ops = {st["op"] for st in steps}
        fns = {"add": self.add(s) if ops & {"add", "sub"} else "",
               "neg": self.neg(s) if "sub" in ops else "",
               "mul": self.mul(s, s) if "mul" in ops else "",
               "cvt": self.cvt(a, s) if "cvt" in ops else "",
               "recip": self.recip(s) if "recip" in ops else "",
               "sqrt": self.sqrt(s) if "sqrt" in ops else ""}
        mode = "std" if standard else "range"
        tag = {"forward": "fwd", "backward": "bwd"}[pass_]
        return self._add(f"ln_fin_{tag}_{mode}_{si.ftag}_{ai.tag}", "ln_finalize.x.j2",
                         s=si, a=ai, pass_=pass_, steps=steps, fns=fns, outs=outs,
                         params=[(n, a.width if n.startswith("acc_") else s.width)
                                 for n in params])

    # -- verification wrappers
    def batch_tuple(self, fn: str, args: list[int], wo: int, n_out: int) -> Batch:
        """Wrap ``fn(a0: uN[args[0]], ...) -> (uN[wo], ...)`` (``n_out`` values)."""
        b = Batch(f"batch_{fn}", fn, max(args), len(args), wo, n_out, tuple(args), True)
        self.batches.setdefault(fn, b)
        return b

    def batch_beat(self, fn: str, b: BFPFormat, lanes: int, wo: int) -> Batch:
        """Wrap a BFP beat function: words ef, the ``lanes`` elements, the lane mask."""
        ew = b.man_bits + 1
        bt = Batch(f"batch_{fn}", fn, max(b.exp_bits, ew, lanes), lanes + 2, wo, 1,
                   (b.exp_bits, ew, lanes), beat=True)
        self.batches.setdefault(fn, bt)
        return bt

    def batch_array(self, fn: str, word: int, n_in: int, wo: int) -> Batch:
        """Wrap ``fn(x: uN[word][n_in]) -> uN[wo]``."""
        bt = Batch(f"batch_{fn}", fn, word, n_in, wo, 1, array_in=True)
        self.batches.setdefault(fn, bt)
        return bt

    def batch(self, fn: str, args: list[int], wo: int,
              signed: tuple[bool, ...] = ()) -> Batch:
        """Wrap ``fn(a0: uN[args[0]], ...) -> uN[wo]`` (``signed[i]``: argument i is sN)."""
        b = Batch(f"batch_{fn}", fn, max(args), len(args), wo, 1, tuple(args),
                  signed=signed or (False,) * len(args))
        self.batches.setdefault(fn, b)
        return b

    def batch_bfp_encode(self, fn: str, b: BFPFormat, f: FPFormat) -> Batch:
        """Wrap a block encoder: ``block`` words in, exponent field then elements out."""
        bt = Batch(f"batch_{fn}", fn, f.width, b.block, max(b.exp_bits, b.man_bits + 1),
                   b.block + 1)
        self.batches.setdefault(fn, bt)
        return bt

    def text(self, module: str, source: str) -> str:
        head = render_template("header.x.j2", {"module": module, "source": source,
                                               "apfloat": self.uses_apfloat,
                                               "std": self.uses_std})
        body = "".join(render_template(f.template, f.ctx) for f in self.fns.values())
        if self.batches:
            body += "\n// ---- verification wrappers (JIT batches), not part of the design\n"
            for fn, bt in self.batches.items():
                body += render_template("batch.x.j2", {
                    "name": bt.name, "fn": fn, "word": bt.word, "n_in": bt.n_in, "wo": bt.wo,
                    "n_out": bt.n_out, "block_out": bt.n_out > 1 and not bt.tuple_out,
                    "tuple_out": bt.tuple_out, "beat": bt.beat, "array_in": bt.array_in,
                    "signed": bt.signed, "args": bt.args})
        return head + body


def finalize_io(steps: list[dict[str, str]], outputs: tuple[str, ...]
                ) -> tuple[list[str], list[str]]:
    """Inputs (operands no step writes: ``acc_*`` first, then ``c_*``/``p_*``, each sorted)
    and results (the ``outputs`` some step writes, in that order) of a finalize pass."""
    written = {st["dst"] for st in steps}
    used = {st[k] for st in steps for k in ("a", "b") if st[k] and st[k] not in written}
    params = sorted(n for n in used if n.startswith("acc_")) + sorted(
        n for n in used if not n.startswith("acc_"))
    return params, [r for r in outputs if r in written]


def _unit_args(u: Unit) -> list[int]:
    return [u.fin.width] * (2 if u.kind in BINARY_KINDS else 1)


def render_units(units: list[Unit], *, module: str = "ln_units", apfloat: bool = True,
                 batch: bool = False, source: str = "a unit list") -> DslxModule:
    """One DSLX module with a function per unit (and, with ``batch``, JIT batch wrappers)."""
    check_ident(module)
    fmts = sorted({u.fin for u in units} | {u.fout for u in units},
                  key=lambda f: (f.exp_bits, f.man_bits, f.rounding))
    reg = Functions(exponent_width(fmts), apfloat=apfloat)
    fns = {u: reg.unit(u) for u in units}
    if batch:
        for u in units:
            reg.batch(fns[u], _unit_args(u), u.fout.width)
    text = reg.text(module, source)
    return DslxModule(module, text, fns, dict(reg.batches), reg.uses_apfloat)


__all__ = [
    "BINARY_KINDS", "Batch", "DslxModule", "Functions", "UNIT_KINDS", "Unit", "check_ident",
    "environment", "exponent_width", "finalize_io", "hlit", "render_units", "slit",
    "spec_exponent_width", "ulit",
]
