"""Stream layout and storage encodings of the tensors that move off chip.

Tensors stream channel by channel; within a channel element ``i = n*H*W + h*W + w``
(docs/numerics.md section 5). An :class:`Encoded` tensor holds, in that (C, n) stream layout,
the bit patterns the hardware reads or writes and the values they decode to. Each format
family's own encoder and decoder of a channel is its golden kernel
(:mod:`lightnorm.verify.kernels`).
"""

from __future__ import annotations

import functools
from dataclasses import InitVar, dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

import numba as nb
import numpy as np
from numba.core.types.function_type import CompileResultWAP

from ..spec.formats import StorageFormat
from .kernels import (
    DECODE,
    DECODER,
    ENCODE,
    ENCODER,
    F64_2D,
    F64_3D,
    I64_2D,
    ST,
    U,
    first_class,
    kernel,
    typed,
)


@functools.lru_cache(maxsize=256)
def codec(fmt: StorageFormat) -> tuple[ModuleType, tuple[int, ...]]:
    """The family kernel of a storage format and the format's parameters (cached: the golden
    model asks for them on every call)."""
    k = kernel(fmt)
    return k, k.params(fmt)


def encoder(fmt: StorageFormat) -> CompileResultWAP:
    """The family encoder of ``fmt`` as the kernels' ``ENCODER`` argument."""
    wap = _ENCODERS.get(fmt.kind)
    if wap is None:
        wap = _ENCODERS[fmt.kind] = first_class(kernel(fmt).encode_channel, ENCODE)
    return wap


def decoder(fmt: StorageFormat) -> CompileResultWAP:
    """The family decoder of ``fmt`` as the kernels' ``DECODER`` argument."""
    wap = _DECODERS.get(fmt.kind)
    if wap is None:
        wap = _DECODERS[fmt.kind] = first_class(kernel(fmt).decode_channel, DECODE)
    return wap


# per family (a lookup keyed by the signature would hash it, as slow as numba's dispatch)
_ENCODERS: dict[str, CompileResultWAP] = {}
_DECODERS: dict[str, CompileResultWAP] = {}


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


# ---- pattern words ------------------------------------------------------------------------
#
# Patterns are kept in the narrowest unsigned word that holds them (uint8 for 8-bit elements):
# a pass over a tensor then moves one byte per element instead of eight. Kernels take a row of
# such words as its raw bytes (uint8) and the word size, and widen it into an int64 scratch
# row (the type of the families' encoders and decoders) or narrow such a row into it.

U8_2D = nb.types.uint8[:, ::1]


@functools.lru_cache(maxsize=256)
def pattern_dtype(fmt: StorageFormat) -> np.dtype:
    """The narrowest unsigned dtype that holds an element pattern of ``fmt``."""
    for t in (np.uint8, np.uint16, np.uint32):
        if fmt.element_width <= 8 * np.dtype(t).itemsize:
            return np.dtype(t)
    return np.dtype(np.uint64)


@nb.njit(cache=True)
def widen(raw, size, out):  # type: ignore[no-untyped-def]
    """out[i] = word i of ``raw`` (the bytes of a row of ``size``-byte words)."""
    if size == 1:
        for i in range(raw.size):
            out[i] = raw[i]
    elif size == 2:
        r2 = raw.view(np.uint16)
        for i in range(r2.size):
            out[i] = r2[i]
    elif size == 4:
        r4 = raw.view(np.uint32)
        for i in range(r4.size):
            out[i] = r4[i]
    else:
        r8 = raw.view(np.int64)
        for i in range(r8.size):
            out[i] = r8[i]


@nb.njit(cache=True)
def narrow(src, size, raw):  # type: ignore[no-untyped-def]
    """Word i of ``raw`` (the bytes of a row of ``size``-byte words) = src[i]."""
    if size == 1:
        for i in range(raw.size):
            raw[i] = np.uint8(src[i])
    elif size == 2:
        r2 = raw.view(np.uint16)
        for i in range(r2.size):
            r2[i] = np.uint16(src[i])
    elif size == 4:
        r4 = raw.view(np.uint32)
        for i in range(r4.size):
            r4[i] = np.uint32(src[i])
    else:
        r8 = raw.view(np.int64)
        for i in range(r8.size):
            r8[i] = src[i]


def raw_bytes(patterns: np.ndarray) -> np.ndarray:
    """A (C, n) array of pattern words as the (C, n * size) bytes the kernels take."""
    return np.ascontiguousarray(patterns).view(np.uint8)


# ---- kernels: every channel through its family's encoder or decoder ------------------------


@typed(nb.types.void(F64_2D, nb.types.int64, ST, ENCODER, F64_2D, I64_2D, I64_2D),
       parallel=True)
def _encode_all(src, n, st, enc, vals, bits, exps):  # type: ignore[no-untyped-def]
    for c in nb.prange(src.shape[0]):
        enc(src[c], n, st, vals[c], bits[c], exps[c])


@typed(nb.types.void(U8_2D, nb.types.int64, I64_2D, nb.types.int64, ST, DECODER, F64_2D),
       parallel=True)
def _decode_all(raw, size, exps, n, st, dec, vals):  # type: ignore[no-untyped-def]
    for c in nb.prange(raw.shape[0]):
        pb = np.empty(raw.shape[1] // size, np.int64)
        widen(raw[c], size, pb)
        dec(pb, exps[c], n, st, vals[c])


@nb.njit(cache=True)
def _channel_to_nchw(raw, size, exps, n, st, dec, out, c):  # type: ignore[no-untyped-def]
    """Decode channel c (its pattern bytes ``raw``) into out[:, c, :] ((N, C, H*W))."""
    npad = raw.size // size
    blk = np.empty(npad + n + 64, np.float64)  # one allocation (64: apart modulo 512 bytes)
    pb = blk[:npad].view(np.int64)
    v = blk[npad + 64:]
    widen(raw, size, pb)
    dec(pb, exps, n, st, v)
    nn, _, hw = out.shape
    for a in range(nn):
        row = out[a, c]
        base = U(a * hw)
        for k in range(U(hw)):
            row[k] = v[base + k]


F32_3D = nb.types.float32[:, :, ::1]


@typed(nb.types.void(U8_2D, nb.types.int64, I64_2D, nb.types.int64, ST, DECODER, F64_3D),
       parallel=True)
def _decode_nchw64(raw, size, exps, n, st, dec, out):  # type: ignore[no-untyped-def]
    for c in nb.prange(raw.shape[0]):
        _channel_to_nchw(raw[c], size, exps[c], n, st, dec, out, c)


@typed(nb.types.void(U8_2D, nb.types.int64, I64_2D, nb.types.int64, ST, DECODER, F32_3D),
       parallel=True)
def _decode_nchw32(raw, size, exps, n, st, dec, out):  # type: ignore[no-untyped-def]
    """As _decode_nchw64, into float32 (each value converted with round-to-nearest-even)."""
    for c in nb.prange(raw.shape[0]):
        _channel_to_nchw(raw[c], size, exps[c], n, st, dec, out, c)


# ---- host API -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """A tensor in a storage format, in (C, n) stream layout.

    ``patterns``: (C, n_padded) element patterns in an unsigned dtype (FP: bit patterns; BFP:
    ``(sign << man_bits) | M``), padded with zeros to whole blocks; ``bits``: the same as
    uint64. ``exps``: only for a format whose blocks share an exponent field (BFP, MX), uint64
    (C, n_blocks) biased exponent fields. ``vals``: float64 (C, n) decoded values, decoded
    from the patterns on first use unless given (``known``).
    """

    fmt: StorageFormat
    n: int
    patterns: np.ndarray
    exps: np.ndarray | None
    known: InitVar[np.ndarray | None] = None

    def __post_init__(self, known: np.ndarray | None) -> None:
        if known is not None:
            self.__dict__["vals"] = known  # what the cached property would compute

    @cached_property
    def bits(self) -> np.ndarray:
        """The patterns as uint64 (C, n_padded)."""
        if self.patterns.dtype == np.uint64:
            return self.patterns
        return self.patterns.astype(np.uint64)

    @cached_property
    def vals(self) -> np.ndarray:
        """The values of the patterns, float64 (C, n)."""
        c = self.patterns.shape[0]
        e = self.exps if self.exps is not None else np.zeros((c, 1), dtype=np.uint64)
        vals = np.empty((c, self.n), dtype=np.float64)
        _decode_all(raw_bytes(self.patterns), self.patterns.dtype.itemsize, e.view(np.int64),
                    self.n, codec(self.fmt)[1], decoder(self.fmt), vals)
        return vals

    def values(self) -> np.ndarray:
        return self.vals

    def nchw(self, shape: tuple[int, int, int, int], dtype: Any = np.float64) -> np.ndarray:
        """The values as an NCHW array of ``shape`` (N*H*W = n), float64 or float32 (each value
        rounded to nearest), decoded from the patterns in one pass."""
        n_, c, h, w = shape
        if n_ * h * w != self.n or c != self.patterns.shape[0]:
            raise ValueError(f"shape {shape} does not hold {c} channels of {self.n} elements")
        out = np.empty((n_, c, h * w), dtype)
        if "vals" in self.__dict__:  # decoded already
            out[...] = self.vals.reshape(c, n_, h * w).transpose(1, 0, 2)
        else:
            e = self.exps if self.exps is not None else np.zeros((c, 1), dtype=np.uint64)
            kernel_ = _decode_nchw32 if out.dtype == np.float32 else _decode_nchw64
            kernel_(raw_bytes(self.patterns), self.patterns.dtype.itemsize, e.view(np.int64),
                    self.n, codec(self.fmt)[1], decoder(self.fmt), out)
        return out.reshape(shape)

    def words(self) -> np.ndarray:
        """Every stored pattern, flat: shared exponents (if any) then elements."""
        if self.exps is None:
            return self.bits.reshape(-1)
        return np.concatenate([self.exps.reshape(-1), self.bits.reshape(-1)])

    @classmethod
    def from_bits(cls, fmt: StorageFormat, n: int, bits: np.ndarray,
                  exps: np.ndarray | None = None) -> Encoded:
        """Patterns produced elsewhere (C-simulation, RTL) as an Encoded tensor."""
        b = np.ascontiguousarray(bits, dtype=np.uint64)
        e = None
        if fmt.shared_exp_width:
            if exps is None:
                raise ValueError(f"a {fmt} tensor needs its shared exponents")
            e = np.ascontiguousarray(exps, dtype=np.uint64)
        return cls(fmt, n, b, e)


def empty_patterns(fmt: StorageFormat, c: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Arrays for a kernel to write c channels' patterns (every one, padding included: the
    bytes of words of :func:`pattern_dtype`) and exponent fields into (a per-element format
    has one unused field per channel)."""
    nb_ = fmt.block_count(n) if fmt.shared_exp_width else 1
    size = pattern_dtype(fmt).itemsize
    return np.empty((c, fmt.padded_length(n) * size), np.uint8), np.zeros((c, nb_), np.int64)


def make_encoded(fmt: StorageFormat, n: int, vals: np.ndarray | None, raw: np.ndarray,
                 exps: np.ndarray) -> Encoded:
    """An Encoded tensor of a kernel's arrays (:func:`empty_patterns`; ``vals`` None: decoded
    when used)."""
    shared = exps.view(np.uint64) if fmt.shared_exp_width else None
    return Encoded(fmt, n, raw.view(pattern_dtype(fmt)), shared, vals)


def check_finite(name: str, a: np.ndarray) -> np.ndarray:
    """Host data as contiguous float64; inf and NaN are errors (no format encodes them: every
    family's rules are ``finite_only``)."""
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
    vals = np.empty((c, n), np.float64)
    bits = np.empty((c, fmt.padded_length(n)), np.int64)
    exps = np.zeros((c, fmt.block_count(n) if fmt.shared_exp_width else 1), np.int64)
    _encode_all(src, n, codec(fmt)[1], encoder(fmt), vals, bits, exps)
    shared = exps.view(np.uint64) if fmt.shared_exp_width else None
    return Encoded(fmt, n, bits.view(np.uint64), shared, vals)
