"""The BFP family's golden kernel: a channel of BFP storage, block by block.

docs/numerics.md section 4: the shared exponent E is the largest floor(log2|x|) of the block
clamped to [emin, emax]; M = round(|x| / 2^(E - m + 1)) saturates at 2^m - 1, or (carry
"raise") E goes up by one and the whole block is re-rounded; zero is +0, the padding of a
short last block is the pattern 0.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ...spec.formats import BFPFormat
from ..fpnum import ABS, f2i, i2f
from .base import U, pad

# Index of each field in the parameter tuple.
B_BLOCK, B_RAISE, B_EMIN, B_EMAX, B_NEAREST, B_MAN, B_BIAS = range(7)


def params(fmt: BFPFormat) -> tuple[int, ...]:
    return pad((fmt.block, 1 if fmt.carry == "raise" else 0, fmt.emin, fmt.emax,
                1 if fmt.rounding == "nearest" else 0, fmt.man_bits, fmt.bias))


def grid_bits(fmt: BFPFormat) -> int:
    """Bits of the largest |M|: a block's values are M times one power of two."""
    return fmt.man_bits


@nb.njit(cache=True, inline="always")
def _floor_log2(a_bits):  # type: ignore[no-untyped-def]
    """floor(log2 |v|) from the magnitude bits of a nonzero float64 (as a select, so that
    loops over it vectorize)."""
    ex = a_bits >> 52
    # a float64 subnormal: its bits are the integer a_bits * 2^-1074, and converting that
    # integer (< 2^52) to float64 is exact, so its exponent is floor(log2 a_bits)
    sub = (f2i(np.float64(a_bits)) >> 52) - 1023 - 1074
    return ex - 1023 if ex != 0 else sub


TWO52 = 4503599627370496.0  # 2^52: (t + 2^52) - 2^52 rounds 0 <= t < 2^52 to nearest-even


@nb.njit(cache=True, inline="always")
def _pow2(e):  # type: ignore[no-untyped-def]
    """2.0 ** e for any integer e that float64 can hold (incl. its subnormal range)."""
    if -1022 <= e <= 1023:
        return i2f((e + 1023) << 52)
    return math.ldexp(1.0, e)


@nb.njit(cache=True, inline="always")
def _abs_max_bits(src, start, stop):  # type: ignore[no-untyped-def]
    """The largest |src[i]| of start..stop (unsigned indices) as float64 magnitude bits (an
    integer maximum: the magnitude bits of non-negative floats order as the floats do)."""
    amax = np.int64(0)
    for i in range(start, stop):
        amax = max(amax, f2i(src[i]) & ABS)
    return amax


@nb.njit(cache=True, inline="always")
def _mantissa(a, s1, s2, nearest, maxm):  # type: ignore[no-untyped-def]
    """round(|a| * s1 * s2) (nearest-even or truncated); maxm + 1 when far above (a block
    whose E was clamped at emax)."""
    t = abs(a) * s1 * s2
    r = (t + TWO52) - TWO52 if nearest else t
    return maxm + 1 if t >= 1e18 else np.int64(r)


@nb.njit(cache=True, inline="always")
def _scales(e_sh, m):  # type: ignore[no-untyped-def]
    """2^(m - 1 - e_sh) as two exact factors (2^k alone may overflow float64)."""
    k = m - 1 - e_sh
    k1 = k // 2 if k > 1000 else k
    return _pow2(k1), _pow2(k - k1)


@nb.njit(cache=True)
def encode_channel(src, n, st, vals, bits, exps):  # type: ignore[no-untyped-def]
    # Loop indices are unsigned: numba wraps negative indices around, and an index it cannot
    # prove non-negative turns a vectorized loop into gathers and scatters.
    g = st[B_BLOCK]
    m = st[B_MAN]
    nearest = st[B_NEAREST]
    maxm = (np.int64(1) << m) - 1
    sbit = np.int64(1) << m
    for k in range((n + g - 1) // g):
        s0 = U(k * g)
        s1 = U(min(n, k * g + g))
        amax = _abs_max_bits(src, s0, s1)
        e_sh = min(max(_floor_log2(amax) if amax != 0 else st[B_EMIN], st[B_EMIN]),
                   st[B_EMAX])
        if st[B_RAISE] and e_sh < st[B_EMAX]:
            # a magnitude that rounds past 2^m - 1 raises E; the block is rounded again
            f1, f2 = _scales(e_sh, m)
            top = np.int64(0)
            for i in range(s0, s1):
                top = max(top, _mantissa(src[i], f1, f2, nearest, maxm))
            if top > maxm:
                e_sh += 1
        f1, f2 = _scales(e_sh, m)
        scale = _pow2(e_sh - m + 1)
        for i in range(s0, s1):
            mm = min(_mantissa(src[i], f1, f2, nearest, maxm), maxm)
            v = mm * scale
            neg = (src[i] < 0.0) & (mm != 0)
            vals[i] = -v if neg else v
            bits[i] = sbit | mm if neg else mm
        for i in range(s1, U(k * g + g)):  # the padding of a short last block
            bits[i] = 0
        exps[k] = e_sh + st[B_BIAS]


@nb.njit(cache=True)
def decode_channel(bits, exps, n, st, vals):  # type: ignore[no-untyped-def]
    m = st[B_MAN]
    g = st[B_BLOCK]
    mask = (np.int64(1) << m) - 1
    for k in range((n + g - 1) // g):
        scale = _pow2(exps[k] - st[B_BIAS] - m + 1)
        for i in range(U(k * g), U(min(n, k * g + g))):
            w = bits[i]
            v = (w & mask) * scale
            vals[i] = -v if (w >> m) & 1 else v
