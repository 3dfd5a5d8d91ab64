"""The MX family's golden kernel: a channel of OCP MX storage, block by block.

docs/numerics.md section 11: the block's scale is E = floor(log2 max|x|) - emax(element)
clamped to [-127, 127] (an all-zero block: -127), the E8M0 field E + 127; each element is the
scaled value |x| / 2^E rounded to nearest, ties to even, on the element's grid (subnormals
kept), saturated at its largest normal; zero is +0; the padding of a short last block is the
pattern 0. An element's magnitude is an integer K times 2^lsb (lsb: its finest step), which
is how the patterns are built and read.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ...spec.formats import MXFormat
from ...spec.formats.mx import SCALE_BIAS, SCALE_EMAX, SCALE_EMIN
from ..fpnum import f2i, i2f
from .base import U, pad
from .bfp import TWO52, _abs_max_bits, _floor_log2, _pow2

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


def grid_bits(fmt: MXFormat) -> int:
    """Bits of the largest |K| a pattern decodes to (INT8's -128 included): a block's values
    are K times one power of two."""
    return (fmt.el.maxk + 1).bit_length()


@nb.njit(cache=True, inline="always")
def _element_k(q, st):  # type: ignore[no-untyped-def]
    """|element| as K (value K * 2^lsb) for a scaled magnitude q >= 0: rounded to nearest
    even on the element's grid, saturated at its largest normal (selects, no branches: the
    block loop vectorizes)."""
    if st[M_INT]:
        t = q * 64.0  # the 2^-6 grid
        k = st[M_MAXK] if t >= 1e18 else np.int64((t + TWO52) - TWO52)
        return min(k, st[M_MAXK])
    m = st[M_MBITS]
    # q's binade, not below the subnormal grid's (q = 0 gives K = 0 on that grid)
    e = max(_floor_log2(f2i(q)), st[M_EEMIN]) if q != 0.0 else st[M_EEMIN]
    over = e > st[M_EEMAX]
    e = min(e, st[M_EEMAX])
    t = q * i2f((m - e + 1023) << 52)  # < 2^(m+1); 2^(m - e) is a normal float64
    k = np.int64((t + TWO52) - TWO52) << (e - st[M_EEMIN])
    return st[M_MAXK] if over | (k >= st[M_MAXK]) else k


@nb.njit(cache=True, inline="always")
def _pattern(k, neg, st):  # type: ignore[no-untyped-def]
    """The element pattern of a signed magnitude K (K = 0: the pattern 0)."""
    w = st[M_WIDTH]
    if st[M_INT]:
        return ((-k) if neg else k) & ((np.int64(1) << w) - 1)
    m = st[M_MBITS]
    # K's leading one (K < 2^53 converts exactly); used only when K >= 2^m
    e = (f2i(np.float64(k)) >> 52) - 1023
    sh = max(e - m, 0)
    big = ((e - m + 1) << m) | ((k >> sh) & ((np.int64(1) << m) - 1))
    mag = k if k < (np.int64(1) << m) else big
    return mag | (np.int64(1) << (w - 1)) if neg & (k != 0) else mag


@nb.njit(cache=True)
def encode_channel(src, n, st, vals, bits, exps):  # type: ignore[no-untyped-def]
    g = st[M_BLOCK]
    lsb = st[M_LSB]
    for b in range((n + g - 1) // g):
        s0 = U(b * g)  # unsigned indices: see lightnorm.verify.kernels.base.U
        s1 = U(min(n, b * g + g))
        amax = _abs_max_bits(src, s0, s1)
        e_sh = _floor_log2(amax) - st[M_EEMAX] if amax != 0 else SCALE_EMIN
        e_sh = min(max(e_sh, SCALE_EMIN), SCALE_EMAX)
        inv = _pow2(-e_sh)  # exact: |x| / 2^E
        step = _pow2(lsb + e_sh)
        for i in range(s0, s1):
            k = _element_k(abs(src[i]) * inv, st)
            neg = src[i] < 0.0
            v = k * step
            vals[i] = -v if neg & (k != 0) else v
            bits[i] = _pattern(k, neg, st)
        for i in range(s1, U(b * g + g)):  # the padding of a short last block
            bits[i] = 0
        exps[b] = e_sh + SCALE_BIAS


@nb.njit(cache=True)
def decode_channel(bits, exps, n, st, vals):  # type: ignore[no-untyped-def]
    g = st[M_BLOCK]
    m = st[M_MBITS]
    w = st[M_WIDTH]
    top = (np.int64(1) << (w - 1 - m)) - 1  # the all-ones exponent field
    mmask = (np.int64(1) << m) - 1
    for b in range((n + g - 1) // g):
        f = exps[b]
        s0 = U(b * g)
        s1 = U(min(n, b * g + g))
        if f == 2 * SCALE_BIAS + 1:  # E8M0 0xFF: NaN
            vals[s0:s1] = np.nan
            continue
        step = _pow2(f - SCALE_BIAS + st[M_LSB])  # the block's grid 2^(E + lsb)
        if st[M_INT]:
            for i in range(s0, s1):
                c = bits[i]
                c = c - (np.int64(1) << w) if (c >> (w - 1)) & 1 else c
                vals[i] = c * step
            continue
        for i in range(s0, s1):
            p = bits[i]
            mant = p & mmask
            field = (p >> m) & top
            k = mant if field == 0 else ((np.int64(1) << m) | mant) << (field - 1)
            v = k * step
            # the reserved encodings: E4M3 S.1111.111 NaN, E5M2 exponent 11111 inf / NaN
            v = np.nan if (st[M_SPECIAL] == SPECIAL_E4M3) & (field == top) & (mant == mmask) \
                else v
            e5 = (st[M_SPECIAL] == SPECIAL_E5M2) & (field == top)
            v = (np.inf if mant == 0 else np.nan) if e5 else v
            vals[i] = -v if (p >> (w - 1)) & 1 else v
