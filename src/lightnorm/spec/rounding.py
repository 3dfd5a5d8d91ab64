"""Exact scalar rounding into an FP format, on Python rationals.

This is the slow, obviously-correct reference of docs/numerics.md section 2: the host uses it
for per-run constants (1/n, C(n/K)/K, eps, momentum), spec validation uses it, and the tests use
it as the oracle for the fast kernels. It never goes through float64 arithmetic, so it has no
double-rounding caveats.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .formats import FPFormat


def _floor_log2(a: Fraction) -> int:
    """floor(log2(a)) for a > 0, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    # a in [2^(e-1), 2^(e+1)): fix up by one comparison
    if a < Fraction(2) ** e:
        e -= 1
    return e


def _round_int(k: Fraction, mode: str) -> int:
    """Round a non-negative rational to an integer: ties to even, or toward zero."""
    fl = k.numerator // k.denominator
    if mode == "truncate":
        return fl
    rem = k - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        return fl + 1
    return fl


def round_exact(value: Fraction | float | int, fmt: FPFormat, mode: str | None = None) -> Fraction:
    """Round an exact value into ``fmt`` (saturating, flushing, zero is +0)."""
    mode = mode or fmt.rounding
    v = Fraction(value)
    if v == 0:
        return Fraction(0)
    sign = -1 if v < 0 else 1
    a = abs(v)
    e = max(_floor_log2(a), fmt.emin)  # below emin: the subnormal grid, then flush
    q = Fraction(2) ** (e - fmt.man_bits)
    r = _round_int(a / q, mode) * q
    if r < fmt.min_normal:
        return Fraction(0)
    if r > Fraction(fmt.max_value):
        r = Fraction(fmt.max_value)
    return sign * r


def round_scalar(value: float, fmt: FPFormat, mode: str | None = None) -> float:
    """:func:`round_exact` for a finite float, returned as a float."""
    if not math.isfinite(value):
        raise ValueError(f"cannot round non-finite value {value!r} into {fmt}")
    return float(round_exact(value, fmt, mode))


def sqrt_exact(a: Fraction, fmt: FPFormat, mode: str | None = None) -> Fraction:
    """Correctly rounded square root of a non-negative rational into ``fmt``."""
    if a < 0:
        raise ValueError("sqrt of a negative value")
    if a == 0:
        return Fraction(0)
    # Scale to an integer with enough bits that floor(sqrt) plus a sticky bit decides rounding.
    guard = 2 * (fmt.man_bits + 4)
    e = _floor_log2(a)
    shift = guard - e
    shift += shift % 2  # even, so sqrt(2^shift) = 2^(shift/2)
    scaled = a * Fraction(2) ** shift
    n = scaled.numerator // scaled.denominator
    exact_int = scaled.denominator == 1
    root = math.isqrt(n)
    inexact = (root * root != n) or not exact_int
    # root <= sqrt(scaled) < root + 1; add half an ulp of root's last bit as a sticky.
    val = Fraction(root) + (Fraction(1, 4) if inexact else 0)
    return round_exact(val / Fraction(2) ** (shift // 2), fmt, mode)


def encode_fp(value: Fraction | float, fmt: FPFormat) -> int:
    """Bit pattern of a value already on ``fmt``'s grid (zero is the all-zero pattern)."""
    v = Fraction(value)
    if v == 0:
        return 0
    sign = 1 if v < 0 else 0
    a = abs(v)
    e = _floor_log2(a)
    if not fmt.emin <= e <= fmt.emax:
        raise ValueError(f"{float(v)!r} is outside the normal range of {fmt}")
    frac = a / Fraction(2) ** e - 1
    f = frac * (1 << fmt.man_bits)
    if f.denominator != 1:
        raise ValueError(f"{float(v)!r} is not representable in {fmt}")
    return (sign << (fmt.exp_bits + fmt.man_bits)) | ((e + fmt.bias) << fmt.man_bits) | int(f)


def decode_fp(bits: int, fmt: FPFormat) -> Fraction:
    """Value of a bit pattern: a zero exponent field reads as zero; the reserved all-ones field
    (never produced) reads as its binade, above max, as every decoder reads it
    (docs/numerics.md section 1)."""
    m = bits & ((1 << fmt.man_bits) - 1)
    ef = (bits >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    s = (bits >> (fmt.exp_bits + fmt.man_bits)) & 1
    if ef == 0:
        return Fraction(0)
    v = (1 + Fraction(m, 1 << fmt.man_bits)) * Fraction(2) ** (ef - fmt.bias)
    return -v if s else v
