"""The FP family: FP(e, m), also the format of the arithmetic roles (compute, accum, scalar).

1 sign bit, ``e`` exponent bits (bias 2^(e-1)-1), ``m`` fraction bits. IEEE-style layout,
but the all-ones exponent is reserved and never produced (overflow saturates), the zero
exponent encodes only +0 (subnormals are read as zero and flushed from results), and zero is
always +0 (:data:`RULES`). See docs/numerics.md for the full contract.
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

FP_EXP_BITS = Int(2, 11)
FP_MAN_BITS = Int(1, 23)

RULES = Rules(reserved_top_exponent=True, subnormals="flush", overflow="saturate",
              infinity=False, nan=False, negative_zero=False)


@dataclass(frozen=True)
class FPView(FormatView):
    """An FP format's constants: ``e``, ``m``, ``p`` = m + 1 (significand bits with the hidden
    one), ``emaxf`` the largest exponent field, ``maxpat`` / ``minpat`` the patterns (without
    the sign) of the largest finite value and of the smallest normal, ``reserved`` the
    all-ones exponent field (what IEEE arithmetic uses for inf/NaN), ``ones_p`` = 2^p - 1,
    ``pow_p`` = 2^p, ``sqrt_par`` the parity of the square root's radicand shift, ``signbit``
    the sign bit's weight."""

    e: int
    m: int
    p: int
    emaxf: int
    maxpat: int
    minpat: int
    reserved: int
    ones_p: int
    pow_p: int
    sqrt_par: int
    signbit: int


@dataclass(frozen=True)
class FPFormat(NumberFormat):
    """A floating-point format FP(exp_bits, man_bits), with the rounding of its role."""

    exp_bits: int = param(FP_EXP_BITS, "exponent field width")
    man_bits: int = param(FP_MAN_BITS, "fraction field width (the hidden bit is not counted)")
    rounding: str = param(Choice(*ROUNDING_MODES), "rounding of results into this format",
                          "nearest")

    kind: ClassVar[str] = "fp"
    rules: ClassVar[Rules] = RULES
    fragments: ClassVar[Fragments] = Fragments(
        rtl="formats/fp.v.j2", hls="hls/formats/fp.h.j2", hls_lib="ln_fp.h", kernel="fp")
    exact_beat_sum: ClassVar[bool] = False
    integer_dot: ClassVar[bool] = False
    doc_title: ClassVar[str] = ("[storage.x], [storage.y], [storage.dy], [storage.dx] with "
                                "kind = \"fp\"")
    doc_what: ClassVar[str] = "an FP storage format"

    # Derived constants (bias, emin, emax, min_normal: NumberFormat's, of exp_bits) -------
    @property
    def precision(self) -> int:
        """Significand bits including the hidden one."""
        return self.man_bits + 1

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def max_value(self) -> float:
        return float((2.0 - 2.0 ** -self.man_bits) * 2.0 ** self.emax)

    @property
    def lsb_exp(self) -> int:
        """Exponent of the finest grid step of any value (an ulp of the smallest normal)."""
        return self.emin - self.man_bits

    # Storage methods ---------------------------------------------------------------------
    @property
    def element_width(self) -> int:
        return self.width

    @property
    def shared_exp_width(self) -> int:
        return 0

    @property
    def block(self) -> int:
        return 1

    @property
    def tag(self) -> str:
        """Short name used in identifiers: ``e5m10``."""
        return f"e{self.exp_bits}m{self.man_bits}"

    @cached_property
    def view(self) -> FPView:
        e, m, r = self.exp_bits, self.man_bits, self.rounding
        bias, emin, emax = self.bias, self.emin, self.emax
        w, p = self.width, self.precision
        emaxf = emax + bias
        ftag = f"{self.tag}_{RND_TAG[r]}"
        return FPView(
            fmt=self, kind=self.kind, desc=str(self),
            about=f"{self}: 1 sign, {e} exponent, {m} fraction bits, {r}",
            tag=self.tag, ftag=ftag, name=f"fp_{ftag}", decl=f"ln::fp<{e}, {m}, {HLS_RND[r]}>",
            checks=(("W", w), ("BIAS", bias), ("EMIN", emin), ("EMAX", emax),
                    ("traits::MAX_FIELD", emaxf)),
            w=w, xbits=0, xw=1, gw=p, block=1, bias=bias, emin=emin, emax=emax,
            nearest=r == "nearest", max_value=self.max_value, fragments=self.fragments,
            e=e, m=m, p=p, emaxf=emaxf, maxpat=(emaxf << m) | ((1 << m) - 1), minpat=1 << m,
            reserved=(1 << e) - 1, ones_p=(1 << p) - 1, pow_p=1 << p, sqrt_par=(m + p + 1) % 2,
            signbit=1 << (w - 1),
        )

    def __str__(self) -> str:
        r = "" if self.rounding == "nearest" else ", trunc"
        return f"FP({self.exp_bits},{self.man_bits}{r})"

    def validate(self, path: str) -> None:
        del path
