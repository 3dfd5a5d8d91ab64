"""Fast, exact emulation of the FP(e, m) primitives of docs/numerics.md (numba kernels).

Values are float64 numbers that lie on the target format's grid. Each primitive computes its
result in float64, turns it into a *round-to-odd* value when it was inexact (TwoSum for sums,
an exact remainder for quotients and roots; products of <= 24-bit significands are exact), and
then rounds once with :func:`rnd` - the one rounding path. Round-to-odd at 53 bits followed by
rounding to p <= 24 bits is correct in every rounding mode, so this is exact for truncation as
well as for nearest-even (see docs/numerics.md, section 2, emulation note).

A format is passed to the kernels as a tuple of int64 (:func:`fp_params`), so one compiled
kernel serves every spec.
"""

from __future__ import annotations

import functools
import math

import numba as nb
import numpy as np
from numba import types
from numba.extending import intrinsic

from ..spec.formats import FPFormat

SIGN = np.int64(-0x8000000000000000)
ABS = np.int64(0x7FFFFFFFFFFFFFFF)
INF_BITS = np.int64(0x7FF0000000000000)  # bits of +inf: above every finite magnitude


@intrinsic
def f2i(typingctx, x):  # type: ignore[no-untyped-def]
    """Reinterpret a float64 as int64 (a no-op bitcast)."""
    del typingctx
    if isinstance(x, types.Float) and x.bitwidth == 64:
        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            return builder.bitcast(args[0], context.get_value_type(types.int64))
        return types.int64(x), codegen
    return None


@intrinsic
def i2f(typingctx, x):  # type: ignore[no-untyped-def]
    """Reinterpret an int64 as float64."""
    del typingctx
    if isinstance(x, types.Integer) and x.bitwidth == 64:
        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            return builder.bitcast(args[0], context.get_value_type(types.float64))
        return types.float64(x), codegen
    return None


def _bits(v: float) -> int:
    return int(np.float64(v).view(np.int64))


# Index of each field in the parameter tuple.
P_NEAREST, P_MIN, P_THR, P_MAX, P_SHIFT, P_EXP, P_MAN, P_BIAS = range(8)


@functools.lru_cache(maxsize=256)
def fp_params(fmt: FPFormat, rounding: str | None = None) -> tuple[int, ...]:
    """The format as the int64 tuple the kernels take.

    (nearest?, bits of min_normal, bits of the nearest-mode flush threshold
    min_normal - q/2, bits of max, 52 - man_bits, exp_bits, man_bits, bias)
    """
    mode = rounding or fmt.rounding
    m = fmt.man_bits
    thr = fmt.min_normal - 2.0 ** (fmt.emin - m - 1)
    return (
        1 if mode == "nearest" else 0,
        _bits(fmt.min_normal),
        _bits(thr),
        _bits(fmt.max_value),
        52 - m,
        fmt.exp_bits,
        m,
        fmt.bias,
    )


@nb.njit(cache=True, inline="always")
def rnd(v, f):  # type: ignore[no-untyped-def]
    """Round a float64 (exact or round-to-odd) into format ``f``: saturate, flush, +0.

    Written as selects, not branches, so that loops over it vectorize (SIMD)."""
    b = f2i(v)
    a = b & ABS
    sh = f[P_SHIFT]
    inc = ((np.int64(1) << (sh - 1)) - 1) + ((a >> sh) & 1) if f[P_NEAREST] else np.int64(0)
    r = (a + inc) & ~((np.int64(1) << sh) - 1)
    # a >= max includes inf and NaN bits, where a + inc may have wrapped: the true value
    # exceeds max
    r = f[P_MAX] if (a >= f[P_MAX]) | (r > f[P_MAX]) else r
    low = f[P_MIN] if f[P_NEAREST] & (a >= f[P_THR]) else np.int64(0)
    r = low if a < f[P_MIN] else r  # flush after rounding (zero included)
    return i2f(r | (b & SIGN)) if r != 0 else 0.0


@nb.njit(cache=True, inline="always")
def to_odd(s, err):  # type: ignore[no-untyped-def]
    """Round-to-odd of s + err given s = RN(s + err) and the sign of the exact error (as
    selects, like :func:`rnd`)."""
    b = f2i(s)
    a = b & ABS
    # inexact, even last bit, finite (inf/nan is an overflow that rnd saturates), nonzero
    fix = (err != 0.0) & ((b & 1) == 0) & (a < INF_BITS) & (a != 0)
    # the true magnitude is larger: the next float up is odd; else the next one down
    a2 = a + 1 if (err > 0.0) == (s > 0.0) else a - 1
    return i2f((a2 if fix else a) | (b & SIGN))


@nb.njit(cache=True, inline="always")
def add(a, b, f):  # type: ignore[no-untyped-def]
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)  # TwoSum: a + b = s + err exactly
    return rnd(to_odd(s, err), f)


@nb.njit(cache=True, inline="always")
def sub(a, b, f):  # type: ignore[no-untyped-def]
    return add(a, -b, f)


@nb.njit(cache=True, inline="always")
def mul(a, b, f):  # type: ignore[no-untyped-def]
    # Operands have <= 24-bit significands: the float64 product is exact (or overflows,
    # which rnd saturates, or underflows far below every format's flush threshold).
    return rnd(a * b, f)


@nb.njit(cache=True, inline="always")
def _two_prod(a, b):  # type: ignore[no-untyped-def]
    """Dekker's exact product without FMA: a*b = p + e (no overflow assumed)."""
    p = a * b
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


@nb.njit(cache=True)
def _split(a):  # type: ignore[no-untyped-def]
    """a = mant * 2^ex with mant in [1, 2): scaling keeps Dekker's split away from overflow."""
    b = f2i(a) & ABS
    ex = (b >> 52) - 1023
    if ex == -1023:  # float64 subnormal (cannot occur for values on a format grid)
        m, e = math.frexp(a)
        return m * 2.0, np.int64(e - 1)
    return i2f((b & np.int64(0x000FFFFFFFFFFFFF)) | np.int64(0x3FF0000000000000)), ex


@nb.njit(cache=True)
def recip(a, f):  # type: ignore[no-untyped-def]
    """Correctly rounded 1/a into f; 1/0 saturates to max."""
    if a == 0.0:
        return i2f(f[P_MAX])
    ma, ea = _split(abs(a))
    q = 1.0 / ma  # in (0.5, 1]
    p, e = _two_prod(q, ma)
    # 1 - p is exact (Sterbenz); the remainder 1 - q*ma = (1 - p) - e, and a correctly
    # rounded float64 difference keeps the sign of the exact one.
    rem = (1.0 - p) - e
    q = to_odd(q, rem)
    res = math.ldexp(q, -ea)  # exact: scaling a round-to-odd value by 2^-ea
    if a < 0.0:
        res = -res
    return rnd(res, f)


@nb.njit(cache=True)
def sqrt(a, f):  # type: ignore[no-untyped-def]
    """Correctly rounded sqrt(a) into f for a >= 0."""
    if a <= 0.0:
        return 0.0
    ma, ea = _split(a)
    if ea & 1:
        ma *= 2.0
        ea -= 1
    s = np.sqrt(ma)  # ma in [1, 4): s in [1, 2)
    p, e = _two_prod(s, s)
    rem = (ma - p) - e  # sign of ma - s*s, exact as in recip
    s = to_odd(s, rem)
    return rnd(math.ldexp(s, ea // 2), f)


@nb.njit(cache=True, inline="always")
def encode(v, f):  # type: ignore[no-untyped-def]
    """Bit pattern of a value on f's grid (0 for zero)."""
    b = f2i(v)
    a = b & ABS
    e = (a >> 52) - 1023 + f[P_BIAS]
    frac = (a >> f[P_SHIFT]) & ((np.int64(1) << f[P_MAN]) - 1)
    s = np.int64(1) if b < 0 else np.int64(0)
    pat = (s << (f[P_EXP] + f[P_MAN])) | (e << f[P_MAN]) | frac
    return pat if a != 0 else np.int64(0)


@nb.njit(cache=True, inline="always")
def decode(bits, f):  # type: ignore[no-untyped-def]
    """Value of an FP bit pattern (zero exponent reads as zero)."""
    m = f[P_MAN]
    ef = (bits >> m) & ((np.int64(1) << f[P_EXP]) - 1)
    frac = bits & ((np.int64(1) << m) - 1)
    a = ((ef - f[P_BIAS] + 1023) << 52) | (frac << f[P_SHIFT])
    v = -i2f(a) if (bits >> (f[P_EXP] + m)) & 1 else i2f(a)
    return v if ef != 0 else 0.0


# ---- vectorized wrappers (tests, host code) -------------------------------------------


@nb.njit(cache=True)
def _map1(op, a, f):  # type: ignore[no-untyped-def]
    out = np.empty_like(a)
    for i in range(a.size):
        if op == 0:
            out[i] = rnd(a[i], f)
        elif op == 1:
            out[i] = recip(a[i], f)
        else:
            out[i] = sqrt(a[i], f)
    return out


@nb.njit(cache=True)
def _map2(op, a, b, f):  # type: ignore[no-untyped-def]
    out = np.empty_like(a)
    for i in range(a.size):
        if op == 0:
            out[i] = add(a[i], b[i], f)
        elif op == 1:
            out[i] = sub(a[i], b[i], f)
        else:
            out[i] = mul(a[i], b[i], f)
    return out


@nb.njit(cache=True)
def _encode_arr(a, f):  # type: ignore[no-untyped-def]
    out = np.empty(a.size, dtype=np.int64)
    for i in range(a.size):
        out[i] = encode(a[i], f)
    return out


@nb.njit(cache=True)
def _decode_arr(a, f):  # type: ignore[no-untyped-def]
    out = np.empty(a.size, dtype=np.float64)
    for i in range(a.size):
        out[i] = decode(a[i], f)
    return out


def _flat(a: np.ndarray | float) -> tuple[np.ndarray, tuple[int, ...]]:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    return arr.reshape(-1), arr.shape


def round_array(a: np.ndarray, fmt: FPFormat, rounding: str | None = None) -> np.ndarray:
    """Round float64 values into ``fmt`` (each value rounded once, exactly)."""
    flat, shape = _flat(a)
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"cannot round non-finite values into {fmt}")
    return _map1(0, flat, fp_params(fmt, rounding)).reshape(shape)


def op_array(op: str, a: np.ndarray, b: np.ndarray | None, fmt: FPFormat) -> np.ndarray:
    """Apply one primitive elementwise: add, sub, mul (binary) or recip, sqrt (unary).

    Operands must already be values of FP formats with <= 24-bit significands.
    """
    f = fp_params(fmt)
    if op in ("recip", "sqrt"):
        fa, shape = _flat(a)
        return _map1(1 if op == "recip" else 2, fa, f).reshape(shape)
    a2, b2 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a2.shape != b2.shape:
        # a broadcast view handed to numba makes NumPy warn (FutureWarning) on every call:
        # copy the operand that is broadcast instead
        shape = np.broadcast_shapes(a2.shape, b2.shape)
        a2 = a2 if a2.shape == shape else np.broadcast_to(a2, shape).copy()
        b2 = b2 if b2.shape == shape else np.broadcast_to(b2, shape).copy()
    fa, shape = _flat(a2)
    fb, _ = _flat(b2)
    return _map2(("add", "sub", "mul").index(op), fa, fb, f).reshape(shape)


def encode_array(a: np.ndarray, fmt: FPFormat) -> np.ndarray:
    flat, shape = _flat(a)
    return _encode_arr(flat, fp_params(fmt)).astype(np.uint64).reshape(shape)


def decode_array(bits: np.ndarray, fmt: FPFormat) -> np.ndarray:
    arr = np.ascontiguousarray(bits).astype(np.int64)
    return _decode_arr(arr.reshape(-1), fp_params(fmt)).reshape(arr.shape)
