"""Bit-accurate golden model of the BN hardware, for any valid spec (docs/numerics.md).

Two numba kernels, parallel over channels: forward (a statistics pass over x, finalize, a
normalize pass) and backward (pass 1 over x and dy, the per-channel scalars, the dx pass), the
stages of the hardware run channel by channel (channels are independent). Between passes only
the encoded patterns are kept, as the hardware keeps them. Every rounding point is one call
into :mod:`lightnorm.verify.fpnum`. How the loops are written for speed, and why it does not
change a bit, is in docs/architecture.md (verify/) and tests/test_golden_paths.py.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numba as nb
import numpy as np

from ..spec import Spec, check_channel_elems, chunk_bounds, range_constant
from ..spec.formats import FPFormat, StorageFormat
from ..spec.rounding import encode_fp, round_scalar
from . import fpnum
from .encoding import (
    F32_3D,
    U8_2D,
    Encoded,
    codec,
    decoder,
    empty_patterns,
    encoder,
    make_encoded,
    narrow,
    raw_bytes,
    widen,
)
from .fpnum import ABS, INF_BITS, add, f2i, i2f, mul, rnd, sub
from .kernels import (
    DECODE,
    DECODER,
    ENCODE,
    ENCODER,
    F64_2D,
    F64_3D,
    FP,
    I64_2D,
    KERNELS,
    ST,
    TYPED,
    U,
    first_class,
    kernel,
    typed,
)
from .kernels.bfp import B_BIAS, B_BLOCK, B_MAN

# Rows of the per-channel statistics array returned by the statistics kernel.
ST_SUM, ST_SUMSQ, ST_SMAX, ST_SMIN = range(4)


# ---- host-side constants (section 7) --------------------------------------------------------


@dataclass(frozen=True)
class RunConstants:
    """Per-run constants, values of the scalar format (rounded with nearest)."""

    n: int
    inv_n: float
    c_k: float
    eps: float
    momentum: float
    unbias: float

    @property
    def values(self) -> tuple[float, float, float, float, float]:
        """(inv_n, c_k, eps, momentum, unbias), as the per-channel kernels take them."""
        return self.inv_n, self.c_k, self.eps, self.momentum, self.unbias

    def bits(self, fmt: FPFormat) -> dict[str, int]:
        return {k: encode_fp(getattr(self, k), fmt)
                for k in ("inv_n", "c_k", "eps", "momentum", "unbias")}


@functools.lru_cache(maxsize=256)
def constants(spec: Spec, n: int) -> RunConstants:
    """The host constants of a run of n elements per channel (cached: they are computed with
    exact rationals)."""
    check_channel_elems(spec, n)
    s = spec.scalar
    ck = range_constant(n, spec.bn.chunks) if spec.bn.mode == "range" else 0.0
    return RunConstants(
        n=n,
        inv_n=round_scalar(1.0 / n, s, "nearest"),
        c_k=round_scalar(ck, s, "nearest"),
        eps=round_scalar(spec.bn.eps, s, "nearest"),
        momentum=round_scalar(spec.bn.momentum, s, "nearest"),
        unbias=round_scalar(n / (n - 1), s, "nearest"),
    )


def run_constants(spec: Spec, n: int) -> dict[str, int]:
    """The host constants as scalar-format bit patterns, plus n."""
    rc = constants(spec, n)
    return {"n": n, **rc.bits(spec.scalar)}


# ---- kernels --------------------------------------------------------------------------------
#
# Every per-element loop below is written without branches (the primitives of fpnum are
# selects) and with indices numba can see are non-negative (from 0, or unsigned: U), so that
# LLVM vectorizes it (SIMD); reductions whose order is part of the contract stay sequential,
# except sums that are exact in any order (SUM_EXACT).

# How a beat sum is formed (section 6), chosen per run by :func:`_sum_rule`:
# SUM_TREE: lane values rounded into A, then the pairwise tree of add_A (FP storage);
# SUM_EXACT: the beat's values lie on one grid and every partial sum is exact in float64, so
# the plain float64 sum is the exact sum in any order (vectorized), rounded once into A;
# SUM_WIDE: the exact sum needs more than 53 bits (MX E5M2 squares) or may leave float64's
# range: Neumaier's error-free summation, in order, rounded once.
SUM_TREE, SUM_EXACT, SUM_WIDE = range(3)


@nb.njit(cache=True)
def _gather_from(x3, c, buf):  # type: ignore[no-untyped-def]
    """buf = channel c of an (N, C, HW) array in stream order, as float64 (exact); the
    largest magnitude bits (inf/NaN check). Indexed through one flat view: a view per row
    costs more than a row of a small image, 3-d indexing does not vectorize."""
    nn, cc, hw = x3.shape
    flat = x3.reshape(x3.size)
    top = np.int64(0)
    for a in range(nn):
        src = U((a * cc + c) * hw)
        dst = U(a * hw)
        for k in range(U(hw)):
            v = np.float64(flat[src + k])
            buf[dst + k] = v
            top = max(top, f2i(v) & ABS)
    return top


@nb.njit(cache=True)
def _gather(x64, x32, c, buf):  # type: ignore[no-untyped-def]
    """Channel c of the (N, C, HW) host tensor (float64 ``x64``, or float32 ``x32`` when
    x64 is empty) into stream order; False if it holds an inf or NaN."""
    if x64.shape[0]:
        return _gather_from(x64, c, buf) < INF_BITS
    return _gather_from(x32, c, buf) < INF_BITS


@nb.njit(cache=True)
def _scatter(v, c, out):  # type: ignore[no-untyped-def]
    """out[:, c, :] = v (stream order), converted to out's dtype (rounded to nearest)."""
    nn, cc, hw = out.shape
    flat = out.reshape(out.size)
    for a in range(nn):
        dst = U((a * cc + c) * hw)
        src = U(a * hw)
        for k in range(U(hw)):
            flat[dst + k] = v[src + k]


@nb.njit(cache=True, inline="always")
def _tree(w, lanes, fa):  # type: ignore[no-untyped-def]
    """Pairwise tree over w[:lanes] (a power of two), each node add_A."""
    width = lanes
    while width > 1:
        half = width // 2
        for j in range(half):
            w[j] = add(w[2 * j], w[2 * j + 1], fa)
        width = half
    return w[0]


@nb.njit(cache=True)
def _tree_level(src, dst, count, fa):  # type: ignore[no-untyped-def]
    """dst[k] = add_A(src[2k], src[2k+1]) for k < count: one level of pairwise trees."""
    for k in range(count):
        dst[k] = add(src[2 * k], src[2 * k + 1], fa)


@nb.njit(cache=True)
def _trees(w, tmp, count, lanes, fa):  # type: ignore[no-untyped-def]
    """The pairwise tree (as :func:`_tree`) of each group of ``lanes`` consecutive values of
    w[:count], level by level across all groups (a long loop that vectorizes); returns the
    array whose first count / lanes entries are the groups' sums (``w`` or ``tmp``, whose
    contents are overwritten; tmp holds at least count / 2 values)."""
    src = w
    dst = tmp
    width = lanes
    while width > 1:
        count //= 2
        # a function of its own: vectorized well only where src and dst are not the
        # variables swapped by this loop (measured 3x faster)
        _tree_level(src, dst, count, fa)
        src, dst = dst, src
        width //= 2
    return src


@nb.njit(cache=True)
def _tree_sum(w, tmp, beats, lanes, ways, fa, p):  # type: ignore[no-untyped-def]
    """The channel sum of lane values w (``beats`` beats of ``lanes``, a short last beat padded
    with zeros) by the tree rule: each beat's pairwise tree, then the W-way sum."""
    return _ways_sum(_trees(w, tmp, beats * lanes, lanes, fa), beats, ways, fa, p)


@nb.njit(cache=True)
def _ways_sum(t, count, ways, fa, p):  # type: ignore[no-untyped-def]
    """The W-way sum of t[:count] in order: item i into partial i mod W (``ways`` a power of
    two), then the partials' pairwise tree (section 6)."""
    for r in range(ways):  # (explicit loops: numba's slice assignment costs ~0.5 us)
        p[r] = 0.0
    for i in range(count):
        r = i & (ways - 1)
        p[r] = add(p[r], t[i], fa)
    return _tree(p, ways, fa)


@nb.njit(cache=True, fastmath={"reassoc"})
def _exact_sum(vals, b0, b1, square):  # type: ignore[no-untyped-def]
    """sum(vals[b0:b1]) (or of the squares) where it is exact in any order (SUM_EXACT):
    reassociation lets LLVM vectorize it and cannot change an exact result."""
    t = 0.0
    if square:
        for i in range(b0, b1):
            t += vals[i] * vals[i]
    else:
        for i in range(b0, b1):
            t += vals[i]
    return t


@nb.njit(cache=True, inline="always")
def _wide_sum(vals, b0, b1, square, fa):  # type: ignore[no-untyped-def]
    """The exact sum of vals[b0:b1] (or of the squares) rounded once into A (SUM_WIDE)."""
    t = 0.0
    c = 0.0  # the exact rounding errors of t (Neumaier): t + c is the exact sum
    for i in range(b0, b1):
        u = vals[i] * vals[i] if square else vals[i]
        s = t + u
        bb = s - t
        c += (t - (s - bb)) + (u - bb)
        t = s
    return add(t, c, fa)


@nb.njit(cache=True)
def _channel_sum(vals, n, lanes, ways, rule, square, fa, w, tmp, p):  # type: ignore[no-untyped-def]
    """Channel sum of vals (or of vals^2) by the rules of section 6: beat sums (``rule``) into
    ``ways`` interleaved partials ``p``, then their pairwise tree. Scratch: ``w`` holds
    ceil(n / lanes) * lanes values, ``tmp`` half as many."""
    beats = (n + lanes - 1) // lanes
    if rule == SUM_TREE:
        if square:
            for i in range(n):
                w[i] = mul(vals[i], vals[i], fa)
        else:
            for i in range(n):
                w[i] = rnd(vals[i], fa)
        for i in range(n, beats * lanes):  # the missing lanes of a short last beat
            w[i] = 0.0
        return _tree_sum(w, tmp, beats, lanes, ways, fa, p)
    for b in range(beats):
        b0 = b * lanes
        b1 = min(n, b0 + lanes)
        if rule == SUM_EXACT:
            w[b] = rnd(_exact_sum(vals, U(b0), U(b1), square), fa)
        else:
            w[b] = _wide_sum(vals, b0, b1, square, fa)
    return _ways_sum(w, beats, ways, fa, p)


@nb.njit(cache=True, inline="always")
def _key(v):  # type: ignore[no-untyped-def]
    """An int64 that orders as the float64 v does (no NaN; -0 below +0); its own inverse."""
    b = f2i(v)
    return b ^ ((b >> 63) & ABS)


@nb.njit(cache=True, inline="always")
def _first(v, i0, i1, target):  # type: ignore[no-untyped-def]
    for i in range(U(i0), U(i1)):
        if v[i] == target:
            return np.int64(i)
    return i0


@nb.njit(cache=True)
def _is_constant(v, n):  # type: ignore[no-untyped-def]
    """Standard BN's flag of a constant channel (section 8): every stored value equals the
    first (an integer count of the differences: vectorizes)."""
    first = v[0]
    diff = 0
    for i in range(U(n)):
        diff += v[i] != first
    return diff == 0


@nb.njit(cache=True)
def _range_stats(v, bounds, ways, fa, amax, amin, t, p):  # type: ignore[no-untyped-def]
    """Per chunk the max and min of v and the first index of each (amax, amin), and the W-way
    sums of the chunk maxima and minima (scratch: t, 2K values; p, W values)."""
    kk = bounds.shape[0]
    tmax = t[:kk]
    tmin = t[kk:2 * kk]
    for k in range(kk):
        i0 = bounds[k, 0]
        i1 = bounds[k, 1]
        hi = _key(v[i0])
        lo = hi
        for i in range(U(i0 + 1), U(i1)):  # integer max/min: vectorizes
            q = _key(v[i])
            hi = max(hi, q)
            lo = min(lo, q)
        mx = i2f(_key(i2f(hi)))
        mn = i2f(_key(i2f(lo)))
        # the first index attaining each (float equality: -0 and +0 alike, as the
        # comparisons of the contract)
        amax[k] = _first(v, i0, i1, mx)
        amin[k] = _first(v, i0, i1, mn)
        tmax[k] = rnd(mx, fa)
        tmin[k] = rnd(mn, fa)
    return _ways_sum(tmax, kk, ways, fa, p), _ways_sum(tmin, kk, ways, fa, p)


@nb.njit(cache=True)
def _table(bits, exps, n, st, dec, g, width, nf, slot, tab):  # type: ignore[no-untyped-def]
    """Tables for a per-element function of a stored tensor, if they pay off.

    A channel of a block format whose blocks use few distinct exponent fields holds few
    distinct values: then (at most n / (2 W) fields, W = ``width`` patterns of an element)
    ``tab[:count * W]`` gets the value of every pattern under each field (slot[field] = its
    index) and the count is returned: a function evaluated on those is looked up per element
    (:func:`_lookup`), exactly as if evaluated per element. Otherwise (or ``width`` 0) 0 is
    returned. ``slot`` holds -1 for each of the ``nf`` fields on entry, then room for the
    fields found (:func:`_slots`); ``bits`` are the channel's patterns as int64.
    """
    limit = _table_limit(n, width)
    count = 0
    fields = slot[nf:]
    if limit > 0:
        for k in range((n + g - 1) // g):
            f = exps[k]
            if slot[f] < 0:
                if count == limit:  # too many: evaluate per element
                    for j in range(count):
                        slot[fields[j]] = -1
                    count = 0
                    break
                slot[f] = count
                fields[count] = f
                count += 1
    if count == 0:
        return 0
    pats = np.arange(width)
    fe = np.empty((width + g - 1) // g, np.int64)
    for j in range(count):
        for k in range(fe.size):
            fe[k] = fields[j]
        dec(pats, fe, width, st, tab[j * width:(j + 1) * width])
    return count


@nb.njit(cache=True)
def _table_limit(n, width):  # type: ignore[no-untyped-def]
    """The most exponent fields a channel of n elements gets tables for (:func:`_table`):
    evaluating W patterns per field costs half of evaluating per element at most (a lookup
    costs less than half an evaluation)."""
    return n // (2 * width) if width > 0 else 0


@nb.njit(cache=True, inline="always")
def _at(bits, exps, g, width, slot, tab, i):  # type: ignore[no-untyped-def]
    """The table entry of element i (see :func:`_table`)."""
    return tab[slot[exps[i // g]] * width + bits[i]]


@nb.njit(cache=True)
def _lookup(bits, exps, n, g, width, slot, tab, out):  # type: ignore[no-untyped-def]
    """out[i] = the table entry of element i, for the n elements (see :func:`_table`)."""
    for k in range((n + g - 1) // g):
        base = U(slot[exps[k]] * width)
        for i in range(U(k * g), U(min(n, k * g + g))):
            out[i] = tab[base + U(bits[i])]


# The lanes' per-element arithmetic, each loop a function of its own (LLVM vectorizes them
# better than when they are inlined into the kernels).


@nb.njit(cache=True)
def _lanes_normalize(v, m, sc, sh, fp, out):  # type: ignore[no-untyped-def]
    """The affine form: out[:m] = add_P(mul_P(cvt_P(v), scale), shift) (scale, shift in P)."""
    for i in range(m):
        out[i] = add(mul(rnd(v[i], fp), sc, fp), sh, fp)


@nb.njit(cache=True)
def _lanes_centered(v, m, mu, sc, b, fp, out):  # type: ignore[no-untyped-def]
    """The centered form: out[:m] = add_P(mul_P(sub_P(cvt_P(v), mu), scale), beta) (mu,
    scale, beta in P)."""
    for i in range(m):
        out[i] = add(mul(sub(rnd(v[i], fp), mu, fp), sc, fp), b, fp)


@nb.njit(cache=True, inline="always")
def _normalize(v, m, centered, fin, c, fp, out):  # type: ignore[no-untyped-def]
    """The normalize lanes of channel c in the spec's form (docs/numerics.md section 8)."""
    if centered:
        _lanes_centered(v, m, fin[F_MEAN_P, c], fin[F_SCALE_P, c], fin[F_BETA_P, c], fp, out)
    else:
        _lanes_normalize(v, m, fin[F_SCALE_P, c], fin[F_SHIFT_P, c], fp, out)


@nb.njit(cache=True, inline="always")
def _xhat(x, m, s, fp):  # type: ignore[no-untyped-def]
    """x_hat of a stored x: mul_P(sub_P(cvt_P(x), mu), inv_sigma) (mu, inv_sigma in P)."""
    return mul(sub(rnd(x, fp), m, fp), s, fp)


@nb.njit(cache=True)
def _lanes_xhat(v, m, mu, s, fp, fa, out):  # type: ignore[no-untyped-def]
    """out[:m] = cvt_A(x_hat(v)): x_hat as the accumulator reads it."""
    for i in range(m):
        out[i] = rnd(_xhat(v[i], mu, s, fp), fa)


@nb.njit(cache=True)
def _lanes_products(dv, xh, w, n, size, fa):  # type: ignore[no-untyped-def]
    """w[:n] = mul_A(cvt_A(dy), xh) (xh: cvt_A(x_hat)), w[n:size] = 0 (a short last beat)."""
    for i in range(n):
        w[i] = mul(rnd(dv[i], fa), xh[i], fa)
    for i in range(n, size):
        w[i] = 0.0


@nb.njit(cache=True, inline="always")
def _rnd_scaled(s, k, fa):  # type: ignore[no-untyped-def]
    """rnd_A(s * 2^k) for an integer |s| < 2^53 (exact in float64) and any k: where the
    float64 product is inexact (below float64's normal range), round-to-odd first."""
    v = np.float64(s)
    t = math.ldexp(v, k)
    err = v - math.ldexp(t, -k)  # both integers below 2^53 (or t is 0 or inf): exact
    return rnd(fpnum.to_odd(t, err), fa)


@nb.njit(cache=True)
def _dot_sum(xb, xe, xst, db, de, dst, n, lanes, ways, fa, w, p):  # type: ignore[no-untyped-def]
    """The channel sum of x * dy for x and dy both BFP (docs/numerics.md sections 6 and 9):
    per beat the exact integer sum of the products of the signed mantissas (patterns xb, db;
    exponent fields xe, de per block) times 2^((Ex - mx + 1) + (Ey - my + 1)), rounded once
    into A; then the W-way sum. |M| < 2^23 and at most 64 lanes: the integer sum is below
    2^52."""
    beats = (n + lanes - 1) // lanes
    mx = xst[B_MAN]
    my = dst[B_MAN]
    xmask = (np.int64(1) << mx) - 1
    ymask = (np.int64(1) << my) - 1
    for b in range(beats):
        b0 = b * lanes
        acc = np.int64(0)
        for i in range(U(b0), U(min(n, b0 + lanes))):
            u = xb[i]
            v = db[i]
            q = (u & xmask) * (v & ymask)
            acc += -q if ((u >> mx) ^ (v >> my)) & 1 else q
        k = (xe[b0 // xst[B_BLOCK]] - xst[B_BIAS] - mx + 1) \
            + (de[b0 // dst[B_BLOCK]] - dst[B_BIAS] - my + 1)
        w[b] = _rnd_scaled(acc, k, fa) if acc != 0 else 0.0
    return _ways_sum(w, beats, ways, fa, p)


@nb.njit(cache=True)
def _lanes_dx(dv, xv, n, mdb, mdg, mu, s, sc, fp, out):  # type: ignore[no-untyped-def]
    """Standard BN: out[:n] = mul_P(scale, sub_P(sub_P(cvt_P(dy), mdb), mul_P(x_hat, mdg)))."""
    for i in range(n):
        g = sub(sub(rnd(dv[i], fp), mdb, fp), mul(_xhat(xv[i], mu, s, fp), mdg, fp), fp)
        out[i] = mul(sc, g, fp)


@nb.njit(cache=True)
def _lanes_dx_range(dv, m, mdb, sc, fp, g, out):  # type: ignore[no-untyped-def]
    """Range BN: g[:m] = sub_P(cvt_P(dy), mdb), out[:m] = mul_P(scale, g)."""
    for i in range(m):
        gi = sub(rnd(dv[i], fp), mdb, fp)
        g[i] = gi
        out[i] = mul(sc, gi, fp)


#: arrays in one channel's scratch block (:func:`_scratch`)
SCRATCH_PARTS = 8


@nb.njit(cache=True, inline="always")
def _scratch(size):  # type: ignore[no-untyped-def]
    """One channel's scratch: SCRATCH_PARTS arrays of ``size`` float64 in one allocation, whose
    starts lie 4096 / SCRATCH_PARTS bytes apart modulo 4096 (part j: :func:`_part`).

    Separate allocations of one size start at nearly the same address modulo 4 KiB; a loop
    that loads from one and stores into another then stalls on 4K aliasing (a store looks as
    if it overlapped a later load): measured up to 4x slower encoders and lookups."""
    stride = (size + 511) // 512 * 512 + 512 // SCRATCH_PARTS
    return np.empty(SCRATCH_PARTS * stride, np.float64), stride


@nb.njit(cache=True, inline="always")
def _part(blk, stride, j, size):  # type: ignore[no-untyped-def]
    return blk[j * stride:j * stride + size]


# ---- per-channel arithmetic (format S) -------------------------------------------------------

# Rows of the per-channel values of the finalize unit (:func:`_finalize`): values of S, then
# the same values converted into P for the lanes (cvt_P).
(F_GAMMA, F_BETA, F_MEAN, F_DISP, F_INV_SIGMA, F_SCALE, F_SHIFT, F_RUN_MEAN, F_RUN_DISP,
 F_MEAN_P, F_INV_SIGMA_P, F_SCALE_P, F_SHIFT_P, F_BETA_P) = range(14)
# Rows of the host's per-channel inputs of :func:`_finalize`: gamma, beta, running mean,
# running dispersion
(H_GAMMA, H_BETA, H_RUN_MEAN, H_RUN_DISP) = range(4)


@nb.njit(cache=True)
def _finalize(c, host, stats, mode, flat, rc, fs, fsn, fp, out):  # type: ignore[no-untyped-def]
    """The finalize unit of channel c (docs/numerics.md section 8), and its running statistics
    update; ``flat``: standard BN's flag of a constant channel; ``rc``: inv_n, c_k, eps,
    momentum, unbias; ``fsn``: S with nearest (host values)."""
    inv_n, c_k, eps, mom, unb = rc
    g = rnd(host[H_GAMMA, c], fsn)
    b = rnd(host[H_BETA, c], fsn)
    mu = mul(rnd(stats[c, ST_SUM], fs), inv_n, fs)
    constant = flat  # standard BN: the flag; range BN: rng = 0 (section 10)
    if mode == 0:
        ex2 = mul(rnd(stats[c, ST_SUMSQ], fs), inv_n, fs)
        disp = 0.0 if flat else max(sub(ex2, mul(mu, mu, fs), fs), 0.0)
        den = fpnum.sqrt(add(disp, eps, fs), fs)
        v = mul(disp, unb, fs)  # unbiased, for the running variance
    else:
        rng_ = sub(rnd(stats[c, ST_SMAX], fs), rnd(stats[c, ST_SMIN], fs), fs)
        disp = mul(rng_, c_k, fs)
        den = add(disp, eps, fs)
        v = disp
        constant = rng_ == 0.0
    # a constant channel: inv_sigma = +0, so y = beta and dx = +0 (section 10)
    inv_sigma = 0.0 if constant else fpnum.recip(den, fs)
    scale = mul(g, inv_sigma, fs)
    shift = sub(b, mul(mu, scale, fs), fs)
    rm = rnd(host[H_RUN_MEAN, c], fsn)
    rd = rnd(host[H_RUN_DISP, c], fsn)
    out[F_GAMMA, c] = g
    out[F_BETA, c] = b
    out[F_MEAN, c] = mu
    out[F_DISP, c] = disp
    out[F_INV_SIGMA, c] = inv_sigma
    out[F_SCALE, c] = scale
    out[F_SHIFT, c] = shift
    out[F_RUN_MEAN, c] = add(rm, mul(mom, sub(mu, rm, fs), fs), fs)
    out[F_RUN_DISP, c] = add(rd, mul(mom, sub(v, rd, fs), fs), fs)
    out[F_MEAN_P, c] = rnd(mu, fp)
    out[F_INV_SIGMA_P, c] = rnd(inv_sigma, fp)
    out[F_SCALE_P, c] = rnd(scale, fp)
    out[F_SHIFT_P, c] = rnd(shift, fp)
    out[F_BETA_P, c] = rnd(b, fp)  # (the centered normalize form)


# Rows of the backward pass's per-channel values (:func:`_grad_scalars`): the two sums (A),
# dbeta, dgamma (S), then in P: mean(dy), the correction of standard BN (mean(dy * x_hat))
# and of range BN (dgamma * c_k); the correction a mode does not use is 0
# (BFP-native backward: G_SUM_DY_XHAT holds the sum of x * dy instead)
G_SUM_DY, G_SUM_DY_XHAT, G_DBETA, G_DGAMMA, G_MDB_P, G_MDG_P, G_COR_P = range(7)


@nb.njit(cache=True)
def _grad_scalars(c, mode, dot, rc, fs, fp, fin, out):  # type: ignore[no-untyped-def]
    """Backward, channel c (section 9): dbeta, dgamma and the scalars of pass 2 from the sums
    in out[G_SUM_DY], out[G_SUM_DY_XHAT] (``dot``: the BFP-native form, where the second is
    the sum of x * dy and dgamma = inv_sigma (sum x dy - mu sum dy) in S)."""
    inv_n, c_k = rc[0], rc[1]
    db = rnd(out[G_SUM_DY, c], fs)
    dg = rnd(out[G_SUM_DY_XHAT, c], fs)
    if dot:
        dg = mul(fin[F_INV_SIGMA, c], sub(dg, mul(fin[F_MEAN, c], db, fs), fs), fs)
    out[G_DBETA, c] = db
    out[G_DGAMMA, c] = dg
    out[G_MDB_P, c] = rnd(mul(db, inv_n, fs), fp)
    out[G_MDG_P, c] = rnd(mul(dg, inv_n, fs), fp) if mode == 0 else 0.0
    out[G_COR_P, c] = rnd(mul(dg, c_k, fs), fp) if mode == 1 else 0.0


# ---- the two kernels ------------------------------------------------------------------------
#
# Every channel is independent of the others, so each kernel runs all the stages of one
# channel in a row (the hardware's passes, channel by channel) while its values are in cache:
# forward = statistics pass, finalize, normalize pass; backward = pass 1, per-channel scalars,
# pass 2. Only the encoded patterns are kept between forward and backward, as in hardware.

# Argument types of the kernels (see lightnorm.verify.kernels.typed).
INT = nb.types.int64
VOID = nb.types.void
B1D = nb.types.boolean[::1]
RC = nb.types.UniTuple(nb.types.float64, 5)
# A stored tensor that a kernel reads: its patterns (bytes of words, and the word size),
# exponent fields, format parameters, decoder, block size, the number of element patterns
# (0: no tables, :func:`_table`), of exponent fields, and the tables' per-channel slot arrays
# (:func:`_slots`); one that it writes: format parameters, encoder, patterns (bytes, word
# size), exponent fields, and (for its tables) its decoder, block size, element patterns,
# exponent fields and slots.
READ = (U8_2D, INT, I64_2D, ST, DECODER, INT, INT, INT, I64_2D)
WRITE = (ST, ENCODER, U8_2D, INT, I64_2D)
TABLES = (DECODER, INT, INT, INT, I64_2D)


@typed(VOID(F64_3D, F32_3D, INT, *WRITE, *TABLES, INT, INT, INT, INT, INT, I64_2D, FP, FP, FP, FP,
            RC, F64_2D, F64_2D, F64_2D, I64_2D, I64_2D, B1D, F64_2D, INT, INT, *WRITE, F32_3D,
            INT), parallel=True)
def _forward_kernel(x64, x32, n, st, enc, xraw, xsize,  # type: ignore[no-untyped-def]
                    xexps, xdec, xg, xw, xf, xslots, rule, rule_sq, lanes, ways, mode, bounds,
                    fa, fs, fsn, fp, rc, host, stats, fin, amax, amin, ok, pw, normalize,
                    centered, yst, yenc, yraw, ysize, yexps, y32, groups):
    """Per channel: encode x (its family's encoder ``enc``), the statistics (sum, sumsq or
    chunk max/min and their W-way averages), finalize, and (``normalize``) the normalize
    lanes (``centered``: that form, else the affine) encoded into y's storage, and y's
    values into ``y32`` (NCHW float32) unless it is empty; ok[c]: channel c was finite.
    The host tensor x: (N, C, HW) float64 ``x64``, or float32 ``x32`` when x64 is empty."""
    beats = (n + lanes - 1) // lanes
    xpad = xraw.shape[1] // xsize
    ypad = yraw.shape[1] // ysize if normalize else 0
    size = max(xpad, ypad, beats * lanes)
    for grp in nb.prange(groups):  # a few groups of channels per thread: one scratch
        blk, stride = _scratch(size)  # allocation per group, not per channel
        buf = _part(blk, stride, 0, n)
        v = _part(blk, stride, 1, n)
        w = _part(blk, stride, 2, beats * lanes)
        tmp = _part(blk, stride, 3, beats * lanes // 2 + 1)
        xb = _part(blk, stride, 4, xpad).view(np.int64)
        for c in range(grp * fin.shape[1] // groups, (grp + 1) * fin.shape[1] // groups):
            p = pw[c]
            ok[c] = _gather(x64, x32, c, buf)
            enc(buf, n, st, v, xb, xexps[c])
            narrow(xb, xsize, xraw[c])
            stats[c, ST_SUM] = _channel_sum(v, n, lanes, ways, rule, False, fa, w, tmp, p)
            if mode == 0:
                stats[c, ST_SUMSQ] = _channel_sum(v, n, lanes, ways, rule_sq, True, fa, w, tmp, p)
                flat = _is_constant(v, n)
            else:
                flat = False
                smax, smin = _range_stats(v, bounds, ways, fa, amax[c], amin[c], w, p)
                stats[c, ST_SMAX] = smax
                stats[c, ST_SMIN] = smin
            _finalize(c, host, stats, mode, flat, rc, fs, fsn, fp, fin)
            if not normalize:
                continue
            slot = xslots[c]
            cnt = _table(xb, xexps[c], n, st, xdec, xg, xw, xf, slot, w)
            if cnt:
                _normalize(w, cnt * xw, centered, fin, c, fp, tmp)
                _lookup(xb, xexps[c], n, xg, xw, slot, tmp, buf)
            else:
                _normalize(v, n, centered, fin, c, fp, buf)
            yb = _part(blk, stride, 5, ypad).view(np.int64)
            yenc(buf, n, yst, v, yb, yexps[c])  # y's values
            narrow(yb, ysize, yraw[c])
            if y32.shape[0]:
                _scatter(v, c, y32)


@typed(VOID(F64_3D, F32_3D, INT, *WRITE, *TABLES, INT, INT, INT, *READ, INT, INT, RC, FP, FP, FP,
            F64_2D, I64_2D, I64_2D, F64_2D, B1D, F64_2D, *WRITE, F32_3D, INT), parallel=True)
def _backward_kernel(dy64, dy32, n, st, enc, dyraw, dysize,  # type: ignore[no-untyped-def]
                     dyexps, dydec, dyg, dyw, dyf, dyslots, rule, lanes, ways, xraw, xsize,
                     xexps, xst, xdec, xg, xw, xf, xslots, mode, dot, rc, fs, fp, fa, fin, amax,
                     amin,
                     gs, ok, pw, dxst, dxenc, dxraw, dxsize, dxexps, dx32, groups):
    """Per channel: pass 1 (encode dy, x_hat lanes, sum(dy) and sum(dy * x_hat); ``dot``: the
    BFP-native form, sum(dy) and the exact beat sums of x * dy, no x_hat), the
    per-channel scalars (into gs), pass 2 (dx lanes encoded into dx's storage, and dx's
    values into ``dx32`` (NCHW float32) unless it is empty); ok[c]: channel c of dy was
    finite. dy as the forward kernel's x (``dy64``, ``dy32``)."""
    beats = (n + lanes - 1) // lanes
    dypad = dyraw.shape[1] // dysize
    xpad = xraw.shape[1] // xsize
    dxpad = dxraw.shape[1] // dxsize
    size = max(dypad, xpad, dxpad, beats * lanes)
    for grp in nb.prange(groups):  # a few groups of channels per thread: one scratch
        blk, stride = _scratch(size)  # allocation per group, not per channel
        buf = _part(blk, stride, 0, n)  # dy as given; then x and its x_hat table
        dv = _part(blk, stride, 1, n)  # dy's values
        w = _part(blk, stride, 2, beats * lanes)  # lane products dy * x_hat
        tmp = _part(blk, stride, 3, beats * lanes // 2 + 1)
        db = _part(blk, stride, 4, dypad).view(np.int64)  # dy's patterns
        xb = _part(blk, stride, 5, xpad).view(np.int64)  # x's patterns
        xh = _part(blk, stride, 6, n)  # cvt_A(x_hat); then the dx lanes
        t = _part(blk, stride, 7, n)  # tables; then dx's values
        for c in range(grp * gs.shape[1] // groups, (grp + 1) * gs.shape[1] // groups):
            p = pw[c]
            ok[c] = _gather(dy64, dy32, c, buf)
            enc(buf, n, st, dv, db, dyexps[c])
            narrow(db, dysize, dyraw[c])
            gs[G_SUM_DY, c] = _channel_sum(dv, n, lanes, ways, rule, False, fa, w, tmp, p)
            widen(xraw[c], xsize, xb)
            mu = fin[F_MEAN_P, c]
            isig = fin[F_INV_SIGMA_P, c]
            xcnt = 0
            if dot:
                gs[G_SUM_DY_XHAT, c] = _dot_sum(xb, xexps[c], xst, db, dyexps[c], st, n, lanes,
                                                ways, fa, w, p)
            else:  # x_hat (as the accumulator reads it), from tables or per element
                xslot = xslots[c]
                xcnt = _table(xb, xexps[c], n, xst, xdec, xg, xw, xf, xslot, buf)
                if xcnt:
                    _lanes_xhat(buf, xcnt * xw, mu, isig, fp, fa, t)
                    _lookup(xb, xexps[c], n, xg, xw, xslot, t, xh)
                else:
                    xdec(xb, xexps[c], n, xst, buf)
                    _lanes_xhat(buf, n, mu, isig, fp, fa, xh)
                _lanes_products(dv, xh, w, n, beats * lanes, fa)
                gs[G_SUM_DY_XHAT, c] = _tree_sum(w, tmp, beats, lanes, ways, fa, p)
            _grad_scalars(c, mode, dot, rc, fs, fp, fin, gs)
            sc = fin[F_SCALE_P, c]
            mdb = gs[G_MDB_P, c]
            if mode == 0:
                if xcnt or dot:  # x's values are needed after all
                    xdec(xb, xexps[c], n, xst, buf)
                _lanes_dx(dv, buf, n, mdb, gs[G_MDG_P, c], mu, isig, sc, fp, xh)
            else:
                # dx = scale * (dy - mean(dy)) but at the argmax/argmin of each chunk, which get
                # -/+ cor before the product (both: nothing, the first index wins); g = dy -
                # mean(dy) per element (or per pattern: tables of dy)
                slot = dyslots[c]
                cnt = _table(db, dyexps[c], n, st, dydec, dyg, dyw, dyf, slot, t)
                g = tmp  # g of each pattern (tables; tmp is free after the tree sums) ...
                if cnt:
                    _lanes_dx_range(t, cnt * dyw, mdb, sc, fp, g, w)
                    _lookup(db, dyexps[c], n, dyg, dyw, slot, w, xh)
                else:
                    g = t  # ... or of each element
                    _lanes_dx_range(dv, n, mdb, sc, fp, g, xh)
                cor = gs[G_COR_P, c]
                for k in range(amax.shape[1]):
                    ia = amax[c, k]
                    ib = amin[c, k]
                    if ia != ib:
                        ga = _at(db, dyexps[c], dyg, dyw, slot, g, ia) if cnt else g[ia]
                        gb = _at(db, dyexps[c], dyg, dyw, slot, g, ib) if cnt else g[ib]
                        xh[ia] = mul(sc, sub(ga, cor, fp), fp)
                        xh[ib] = mul(sc, sub(gb, -cor, fp), fp)
            ob = _part(blk, stride, 5, dxpad).view(np.int64)  # (x's patterns: done)
            dxenc(xh, n, dxst, t, ob, dxexps[c])  # dx's values
            narrow(ob, dxsize, dxraw[c])
            if dx32.shape[0]:
                _scatter(t, c, dx32)


@dataclass(frozen=True)
class Statistics:
    """What the statistics pass and finalize produce for each channel (values of S)."""

    x_enc: Encoded
    mean: np.ndarray
    dispersion: np.ndarray  # variance (standard) or sigma_hat (range)
    inv_sigma: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    argmax: np.ndarray  # (C, K) first index of each chunk's max (range BN)
    argmin: np.ndarray
    raw: np.ndarray  # (C, 4) accumulator values: sum, sumsq, sum of chunk max, of chunk min
    final: np.ndarray  # (14, C) every row of :func:`_finalize`


@functools.lru_cache(maxsize=256)
def _sum_rule(fmt: StorageFormat, lanes: int, square: bool) -> int:
    """How the statistics pass sums a beat of ``fmt`` values (or of their squares): SUM_TREE,
    SUM_EXACT or SUM_WIDE (see the kernels)."""
    if not fmt.exact_beat_sum:
        return SUM_TREE
    power = 2 if square else 1
    log_lanes = lanes.bit_length() - 1  # lanes is a power of two
    # every partial sum is an integer below 2^53 times the beat's grid (>= the float64
    # subnormal step 2^-1074) and stays below float64's largest finite value
    exact = (power * kernel(fmt).grid_bits(fmt) + log_lanes <= 53
             and power * fmt.lsb_exp >= -1074
             and power * math.log2(fmt.max_value) + log_lanes < 1023)
    return SUM_EXACT if exact else SUM_WIDE


#: element patterns up to this width get per-channel tables (:func:`_table`)
TABLE_WIDTH = 10


def _tables(fmt: StorageFormat, c: int, n: int) -> tuple[Any, ...]:
    """What :func:`_table` needs of a stored tensor of c channels (``TABLES``): decoder, block
    size, element patterns (0: no tables: not a block format, or too wide), exponent fields,
    and per channel the slot of each field (-1) with room for the fields found (a placeholder
    where tables cannot pay off)."""
    width = 1 << fmt.element_width if fmt.shared_exp_width and \
        fmt.element_width <= TABLE_WIDTH else 0
    nf = 1 << fmt.shared_exp_width
    limit = _table_limit(n, width)
    slots = np.full((c, nf + limit), -1, np.int64) if limit else np.zeros((c, 1), np.int64)
    return decoder(fmt), fmt.block, width, nf, slots


def _read(enc: Encoded) -> tuple[Any, ...]:
    """A stored tensor as a kernel reads it (``READ``)."""
    c = enc.patterns.shape[0]
    exps = enc.exps if enc.exps is not None else np.zeros((c, 1), np.uint64)
    return (raw_bytes(enc.patterns), enc.patterns.dtype.itemsize, exps.view(np.int64),
            codec(enc.fmt)[1], *_tables(enc.fmt, c, enc.n))


class _Output:
    """A tensor a kernel writes: its arrays, the kernel's ``WRITE`` arguments, and the
    Encoded tensor they hold once written."""

    def __init__(self, fmt: StorageFormat, c: int, n: int) -> None:
        self.fmt, self.n = fmt, n
        self.raw, self.exps = empty_patterns(fmt, c, n)

    def args(self) -> tuple[Any, ...]:
        size = self.raw.shape[1] // self.fmt.padded_length(self.n)
        return codec(self.fmt)[1], encoder(self.fmt), self.raw, size, self.exps

    def encoded(self) -> Encoded:
        return make_encoded(self.fmt, self.n, None, self.raw, self.exps)


def _host_tensor(a: np.ndarray) -> np.ndarray:
    """A host tensor as contiguous float64, or float32 as given (the kernels read both, exactly;
    they check it for inf and NaN)."""
    a = np.asarray(a)
    if a.dtype == np.float32 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=np.float64)


def _groups(c: int) -> int:
    """How many groups of channels a kernel runs in parallel (``groups``): four per thread
    balance the threads; each group allocates its scratch once."""
    return min(c, 4 * nb.get_num_threads())


def _tensor_args(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An NCHW host tensor as the kernels read it: (N, C, H*W) float64, or an empty float64
    array and the float32 one."""
    n_, c, h, w = a.shape
    a3 = a.reshape(n_, c, h * w)
    if a.dtype == np.float32:
        return np.empty((0, 0, 0)), a3
    return a3, np.empty((0, 0, 0), np.float32)


def _values_out(out: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    """An optional NCHW float32 output of the kernels, as they take it ((N, C, H*W), or empty
    for none)."""
    if out is None:
        return np.empty((0, 0, 0), np.float32)
    if out.dtype != np.float32 or out.shape != shape or not out.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous float32 array of shape {shape}, got "
                         f"{out.dtype} {out.shape}")
    n_, c, h, w = shape
    return out.reshape(n_, c, h * w)


def _check_ok(name: str, ok: np.ndarray) -> None:
    """The error of :func:`lightnorm.verify.encoding.check_finite`, from the kernels' check."""
    if not ok.all():
        raise ValueError(f"{name} contains inf or NaN: the formats have no encoding for them")


def _check_shape(spec: Spec, x: np.ndarray, name: str) -> tuple[int, int, int, int]:
    if x.ndim != 4:
        raise ValueError(f"{name} must be an NCHW array, got shape {x.shape}")
    n_, c, h, w = x.shape
    check_channel_elems(spec, n_ * h * w)
    return n_, c, h, w


def _host_values(c: int, **values: np.ndarray | float) -> np.ndarray:
    """Per-channel host values (a scalar or C values each) as rows of a (len, C) array; inf
    and NaN are errors naming the value."""
    out = np.empty((len(values), c), np.float64)
    for i, a in enumerate(values.values()):
        out[i] = a
    if not np.isfinite(out).all():
        name = list(values)[int(np.argwhere(~np.isfinite(out))[0, 0])]
        raise ValueError(f"{name} contains inf or NaN: the formats have no encoding for them")
    return out


def _forward(spec: Spec, x: np.ndarray, host: np.ndarray, rc: RunConstants, normalize: bool,
             y_out: np.ndarray | None = None) -> tuple[Statistics, Encoded | None]:
    """The statistics pass over x, the finalize unit (``host``: rows H_*) and, if
    ``normalize``, the normalize pass (y's values also into ``y_out``, if given)."""
    n_, c, h, w = x.shape
    n = n_ * h * w
    mode = 0 if spec.bn.mode == "standard" else 1
    k = spec.bn.chunks
    lanes, fx = spec.hw.lanes, spec.storage.x
    xo = _Output(fx, c, n)
    yo = _Output(spec.storage.y, c if normalize else 0, n)
    stats = np.zeros((c, 4), np.float64)
    fin = np.empty((F_BETA_P + 1, c), np.float64)
    amax = np.zeros((c, k), np.int64)
    amin = np.zeros((c, k), np.int64)
    ok = np.empty(c, np.bool_)
    _forward_kernel(*_tensor_args(x), n, *xo.args(), *_tables(fx, c, n),
                    _sum_rule(fx, lanes, False), _sum_rule(fx, lanes, True), lanes,
                    spec.hw.accum_ways, mode, _chunk_bounds(n, lanes, k),
                    fpnum.fp_params(spec.accum), fpnum.fp_params(spec.scalar),
                    fpnum.fp_params(spec.scalar, "nearest"), fpnum.fp_params(spec.compute),
                    rc.values, host, stats, fin, amax, amin, ok,
                    np.empty((c, spec.hw.accum_ways)), int(normalize),
                    int(spec.bn.normalize == "centered"), *yo.args(),
                    _values_out(y_out, x.shape, "y_out"), _groups(c))
    _check_ok("x", ok)
    stt = Statistics(xo.encoded(), fin[F_MEAN], fin[F_DISP], fin[F_INV_SIGMA], fin[F_SCALE],
                     fin[F_SHIFT], amax, amin, stats, fin)
    return stt, yo.encoded() if normalize else None


@functools.lru_cache(maxsize=64)
def _chunk_bounds(n: int, lanes: int, chunks: int) -> np.ndarray:
    bounds = np.array(chunk_bounds(n, lanes, chunks), dtype=np.int64)
    return bounds


def _bits(a: np.ndarray, fmt: FPFormat) -> np.ndarray:
    return fpnum.encode_array(a, fmt)


@dataclass(frozen=True)
class ForwardResult:
    """Training-mode forward. Per-channel values are values of the scalar format S."""

    x_enc: Encoded
    y_enc: Encoded
    shape: tuple[int, int, int, int]
    mean: np.ndarray
    dispersion: np.ndarray  # biased variance (standard) or sigma_hat (range)
    inv_sigma: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    gamma: np.ndarray  # gamma and beta as rounded into S
    beta: np.ndarray
    running_mean: np.ndarray
    running_var: np.ndarray | None  # standard BN
    running_sigma: np.ndarray | None  # range BN
    constants: RunConstants
    scalar_fmt: FPFormat
    stats: Statistics  # what the backward pass reuses (the hardware keeps it on chip)

    @cached_property
    def y(self) -> np.ndarray:
        """Decoded output values, NCHW."""
        return self.y_enc.nchw(self.shape)

    @cached_property
    def x_values(self) -> np.ndarray:
        """The input as stored (after storage quantization), NCHW."""
        return self.x_enc.nchw(self.shape)

    def _b(self, a: np.ndarray) -> np.ndarray:
        return _bits(a, self.scalar_fmt)

    @property
    def mean_bits(self) -> np.ndarray:
        return self._b(self.mean)

    @property
    def inv_sigma_bits(self) -> np.ndarray:
        return self._b(self.inv_sigma)

    @property
    def scale_bits(self) -> np.ndarray:
        return self._b(self.scale)

    @property
    def shift_bits(self) -> np.ndarray:
        return self._b(self.shift)

    @property
    def gamma_bits(self) -> np.ndarray:
        return self._b(self.gamma)

    @property
    def beta_bits(self) -> np.ndarray:
        return self._b(self.beta)

    @property
    def dispersion_bits(self) -> np.ndarray:
        return self._b(self.dispersion)


def forward(spec: Spec, x: np.ndarray, gamma: np.ndarray | float = 1.0,
            beta: np.ndarray | float = 0.0, *, running_mean: np.ndarray | None = None,
            running_disp: np.ndarray | None = None,
            y_out: np.ndarray | None = None) -> ForwardResult:
    """Training-mode forward of BN on an NCHW tensor (float64, or float32: read exactly), as
    the hardware computes it.

    ``running_disp`` is the running variance (standard BN) or running sigma (range BN);
    running statistics default to 0 and 1. ``y_out``: an NCHW float32 array that also gets
    y's values (each rounded to nearest), written by the same pass.
    """
    x = _host_tensor(x)  # inf and NaN are found by the statistics pass
    n_, c, h, w = _check_shape(spec, x, "x")
    n = n_ * h * w
    rc = constants(spec, n)
    host = _host_values(
        c, gamma=gamma, beta=beta,
        running_mean=0.0 if running_mean is None else running_mean,
        running_disp=1.0 if running_disp is None else running_disp)
    stt, y_enc = _forward(spec, x, host, rc, normalize=True, y_out=y_out)
    assert y_enc is not None
    fin = stt.final
    std = spec.bn.mode == "standard"
    new_rd = fin[F_RUN_DISP]
    return ForwardResult(
        x_enc=stt.x_enc, y_enc=y_enc, shape=(n_, c, h, w), mean=stt.mean, dispersion=stt.dispersion,
        inv_sigma=stt.inv_sigma, scale=stt.scale, shift=stt.shift, gamma=fin[F_GAMMA],
        beta=fin[F_BETA], running_mean=fin[F_RUN_MEAN], running_var=new_rd if std else None,
        running_sigma=None if std else new_rd, constants=rc, scalar_fmt=spec.scalar,
        stats=stt,
    )


@dataclass(frozen=True)
class BackwardResult:
    x_enc: Encoded
    dy_enc: Encoded
    dx_enc: Encoded
    shape: tuple[int, int, int, int]
    dgamma: np.ndarray  # values of S
    dbeta: np.ndarray
    mean: np.ndarray
    inv_sigma: np.ndarray
    scalar_fmt: FPFormat

    @cached_property
    def dx(self) -> np.ndarray:
        """Decoded dx, NCHW."""
        return self.dx_enc.nchw(self.shape)

    @cached_property
    def dy_values(self) -> np.ndarray:
        """The incoming gradient as stored (after storage quantization), NCHW."""
        return self.dy_enc.nchw(self.shape)

    @property
    def dgamma_bits(self) -> np.ndarray:
        return _bits(self.dgamma, self.scalar_fmt)

    @property
    def dbeta_bits(self) -> np.ndarray:
        return _bits(self.dbeta, self.scalar_fmt)


def backward(spec: Spec, x: np.ndarray | None, dy: np.ndarray,
             gamma: np.ndarray | float = 1.0, beta: np.ndarray | float = 0.0, *,
             saved: ForwardResult | None = None,
             dx_out: np.ndarray | None = None) -> BackwardResult:
    """Training-mode backward (dx, dgamma, dbeta) as the hardware computes it (x and dy
    float64, or float32: read exactly).

    ``saved``: the forward result of the same x, gamma and beta, whose statistics are reused
    (as the hardware keeps them from the forward pass); without it they are recomputed.
    With ``saved``, x itself is not read again (only its shape is checked) and may be None.
    ``dx_out``: an NCHW float32 array that also gets dx's values (each rounded to nearest).
    """
    dy = _host_tensor(dy)  # inf and NaN: found by pass 1 (and in x by the statistics pass)
    if x is None:
        if saved is None:
            raise ValueError("backward needs x, or the forward result of x (saved=)")
        shape = saved.shape
    else:
        x = _host_tensor(x)
        shape = x.shape
    n_, c, h, w = _check_shape(spec, dy, "dy")
    if dy.shape != shape:
        raise ValueError(f"dy has shape {dy.shape}, x has {shape}")
    n = n_ * h * w
    rc = constants(spec, n)
    host = _host_values(c, gamma=gamma, beta=beta, running_mean=0.0, running_disp=1.0)
    if saved is not None:
        gb = fpnum.round_array(host[:2], spec.scalar, "nearest")
        if saved.shape != shape or not (np.array_equal(saved.gamma, gb[0])
                                            and np.array_equal(saved.beta, gb[1])):
            raise ValueError("saved forward result is for another x, gamma or beta")
        stt = saved.stats
    else:
        assert x is not None
        stt = _forward(spec, x, host, rc, normalize=False)[0]
    fin = stt.final
    mode = 0 if spec.bn.mode == "standard" else 1
    lanes = spec.hw.lanes
    dyo = _Output(spec.storage.dy, c, n)
    dxo = _Output(spec.storage.dx, c, n)
    gs = np.empty((7, c), np.float64)
    ok = np.empty(c, np.bool_)
    _backward_kernel(*_tensor_args(dy), n, *dyo.args(), *_tables(spec.storage.dy, c, n),
                     _sum_rule(spec.storage.dy, lanes, False), lanes, spec.hw.accum_ways,
                     *_read(stt.x_enc), mode, int(spec.exact_dot), rc.values,
                     fpnum.fp_params(spec.scalar), fpnum.fp_params(spec.compute),
                     fpnum.fp_params(spec.accum), fin,
                     stt.argmax, stt.argmin, gs, ok, np.empty((c, spec.hw.accum_ways)),
                     *dxo.args(), _values_out(dx_out, dy.shape, "dx_out"), _groups(c))
    _check_ok("dy", ok)
    return BackwardResult(
        x_enc=stt.x_enc, dy_enc=dyo.encoded(), dx_enc=dxo.encoded(), shape=(n_, c, h, w),
        dgamma=gs[G_DGAMMA], dbeta=gs[G_DBETA], mean=stt.mean, inv_sigma=stt.inv_sigma,
        scalar_fmt=spec.scalar,
    )


def compile_kernels() -> int:
    """Compile every golden kernel (this module's and :mod:`.encoding`'s) and every family's
    encoder and decoder into numba's on-disk cache, or load them from it; returns how many.

    ``scripts/setup.sh`` calls it once. Otherwise the first process of a fresh checkout to touch
    the golden model compiles them (about 35 CPU-seconds), and with ``flow --jobs 2`` or
    ``pytest -n 2`` every worker does so at the same moment.
    """
    for module in KERNELS.values():
        first_class(module.encode_channel, ENCODE)
        first_class(module.decode_channel, DECODE)
    for disp, sig in TYPED:
        if sig.args not in disp.overloads:  # a kernel called once is closed to compiling
            disp.compile(sig)
    return 2 * len(KERNELS) + len(TYPED)


__all__ = [
    "BackwardResult", "ForwardResult", "RunConstants", "backward", "compile_kernels",
    "constants", "forward", "run_constants",
]
