"""The MX family's golden kernel: a channel of OCP MX storage, block by block.

docs/numerics.md section 11: the block's scale is E = floor(log2 max|x|) - emax(element)
clamped to [-127, 127] (an all-zero block: -127), the E8M0 field E + 127; each element is the
scaled value |x| / 2^E rounded to nearest, ties to even, on the element's grid (subnormals
kept), saturated at its largest normal; zero is +0; the padding of a short last block is the
pattern 0. An element's magnitude is an integer K times 2^lsb (lsb: its finest step), which
is how the patterns are built and read.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ...spec.formats import MXFormat
from ...spec.formats.mx import SCALE_BIAS, SCALE_EMAX, SCALE_EMIN
from ..fpnum import f2i
from .base import pad
from .bfp import TWO52, _floor_log2, _pow2

# Index of each field in the parameter tuple.
M_BLOCK, M_INT, M_MBITS, M_EEMIN, M_EEMAX, M_LSB, M_MAXK, M_WIDTH, M_SPECIAL = range(9)
#: M_SPECIAL: the element's reserved encodings (never produced, decoded as the specification
#: says): none, E4M3's S.1111.111 NaN, E5M2's all-ones exponent field (infinity / NaN)
SPECIAL_NONE, SPECIAL_E4M3, SPECIAL_E5M2 = range(3)


def params(fmt: MXFormat) -> tuple[int, ...]:
    el = fmt.el
    special = {"fp8_e4m3": SPECIAL_E4M3, "fp8_e5m2": SPECIAL_E5M2}.get(el.name, SPECIAL_NONE)
    return pad((fmt.block, 1 if el.is_int else 0, el.mbits, el.emin, el.emax, el.lsb, el.maxk,
                el.width, special))


@nb.njit(cache=True, inline="always")
def _element_k(q, st):  # type: ignore[no-untyped-def]
    """|element| as K (value K * 2^lsb) for a scaled magnitude q >= 0: rounded to nearest
    even on the element's grid, saturated at its largest normal."""
    if q == 0.0:
        return np.int64(0)
    m = st[M_MBITS]
    if st[M_INT]:
        t = q * 64.0  # the 2^-6 grid
        if t >= 1e18:
            return st[M_MAXK]
        k = np.int64((t + TWO52) - TWO52)
        return k if k < st[M_MAXK] else st[M_MAXK]
    e = _floor_log2(f2i(q))
    if e < st[M_EEMIN]:
        e = st[M_EEMIN]  # the subnormal grid
    if e > st[M_EEMAX]:
        return st[M_MAXK]
    t = q * _pow2(m - e)  # < 2^(m+1)
    k = np.int64((t + TWO52) - TWO52) << (e - st[M_EEMIN])
    return k if k < st[M_MAXK] else st[M_MAXK]


@nb.njit(cache=True, inline="always")
def _pattern(k, neg, st):  # type: ignore[no-untyped-def]
    """The element pattern of a signed magnitude K (K = 0: the pattern 0)."""
    w = st[M_WIDTH]
    if st[M_INT]:
        return ((-k) if neg else k) & ((np.int64(1) << w) - 1)
    m = st[M_MBITS]
    if k < (np.int64(1) << m):
        mag = k
    else:
        e = np.int64(0)
        t = k
        while t > 1:
            t >>= 1
            e += 1
        mag = ((e - m + 1) << m) | ((k >> (e - m)) & ((np.int64(1) << m) - 1))
    if neg and k != 0:
        return mag | (np.int64(1) << (w - 1))
    return mag


@nb.njit(cache=True)
def encode_channel(src, n, st, vals, bits, exps):  # type: ignore[no-untyped-def]
    g = st[M_BLOCK]
    nblk = (n + g - 1) // g
    lsb = st[M_LSB]
    for b in range(nblk):
        s0 = b * g
        s1 = min(n, s0 + g)
        amax = 0.0
        for i in range(s0, s1):
            a = abs(src[i])
            if a > amax:
                amax = a
        e_sh = _floor_log2(f2i(amax)) - st[M_EEMAX] if amax != 0.0 else SCALE_EMIN
        if e_sh < SCALE_EMIN:
            e_sh = SCALE_EMIN
        if e_sh > SCALE_EMAX:
            e_sh = SCALE_EMAX
        inv = _pow2(-e_sh)  # exact: |x| / 2^E
        step = _pow2(lsb + e_sh)
        for j in range(g):
            i = s0 + j
            if i < s1:
                k = _element_k(abs(src[i]) * inv, st)
                neg = src[i] < 0.0
                v = k * step
                vals[i] = -v if (neg and k != 0) else v
                bits[i] = _pattern(k, neg, st)
            else:
                bits[i] = 0
        exps[b] = e_sh + SCALE_BIAS


@nb.njit(cache=True)
def decode_channel(bits, exps, n, st, vals):  # type: ignore[no-untyped-def]
    g = st[M_BLOCK]
    m = st[M_MBITS]
    w = st[M_WIDTH]
    for i in range(n):
        f = exps[i // g]
        b = bits[i]
        if f == 2 * SCALE_BIAS + 1:  # E8M0 0xFF: NaN
            vals[i] = np.nan
            continue
        e = f - SCALE_BIAS + st[M_LSB]
        if st[M_INT]:
            c = b - (np.int64(1) << w) if (b >> (w - 1)) & 1 else b
            vals[i] = math.ldexp(float(c), e)
            continue
        mant = b & ((np.int64(1) << m) - 1)
        field = (b >> m) & ((np.int64(1) << (w - 1 - m)) - 1)
        neg = (b >> (w - 1)) & 1
        top = (np.int64(1) << (w - 1 - m)) - 1
        if (st[M_SPECIAL] == SPECIAL_E4M3 and field == top and mant == (1 << m) - 1) or (
                st[M_SPECIAL] == SPECIAL_E5M2 and field == top):
            v = np.inf if st[M_SPECIAL] == SPECIAL_E5M2 and mant == 0 else np.nan
        else:
            k = mant if field == 0 else ((np.int64(1) << m) | mant) << (field - 1)
            v = math.ldexp(float(k), e)
        vals[i] = -v if neg else v
