"""The BFP family: BFP(g, m, e_s), classic block floating point.

Blocks of ``g`` consecutive elements in stream order share one ``e_s``-bit exponent field
(bias 2^(e_s-1)-1, the all-ones field reserved as in FP); each element has a sign and an
``m``-bit magnitude M, value (-1)^s * M * 2^(E - m + 1). E is the largest floor(log2|x|) of the
block clamped to the exponent range, so values below 2^emin stay on the block's grid; rounding
past 2^m - 1 saturates the element or (``carry = "raise"``) raises E by one and re-rounds the
block; zero is always +0 (:data:`RULES`). A beat of elements shares its block's exponent, so
its sum is an exact integer sum of mantissas. See docs/numerics.md section 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from ..schema import Choice, Int, param
from .base import (
    HLS_RND,
    RND_TAG,
    ROUNDING_MODES,
    FormatView,
    Fragments,
    NumberFormat,
    Rules,
)

CARRY_RULES = ("saturate", "raise")
#: the carry rule's part of generated names and its HLS library constant
CARRY_TAG = {"saturate": "sat", "raise": "raise"}
HLS_CARRY = {"saturate": "ln::SATURATE", "raise": "ln::RAISE"}

RULES = Rules(reserved_top_exponent=True, subnormals="keep", overflow="saturate",
              infinity=False, nan=False, negative_zero=False)


@dataclass(frozen=True)
class BFPView(FormatView):
    """A BFP format's constants besides the storage interface: ``m`` magnitude bits,
    ``maxm`` = 2^m - 1 the largest magnitude, ``raise_`` the carry rule raises the block's
    exponent. ``xbits`` = ``xw`` is the shared exponent field width, ``gw`` = m."""

    m: int
    maxm: int
    raise_: bool


@dataclass(frozen=True)
class BFPFormat(NumberFormat):
    """Block floating point BFP(block, man_bits, exp_bits): ``block`` elements share an exponent."""

    block: int = param(Int(1, 256, power_of_two=True), "elements sharing one exponent")
    man_bits: int = param(Int(1, 23), "magnitude bits per element (a sign bit comes on top)")
    exp_bits: int = param(Int(2, 11), "shared exponent field width")
    rounding: str = param(Choice(*ROUNDING_MODES), "rounding of element mantissas", "nearest")
    carry: str = param(
        Choice(*CARRY_RULES),
        "when rounding carries past 2^man_bits - 1: saturate the element, or raise the block "
        "exponent by one and re-round the block",
        "saturate",
    )

    kind: ClassVar[str] = "bfp"
    rules: ClassVar[Rules] = RULES
    fragments: ClassVar[Fragments] = Fragments(
        rtl="formats/bfp.v.j2", hls="hls/formats/bfp.h.j2", hls_lib="ln_bfp.h", kernel="bfp")
    exact_beat_sum: ClassVar[bool] = True
    #: a beat's elements share one exponent: products of two BFP beats share one grid
    integer_dot: ClassVar[bool] = True
    doc_title: ClassVar[str] = "[storage.*] with kind = \"bfp\""
    doc_what: ClassVar[str] = "a block-floating-point storage format"

    # bias, emin, emax of the shared exponent field, min_normal = 2^emin: NumberFormat's
    @property
    def max_mantissa(self) -> int:
        return (1 << self.man_bits) - 1

    @property
    def max_value(self) -> float:
        return float(self.max_mantissa * 2.0 ** (self.emax - self.man_bits + 1))

    @property
    def precision(self) -> int:
        """Significant bits of an element at its block's largest magnitude."""
        return self.man_bits

    @property
    def lsb_exp(self) -> int:
        """Exponent of the finest grid step of any value (M = 1 at the smallest exponent)."""
        return self.emin - self.man_bits + 1

    # Storage methods ---------------------------------------------------------------------
    @property
    def element_width(self) -> int:
        return 1 + self.man_bits

    @property
    def shared_exp_width(self) -> int:
        return self.exp_bits

    @property
    def tag(self) -> str:
        return f"g{self.block}m{self.man_bits}e{self.exp_bits}"

    @cached_property
    def view(self) -> BFPView:
        g, m, es, r, c = self.block, self.man_bits, self.exp_bits, self.rounding, self.carry
        ftag = f"{self.tag}_{RND_TAG[r]}_{CARRY_TAG[c]}"
        w, maxm = self.element_width, self.max_mantissa
        return BFPView(
            fmt=self, kind=self.kind, desc=str(self),
            about=(f"{self}: blocks of {g} share a {es}-bit exponent, sign + {m}-bit magnitude, "
                   f"{r}, carry {c}"),
            tag=self.tag, ftag=ftag, name=f"bfp_{ftag}",
            decl=f"ln::bfp<{g}, {m}, {es}, {HLS_RND[r]}, {HLS_CARRY[c]}>",
            checks=(("W", w), ("BIAS", self.bias), ("EMIN", self.emin), ("EMAX", self.emax),
                    ("traits::MAXM", maxm)),
            w=w, xbits=es, xw=es, gw=m, block=g, bias=self.bias, emin=self.emin,
            emax=self.emax, nearest=r == "nearest", max_value=self.max_value,
            fragments=self.fragments, m=m, maxm=maxm, raise_=c == "raise",
        )

    def __str__(self) -> str:
        r = "" if self.rounding == "nearest" else ", trunc"
        c = "" if self.carry == "saturate" else ", raise"
        return f"BFP({self.block},{self.man_bits},{self.exp_bits}{r}{c})"

    def validate(self, path: str) -> None:
        del path
