"""Stream layout and storage encodings (FP and BFP) of the tensors that move off chip.

Tensors stream channel by channel; within a channel element ``i = n*H*W + h*W + w``
(docs/numerics.md section 5). An :class:`Encoded` tensor holds, in that (C, n) stream layout,
the bit patterns the hardware reads or writes and the values they decode to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ..spec.formats import BFPFormat, FPFormat, StorageFormat
from . import fpnum
from .fpnum import f2i, i2f, rnd

# Storage parameter tuple: (kind, block, raise, emin, emax, *fp_params). kind 0 = FP, 1 = BFP.
S_KIND, S_BLOCK, S_RAISE, S_EMIN, S_EMAX = range(5)
S_FP = 5  # offset of the FP parameter tuple (see fpnum.fp_params)


def storage_params(fmt: StorageFormat) -> tuple[int, ...]:
    if isinstance(fmt, FPFormat):
        return (0, 1, 0, fmt.emin, fmt.emax, *fpnum.fp_params(fmt))
    # The BFP kernels read only the rounding mode, man_bits, exp_bits and bias of the tuple.
    p = [0] * 8
    p[fpnum.P_NEAREST] = 1 if fmt.rounding == "nearest" else 0
    p[fpnum.P_SHIFT] = 52 - fmt.man_bits
    p[fpnum.P_EXP], p[fpnum.P_MAN], p[fpnum.P_BIAS] = fmt.exp_bits, fmt.man_bits, fmt.bias
    return (1, fmt.block, 1 if fmt.carry == "raise" else 0, fmt.emin, fmt.emax, *p)


def padded_length(fmt: StorageFormat, n: int) -> int:
    if isinstance(fmt, BFPFormat):
        return -(-n // fmt.block) * fmt.block
    return n


def to_stream(a: np.ndarray) -> np.ndarray:
    """NCHW -> (C, N*H*W) in stream order."""
    a = np.asarray(a)
    if a.ndim != 4:
        raise ValueError(f"expected an NCHW array, got shape {a.shape}")
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1))


def from_stream(s: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """(C, N*H*W) stream layout -> NCHW."""
    n, c, h, w = shape
    return np.ascontiguousarray(np.asarray(s)[:, : n * h * w].reshape(c, n, h, w)
                                .transpose(1, 0, 2, 3))


# ---- kernels ----------------------------------------------------------------------------


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
    f = st[S_FP:]
    m = f[fpnum.P_MAN]
    nearest = f[fpnum.P_NEAREST]
    maxm = (np.int64(1) << m) - 1
    amax = 0.0
    for i in range(start, stop):
        a = abs(src[i])
        if a > amax:
            amax = a
    e_sh = _floor_log2(f2i(amax)) if amax != 0.0 else st[S_EMIN]
    if e_sh < st[S_EMIN]:
        e_sh = st[S_EMIN]
    if e_sh > st[S_EMAX]:
        e_sh = st[S_EMAX]
    carry = _block_mantissas(src, start, stop, e_sh, m, nearest, mant)
    if carry and st[S_RAISE] and e_sh < st[S_EMAX]:
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
    return e_sh + f[fpnum.P_BIAS]


@nb.njit(cache=True)
def encode_channel(src, n, st, vals, bits, exps):  # type: ignore[no-untyped-def]
    """Encode one channel's n stream-ordered values into vals[:n], bits[:npad], exps[:nb]."""
    if st[S_KIND] == 0:
        f = st[S_FP:]
        for i in range(n):
            v = rnd(src[i], f)
            vals[i] = v
            bits[i] = fpnum.encode(v, f)
    else:
        g = st[S_BLOCK]
        nblk = (n + g - 1) // g
        mant = np.empty(g, np.int64)
        for k in range(nblk):
            s0 = k * g
            s1 = min(n, s0 + g)
            exps[k] = encode_block(src, s0, s1, g, st, vals, bits, s0, mant)


@nb.njit(cache=True, parallel=True)
def _encode_all(src, n, st, vals, bits, exps):  # type: ignore[no-untyped-def]
    for c in nb.prange(src.shape[0]):
        encode_channel(src[c], n, st, vals[c], bits[c], exps[c])


@nb.njit(cache=True, parallel=True)
def _decode_all(bits, exps, n, st, vals):  # type: ignore[no-untyped-def]
    f = st[S_FP:]
    m = f[fpnum.P_MAN]
    for c in nb.prange(bits.shape[0]):
        if st[S_KIND] == 0:
            for i in range(n):
                vals[c, i] = fpnum.decode(bits[c, i], f)
        else:
            g = st[S_BLOCK]
            for i in range(n):
                e = exps[c, i // g] - f[fpnum.P_BIAS]
                w = bits[c, i]
                mm = w & ((np.int64(1) << m) - 1)
                v = mm * math.ldexp(1.0, e - m + 1)
                vals[c, i] = -v if (w >> m) & 1 else v


# ---- host API -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """A tensor in a storage format, in (C, n) stream layout.

    ``bits``: uint64 (C, n_padded) - FP: bit patterns; BFP: element patterns
    ``(sign << man_bits) | M`` padded with zeros to whole blocks. ``exps``: BFP only, uint64
    (C, n_blocks) biased shared-exponent fields. ``vals``: float64 (C, n) decoded values.
    """

    fmt: StorageFormat
    n: int
    bits: np.ndarray
    exps: np.ndarray | None
    vals: np.ndarray

    def values(self) -> np.ndarray:
        return self.vals

    def words(self) -> np.ndarray:
        """Every stored pattern, flat: exponents (BFP) then elements."""
        if self.exps is None:
            return self.bits.reshape(-1)
        return np.concatenate([self.exps.reshape(-1), self.bits.reshape(-1)])

    @classmethod
    def from_bits(cls, fmt: StorageFormat, n: int, bits: np.ndarray,
                  exps: np.ndarray | None = None) -> Encoded:
        """Decode patterns produced elsewhere (C-simulation, RTL) into an Encoded tensor."""
        b = np.ascontiguousarray(bits, dtype=np.uint64)
        c = b.shape[0]
        if isinstance(fmt, BFPFormat):
            if exps is None:
                raise ValueError("a BFP tensor needs its shared exponents")
            e = np.ascontiguousarray(exps, dtype=np.uint64)
        else:
            e = np.zeros((c, 1), dtype=np.uint64)
        vals = np.empty((c, n), dtype=np.float64)
        _decode_all(b.view(np.int64), e.view(np.int64), n, storage_params(fmt), vals)
        return cls(fmt, n, b, e if isinstance(fmt, BFPFormat) else None, vals)


def empty_encoded_arrays(fmt: StorageFormat, c: int, n: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    npad = padded_length(fmt, n)
    nb_ = npad // fmt.block if isinstance(fmt, BFPFormat) else 1
    return (np.zeros((c, n), np.float64), np.zeros((c, npad), np.int64),
            np.zeros((c, nb_), np.int64))


def make_encoded(fmt: StorageFormat, n: int, vals: np.ndarray, bits: np.ndarray,
                 exps: np.ndarray) -> Encoded:
    is_bfp = isinstance(fmt, BFPFormat)
    return Encoded(fmt, n, bits.view(np.uint64), exps.view(np.uint64) if is_bfp else None, vals)


def check_finite(name: str, a: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains inf or NaN: the formats have no encoding for them")
    return arr


def encode(values: np.ndarray, fmt: StorageFormat) -> Encoded:
    """Host-side quantization of (C, n) float64 values into a storage format."""
    src = check_finite("tensor", values)
    if src.ndim != 2:
        raise ValueError(f"expected a (C, n) stream-layout array, got shape {src.shape}")
    c, n = src.shape
    vals, bits, exps = empty_encoded_arrays(fmt, c, n)
    _encode_all(src, n, storage_params(fmt), vals, bits, exps)
    return make_encoded(fmt, n, vals, bits, exps)
