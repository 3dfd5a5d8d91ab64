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
from ..fpnum import f2i, i2f
from .base import pad

# Index of each field in the parameter tuple.
B_BLOCK, B_RAISE, B_EMIN, B_EMAX, B_NEAREST, B_MAN, B_BIAS = range(7)


def params(fmt: BFPFormat) -> tuple[int, ...]:
    return pad((fmt.block, 1 if fmt.carry == "raise" else 0, fmt.emin, fmt.emax,
                1 if fmt.rounding == "nearest" else 0, fmt.man_bits, fmt.bias))


@nb.njit(cache=True, inline="always")
def _floor_log2(a_bits):  # type: ignore[no-untyped-def]
    """floor(log2 |v|) from the magnitude bits of a nonzero float64."""
    ex = a_bits >> 52
    if ex == 0:  # float64 subnormal
        k = 0
        t = a_bits
        while t > 1:
            t >>= 1
            k += 1
        return np.int64(k - 1074)
    return ex - 1023


TWO52 = 4503599627370496.0  # 2^52: (t + 2^52) - 2^52 rounds 0 <= t < 2^52 to nearest-even


@nb.njit(cache=True, inline="always")
def _pow2(e):  # type: ignore[no-untyped-def]
    """2.0 ** e for any integer e that float64 can hold (incl. its subnormal range)."""
    if -1022 <= e <= 1023:
        return i2f((e + 1023) << 52)
    return math.ldexp(1.0, e)


@nb.njit(cache=True, inline="always")
def _block_mantissas(src, start, stop, e_sh, m, nearest, mant):  # type: ignore[no-untyped-def]
    """mant[j] = round(|src[start+j]| / 2^(e_sh - m + 1)); True if one exceeds 2^m - 1."""
    k = m - 1 - e_sh
    # Scaling by a power of two is exact; split it when 2^k alone would overflow float64.
    k1 = k // 2 if k > 1000 else k
    s1 = _pow2(k1)
    s2 = _pow2(k - k1)
    maxm = (np.int64(1) << m) - 1
    carry = False
    for i in range(start, stop):
        t = abs(src[i]) * s1 * s2
        if t >= 1e18:  # far above the block range (E clamped at emax): saturates
            mm = maxm + 1
        elif nearest:
            mm = np.int64((t + TWO52) - TWO52)
        else:
            mm = np.int64(t)
        if mm > maxm:
            carry = True
        mant[i - start] = mm
    return carry


@nb.njit(cache=True)
def encode_block(src, start, stop, block, st, vals, bits, out_off, mant):  # type: ignore[no-untyped-def]
    """Encode src[start:stop] (a block, possibly short) as BFP; returns the exponent field.

    Decoded values go to vals[out_off + j] (for the valid elements) and element patterns to
    bits[out_off + j] for the whole block (padding patterns are 0). ``mant`` is scratch space.
    """
    m = st[B_MAN]
    nearest = st[B_NEAREST]
    maxm = (np.int64(1) << m) - 1
    amax = 0.0
    for i in range(start, stop):
        a = abs(src[i])
        if a > amax:
            amax = a
    e_sh = _floor_log2(f2i(amax)) if amax != 0.0 else st[B_EMIN]
    if e_sh < st[B_EMIN]:
        e_sh = st[B_EMIN]
    if e_sh > st[B_EMAX]:
        e_sh = st[B_EMAX]
    carry = _block_mantissas(src, start, stop, e_sh, m, nearest, mant)
    if carry and st[B_RAISE] and e_sh < st[B_EMAX]:
        e_sh += 1  # re-round the whole block one exponent up
        _block_mantissas(src, start, stop, e_sh, m, nearest, mant)
    scale = _pow2(e_sh - m + 1)
    sbit = np.int64(1) << m
    for j in range(block):
        i = start + j
        if i < stop:
            mm = mant[j]
            if mm > maxm:
                mm = maxm
            v = mm * scale
            if src[i] < 0.0 and mm != 0:
                vals[out_off + j] = -v
                bits[out_off + j] = sbit | mm
            else:
                vals[out_off + j] = v
                bits[out_off + j] = mm
        else:
            bits[out_off + j] = 0
    return e_sh + st[B_BIAS]


@nb.njit(cache=True)
def encode_channel(src, n, st, vals, bits, exps):  # type: ignore[no-untyped-def]
    g = st[B_BLOCK]
    nblk = (n + g - 1) // g
    mant = np.empty(g, np.int64)
    for k in range(nblk):
        s0 = k * g
        s1 = min(n, s0 + g)
        exps[k] = encode_block(src, s0, s1, g, st, vals, bits, s0, mant)


@nb.njit(cache=True)
def decode_channel(bits, exps, n, st, vals):  # type: ignore[no-untyped-def]
    m = st[B_MAN]
    g = st[B_BLOCK]
    for i in range(n):
        e = exps[i // g] - st[B_BIAS]
        w = bits[i]
        mm = w & ((np.int64(1) << m) - 1)
        v = mm * math.ldexp(1.0, e - m + 1)
        vals[i] = -v if (w >> m) & 1 else v
