"""The MX family: OCP Microscaling (MX v1.0) block formats, MXFP8/6/4 and MXINT8.

A block of ``block`` consecutive elements (32 in the specification) shares one E8M0 scale
X = 2^E: an 8-bit unsigned exponent field E + 127, E in -127..127; the field 0xFF is the
specification's NaN and is never produced. Each element is a small float (FP8 E4M3 or E5M2,
FP6 E3M2 or E2M3, FP4 E2M1, each with subnormals) or an 8-bit two's complement integer with
an implicit scale of 2^-6; a value is X times its element. Encoding follows the
specification's conversion: E = floor(log2 max|x|) - emax(element) clamped to -127..127 (an
all-zero block: E = -127), each element the scaled value x / X rounded to nearest, ties to
even, on the element's grid, saturated at the element's largest normal; zero is +0
(:data:`RULES`). A beat lies in one block, and its elements sit on one grid (the element's
smallest step times X), so a beat sums exactly as integers. See docs/numerics.md section 11.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from ..schema import Choice, Int, param
from .base import FormatView, Fragments, NumberFormat, Rules

#: the E8M0 shared scale: bias, smallest and largest exponent (0xFF, NaN, is never produced)
SCALE_BITS = 8
SCALE_BIAS = 127
SCALE_EMIN = -127
SCALE_EMAX = 127

RULES = Rules(reserved_top_exponent=True, subnormals="keep", overflow="saturate",
              infinity=False, nan=False, negative_zero=False)


@dataclass(frozen=True)
class Element:
    """An MX element type. FP elements: 1 sign, ``ebits`` exponent (bias 2^(ebits-1) - 1, field
    0 subnormal), ``mbits`` fraction bits. INT8: two's complement code c, value c * 2^-6.
    Every value is an integer K times 2^``lsb``; ``kmax`` is K of the largest normal."""

    name: str
    ebits: int  # 0: the integer element
    mbits: int  # fraction bits (INT8: the 6 bits below the binary point)
    emax: int  # exponent of the largest normal (the specification's emax_elem)
    maxk: int  # the largest magnitude as K (value K * 2^lsb)
    nan: str  # the element's special encodings, in words (docs)

    @property
    def is_int(self) -> bool:
        return self.ebits == 0

    @property
    def width(self) -> int:
        return 8 if self.is_int else 1 + self.ebits + self.mbits

    @property
    def bias(self) -> int:
        return 0 if self.is_int else (1 << (self.ebits - 1)) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal (INT8: of the smallest step, 2^-6)."""
        return -self.mbits if self.is_int else 1 - self.bias

    @property
    def lsb(self) -> int:
        """Exponent of the finest step (the smallest subnormal)."""
        return -self.mbits if self.is_int else self.emin - self.mbits

    @property
    def max_value(self) -> float:
        return float(self.maxk * 2.0 ** self.lsb)

    @property
    def precision(self) -> int:
        """Significant bits of a value (INT8: of the largest magnitude produced, 127)."""
        return 7 if self.is_int else self.mbits + 1

    @property
    def sig_width(self) -> int:
        """Bits of a decoded element's magnitude (INT8: 8, for the readable code -128)."""
        return 8 if self.is_int else self.mbits + 1

    @property
    def maxpat(self) -> int:
        """The magnitude pattern of the largest normal (INT8: the code 127)."""
        if self.is_int:
            return self.maxk
        e = self.maxk.bit_length() - 1  # K's leading one: the value's binade over lsb
        return ((e - self.mbits + 1) << self.mbits) | (self.maxk >> (e - self.mbits)) & (
            (1 << self.mbits) - 1)


def _fp(name: str, e: int, m: int, emax: int, top_frac: int, nan: str) -> Element:
    """An FP element whose largest normal has exponent ``emax`` and fraction ``top_frac``."""
    emin = 1 - ((1 << (e - 1)) - 1)
    return Element(name, e, m, emax, ((1 << m) | top_frac) << (emax - emin), nan)


#: the element types of the specification, by the name a spec uses
ELEMENTS: dict[str, Element] = {el.name: el for el in (
    _fp("fp8_e4m3", 4, 3, 8, 0b110, "S.1111.111 is NaN (no infinity)"),
    _fp("fp8_e5m2", 5, 2, 15, 0b11, "exponent field 11111 is infinity or NaN (IEEE-like)"),
    _fp("fp6_e3m2", 3, 2, 4, 0b11, "none (no infinity, no NaN)"),
    _fp("fp6_e2m3", 2, 3, 2, 0b111, "none (no infinity, no NaN)"),
    _fp("fp4_e2m1", 2, 1, 2, 0b1, "none (no infinity, no NaN)"),
    Element("int8", 0, 6, 0, 127, "none; the code -128 (-2) is readable, never produced"),
)}


@dataclass(frozen=True)
class MXView(FormatView):
    """An MX format's constants besides the storage interface: the element's ``ebits``,
    ``mbits``, ``ebias``, ``eemin``, ``eemax`` (its emax_elem), ``lsb`` (exponent of its finest
    step), ``maxk`` (largest normal as K * 2^lsb), ``maxpat`` (its magnitude pattern),
    ``is_int``; ``kw`` the bits of K, ``sbias`` / ``smin`` / ``smax`` the E8M0 scale's bias and
    exponent range. ``xbits`` = ``xw`` = 8, ``gw`` the significand width of a decoded element;
    ``bias``/``emin``/``emax`` are of the values (scale and element together)."""

    element: str
    ebits: int
    mbits: int
    ebias: int
    eemin: int
    eemax: int
    lsb: int
    maxk: int
    maxpat: int
    is_int: bool
    kw: int
    sbias: int
    smin: int
    smax: int


@dataclass(frozen=True)
class MXFormat(NumberFormat):
    """An OCP MX format MX(element, block): ``block`` elements share an E8M0 scale."""

    element: str = param(Choice(*ELEMENTS), "the element type of the OCP MX specification")
    block: int = param(Int(1, 256, power_of_two=True),
                       "elements sharing one scale (the specification's k)", 32)

    kind: ClassVar[str] = "mx"
    rules: ClassVar[Rules] = RULES
    fragments: ClassVar[Fragments] = Fragments(
        rtl="formats/mx.v.j2", hls="hls/formats/mx.h.j2", hls_lib="ln_mx.h", kernel="mx")
    exact_beat_sum: ClassVar[bool] = True
    #: FP elements carry their own exponents: a beat's products do not share a narrow grid
    integer_dot: ClassVar[bool] = False
    doc_title: ClassVar[str] = "[storage.*] with kind = \"mx\""
    doc_what: ClassVar[str] = "an OCP Microscaling (MX) storage format"

    @property
    def el(self) -> Element:
        return ELEMENTS[self.element]

    # The values' exponent range: the scale's range shifted by the element's -----------------
    @property
    def bias(self) -> int:
        return SCALE_BIAS

    @property
    def emin(self) -> int:
        """Exponent of the smallest value whose block scale is not clamped at 2^-127 (its
        element normal)."""
        return SCALE_EMIN + self.el.emin

    @property
    def emax(self) -> int:
        """Exponent of the largest value (the largest normal element at scale 2^127)."""
        return SCALE_EMAX + self.el.emax

    @property
    def max_value(self) -> float:
        return float(self.el.max_value * 2.0 ** SCALE_EMAX)

    @property
    def precision(self) -> int:
        return self.el.precision

    @property
    def lsb_exp(self) -> int:
        """Exponent of the finest step of any value (the smallest element at 2^-127)."""
        return SCALE_EMIN + self.el.lsb

    # Storage methods ---------------------------------------------------------------------
    @property
    def element_width(self) -> int:
        return self.el.width

    @property
    def shared_exp_width(self) -> int:
        return SCALE_BITS

    @property
    def tag(self) -> str:
        return f"{self.element.replace('_', '')}g{self.block}"

    @cached_property
    def view(self) -> MXView:
        el, g = self.el, self.block
        kw = el.maxk.bit_length() + (1 if el.is_int else 0)  # INT8 reads -128 too
        return MXView(
            fmt=self, kind=self.kind, desc=str(self),
            about=(f"{self}: blocks of {g} share an E8M0 scale, {el.name} elements "
                   f"({el.width} bits), nearest-even, saturating"),
            tag=self.tag, ftag=self.tag, name=f"mx_{self.tag}",
            decl=f"ln::mx<{g}, {el.ebits}, {el.mbits}, {el.emax}, {el.maxk}>",
            checks=(("W", el.width), ("LSB", el.lsb), ("EEMIN", el.emin),
                    ("MAXK", el.maxk)),
            w=el.width, xbits=SCALE_BITS, xw=SCALE_BITS, gw=el.sig_width, block=g,
            bias=self.bias, emin=self.emin, emax=self.emax, nearest=True,
            max_value=self.max_value, fragments=self.fragments,
            element=el.name, ebits=el.ebits, mbits=el.mbits, ebias=el.bias, eemin=el.emin,
            eemax=el.emax, lsb=el.lsb, maxk=el.maxk, maxpat=el.maxpat, is_int=el.is_int,
            kw=kw, sbias=SCALE_BIAS, smin=SCALE_EMIN, smax=SCALE_EMAX,
        )

    def __str__(self) -> str:
        return f"MX({self.element},{self.block})"

    def validate(self, path: str) -> None:
        del path
