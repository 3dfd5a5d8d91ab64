"""Bit-accurate golden model of the BN hardware, for any valid spec (docs/numerics.md).

Per-element work runs in numba kernels, parallel over channels; per-channel work (finalize)
is vectorized over channels with NumPy. The stages follow the hardware: a statistics pass over
x, finalize, a normalize pass; in backward a reduction pass over x and dy, per-channel scalars,
and a dx pass. Every rounding point is one call into :mod:`lightnorm.verify.fpnum`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numba as nb
import numpy as np

from ..spec import Spec, check_channel_elems, chunk_bounds, range_constant
from ..spec.formats import FPFormat
from ..spec.rounding import encode_fp, round_scalar
from . import fpnum
from .encoding import Encoded, check_finite, codec, empty_encoded_arrays, from_stream, make_encoded
from .fpnum import add, mul, rnd, sub
from .kernels import ENCODER, F64, F64_2D, F64_3D, FP, I64_2D, ST, typed

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

    def bits(self, fmt: FPFormat) -> dict[str, int]:
        return {k: encode_fp(getattr(self, k), fmt)
                for k in ("inv_n", "c_k", "eps", "momentum", "unbias")}


def constants(spec: Spec, n: int) -> RunConstants:
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


@nb.njit(cache=True, inline="always")
def _gather(x3, c, buf):  # type: ignore[no-untyped-def]
    """Channel c of an (N, C, HW) array into stream order."""
    nn, _, hw = x3.shape
    i = 0
    for a in range(nn):
        for k in range(hw):
            buf[i] = x3[a, c, k]
            i += 1


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


@nb.njit(cache=True, inline="always")
def _ways_add(p, i, t, ways, fa):  # type: ignore[no-untyped-def]
    """Item i of a W-way sum: into partial i mod W (section 6; ``ways`` a power of two)."""
    r = i & (ways - 1)
    p[r] = add(p[r], t, fa)


@nb.njit(cache=True)
def _channel_sum(vals, n, lanes, ways, exact, square, fa, w, p):  # type: ignore[no-untyped-def]
    """Channel sum of vals (or of vals^2) by the rules of section 6: beat sums (``exact``: the
    storage's beats sum exactly as integers, ``fmt.exact_beat_sum``) into ``ways`` interleaved
    partials ``p``, then their pairwise tree."""
    p[:] = 0.0
    b = 0
    for b0 in range(0, n, lanes):
        b1 = min(n, b0 + lanes)
        if exact:  # a beat's values share one grid: their exact sum, rounded once
            t = 0.0
            c = 0.0  # the exact rounding errors of t (Neumaier): t + c is the exact sum
            for i in range(b0, b1):
                u = vals[i] * vals[i] if square else vals[i]
                s = t + u
                bb = s - t
                c += (t - (s - bb)) + (u - bb)
                t = s
            tb = add(t, c, fa)
        else:
            for j in range(lanes):
                i = b0 + j
                if i < b1:
                    v = vals[i]
                    w[j] = mul(v, v, fa) if square else rnd(v, fa)
                else:
                    w[j] = 0.0
            tb = _tree(w, lanes, fa)
        _ways_add(p, b, tb, ways, fa)
        b += 1
    return _tree(p, ways, fa)


# Argument types of the kernels below (see lightnorm.verify.kernels.typed).
INT = nb.types.int64
BOOL = nb.types.boolean
VOID = nb.types.void


@typed(VOID(F64_3D, INT, ST, ENCODER, BOOL, INT, INT, INT, I64_2D, FP, F64_2D, I64_2D,
            I64_2D, F64_2D, I64_2D, I64_2D), parallel=True)
def _stats_kernel(x3, n, st, enc, exact, lanes, ways, mode, bounds,  # type: ignore[no-untyped-def]
                  fa, xvals, xbits, xexps, stats, amax, amin):
    """Encode x (``enc``: its family's encoder) and compute the channel statistics (sum, sumsq
    or chunk max/min and their W-way chunk averages)."""
    c_total = x3.shape[1]
    for c in nb.prange(c_total):
        buf = np.empty(n, np.float64)
        w = np.empty(lanes, np.float64)
        p = np.empty(ways, np.float64)
        _gather(x3, c, buf)
        enc(buf, n, st, xvals[c], xbits[c], xexps[c])
        v = xvals[c]
        stats[c, ST_SUM] = _channel_sum(v, n, lanes, ways, exact, False, fa, w, p)
        if mode == 0:
            stats[c, ST_SUMSQ] = _channel_sum(v, n, lanes, ways, exact, True, fa, w, p)
        else:
            pmax = np.zeros(ways, np.float64)
            pmin = np.zeros(ways, np.float64)
            for k in range(bounds.shape[0]):
                i0 = bounds[k, 0]
                i1 = bounds[k, 1]
                mx = v[i0]
                mn = v[i0]
                imx = i0
                imn = i0
                for i in range(i0 + 1, i1):
                    if v[i] > mx:
                        mx = v[i]
                        imx = i
                    if v[i] < mn:
                        mn = v[i]
                        imn = i
                amax[c, k] = imx
                amin[c, k] = imn
                _ways_add(pmax, k, rnd(mx, fa), ways, fa)
                _ways_add(pmin, k, rnd(mn, fa), ways, fa)
            stats[c, ST_SMAX] = _tree(pmax, ways, fa)
            stats[c, ST_SMIN] = _tree(pmin, ways, fa)


@typed(VOID(F64_2D, INT, F64, F64, FP, ST, ENCODER, F64_2D, I64_2D, I64_2D), parallel=True)
def _normalize_kernel(xvals, n, scale_p, shift_p, fp, st, enc,  # type: ignore[no-untyped-def]
                      yvals, ybits, yexps):
    """The normalize lanes; their results encoded into y's storage (``enc``)."""
    for c in nb.prange(xvals.shape[0]):
        buf = np.empty(n, np.float64)
        sc = scale_p[c]
        sh = shift_p[c]
        xv = xvals[c]
        for i in range(n):
            t = mul(rnd(xv[i], fp), sc, fp)
            buf[i] = add(t, sh, fp)
        enc(buf, n, st, yvals[c], ybits[c], yexps[c])


@nb.njit(cache=True, inline="always")
def _xhat(xv, n, m, s, fp, out):  # type: ignore[no-untyped-def]
    for i in range(n):
        out[i] = mul(sub(rnd(xv[i], fp), m, fp), s, fp)


@typed(VOID(F64_3D, INT, ST, ENCODER, BOOL, INT, INT, F64_2D, F64, F64, FP, FP, F64_2D, I64_2D,
            I64_2D, F64_2D), parallel=True)
def _reduce_kernel(dy3, n, st, enc, exact, lanes, ways, xvals, mu_p,  # type: ignore[no-untyped-def]
                   isig_p, fp, fa, dyvals, dybits, dyexps, sums):
    """Backward pass 1: encode dy (``enc``), x_hat lanes, sum(dy) and sum(dy * x_hat)."""
    for c in nb.prange(dy3.shape[1]):
        buf = np.empty(n, np.float64)
        xh = np.empty(n, np.float64)
        w = np.empty(lanes, np.float64)
        p = np.empty(ways, np.float64)
        _gather(dy3, c, buf)
        enc(buf, n, st, dyvals[c], dybits[c], dyexps[c])
        _xhat(xvals[c], n, mu_p[c], isig_p[c], fp, xh)
        dv = dyvals[c]
        sums[c, 0] = _channel_sum(dv, n, lanes, ways, exact, False, fa, w, p)
        p[:] = 0.0
        b = 0
        for b0 in range(0, n, lanes):
            for j in range(lanes):
                i = b0 + j
                if i < n:
                    w[j] = mul(rnd(dv[i], fa), rnd(xh[i], fa), fa)
                else:
                    w[j] = 0.0
            _ways_add(p, b, _tree(w, lanes, fa), ways, fa)
            b += 1
        sums[c, 1] = _tree(p, ways, fa)


@typed(VOID(F64_2D, F64_2D, INT, INT, F64, F64, F64, F64, F64, F64, I64_2D, I64_2D, FP, ST,
            ENCODER, F64_2D, I64_2D, I64_2D), parallel=True)
def _dx_kernel(dyvals, xvals, n, mode, mu_p, isig_p, scale_p, mdb_p,  # type: ignore[no-untyped-def]
               mdg_p, cor_p, amax, amin, fp, st, enc, dxvals, dxbits, dxexps):
    """Backward pass 2: dx lanes (x_hat recomputed, as pass 1), encoded to storage.dx
    (``enc``)."""
    for c in nb.prange(dyvals.shape[0]):
        buf = np.empty(n, np.float64)
        dv = dyvals[c]
        sc = scale_p[c]
        mdb = mdb_p[c]
        if mode == 0:
            mdg = mdg_p[c]
            xh = np.empty(n, np.float64)
            _xhat(xvals[c], n, mu_p[c], isig_p[c], fp, xh)
            for i in range(n):
                g = sub(sub(rnd(dv[i], fp), mdb, fp), mul(xh[i], mdg, fp), fp)
                buf[i] = mul(sc, g, fp)
        else:
            for i in range(n):
                buf[i] = sub(rnd(dv[i], fp), mdb, fp)
            # argmax/argmin of each chunk get -/+ cor (both: nothing, first index wins)
            cor = cor_p[c]
            for k in range(amax.shape[1]):
                ia = amax[c, k]
                ib = amin[c, k]
                if ia != ib:
                    buf[ia] = sub(buf[ia], cor, fp)
                    buf[ib] = sub(buf[ib], -cor, fp)
            for i in range(n):
                buf[i] = mul(sc, buf[i], fp)
        enc(buf, n, st, dxvals[c], dxbits[c], dxexps[c])


# ---- per-channel arithmetic (format S), vectorized over channels ---------------------------


class _Ops:
    """The primitives of one FP format over channel vectors."""

    def __init__(self, fmt: FPFormat) -> None:
        self.fmt = fmt

    def cvt(self, a: np.ndarray) -> np.ndarray:
        return fpnum.round_array(a, self.fmt)

    def host(self, a: np.ndarray) -> np.ndarray:
        """Host-provided values (gamma, beta, running statistics): rounded with nearest."""
        return fpnum.round_array(a, self.fmt, "nearest")

    def add(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        return fpnum.op_array("add", np.asarray(a, np.float64), np.asarray(b, np.float64),
                              self.fmt)

    def sub(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        return fpnum.op_array("sub", np.asarray(a, np.float64), np.asarray(b, np.float64),
                              self.fmt)

    def mul(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        return fpnum.op_array("mul", np.asarray(a, np.float64), np.asarray(b, np.float64),
                              self.fmt)

    def recip(self, a: np.ndarray) -> np.ndarray:
        return fpnum.op_array("recip", a, None, self.fmt)

    def sqrt(self, a: np.ndarray) -> np.ndarray:
        return fpnum.op_array("sqrt", a, None, self.fmt)


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


def _check_shape(spec: Spec, x: np.ndarray, name: str) -> tuple[int, int, int, int]:
    if x.ndim != 4:
        raise ValueError(f"{name} must be an NCHW array, got shape {x.shape}")
    n_, c, h, w = x.shape
    check_channel_elems(spec, n_ * h * w)
    return n_, c, h, w


def _per_channel(name: str, a: np.ndarray | float, c: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(a, dtype=np.float64), (c,))
    return check_finite(name, arr.copy())


def _statistics(spec: Spec, x: np.ndarray, gamma_s: np.ndarray, beta_s: np.ndarray,
                rc: RunConstants) -> Statistics:
    n_, c, h, w = x.shape
    n = n_ * h * w
    kx, st = codec(spec.storage.x)
    fa = fpnum.fp_params(spec.accum)
    mode = 0 if spec.bn.mode == "standard" else 1
    k = spec.bn.chunks
    bounds = np.array(chunk_bounds(n, spec.hw.lanes, k), dtype=np.int64)
    xvals, xbits, xexps = empty_encoded_arrays(spec.storage.x, c, n)
    stats = np.zeros((c, 4), np.float64)
    amax = np.zeros((c, k), np.int64)
    amin = np.zeros((c, k), np.int64)
    x3 = x.reshape(n_, c, h * w)
    _stats_kernel(x3, n, st, kx.encode_channel, spec.storage.x.exact_beat_sum, spec.hw.lanes,
                  spec.hw.accum_ways, mode, bounds, fa, xvals, xbits, xexps, stats, amax, amin)

    s = _Ops(spec.scalar)
    mu = s.mul(s.cvt(stats[:, ST_SUM]), rc.inv_n)
    if mode == 0:
        ex2 = s.mul(s.cvt(stats[:, ST_SUMSQ]), rc.inv_n)
        var = np.maximum(s.sub(ex2, s.mul(mu, mu)), 0.0)
        disp = var
        den = s.sqrt(s.add(var, rc.eps))
    else:
        rng_ = s.sub(s.cvt(stats[:, ST_SMAX]), s.cvt(stats[:, ST_SMIN]))
        disp = s.mul(rng_, rc.c_k)
        den = s.add(disp, rc.eps)
    inv_sigma = s.recip(den)
    if mode == 1:  # a constant channel (rng = 0): inv_sigma = +0, so y = beta, dx = 0 (sec. 10)
        inv_sigma = np.where(rng_ == 0.0, 0.0, inv_sigma)
    scale = s.mul(gamma_s, inv_sigma)
    shift = s.sub(beta_s, s.mul(mu, scale))
    x_enc = make_encoded(spec.storage.x, n, xvals, xbits, xexps)
    return Statistics(x_enc, mu, disp, inv_sigma, scale, shift, amax, amin, stats)


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
        return from_stream(self.y_enc.vals, self.shape)

    @cached_property
    def x_values(self) -> np.ndarray:
        """The input as stored (after storage quantization), NCHW."""
        return from_stream(self.x_enc.vals, self.shape)

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
            running_disp: np.ndarray | None = None) -> ForwardResult:
    """Training-mode forward of BN on an NCHW float64 tensor, as the hardware computes it.

    ``running_disp`` is the running variance (standard BN) or running sigma (range BN);
    running statistics default to 0 and 1.
    """
    x = check_finite("x", x)
    n_, c, h, w = _check_shape(spec, x, "x")
    n = n_ * h * w
    rc = constants(spec, n)
    s = _Ops(spec.scalar)
    gamma_s = s.host(_per_channel("gamma", gamma, c))
    beta_s = s.host(_per_channel("beta", beta, c))
    stt = _statistics(spec, x, gamma_s, beta_s, rc)

    p = _Ops(spec.compute)
    yvals, ybits, yexps = empty_encoded_arrays(spec.storage.y, c, n)
    ky, sty = codec(spec.storage.y)
    _normalize_kernel(stt.x_enc.vals, n, p.cvt(stt.scale), p.cvt(stt.shift),
                      fpnum.fp_params(spec.compute), sty, ky.encode_channel, yvals, ybits, yexps)
    y_enc = make_encoded(spec.storage.y, n, yvals, ybits, yexps)

    rm = s.host(_per_channel("running_mean", 0.0 if running_mean is None else running_mean, c))
    rd = s.host(_per_channel("running_disp", 1.0 if running_disp is None else running_disp, c))
    new_rm = s.add(rm, s.mul(rc.momentum, s.sub(stt.mean, rm)))
    v = s.mul(stt.dispersion, rc.unbias) if spec.bn.mode == "standard" else stt.dispersion
    new_rd = s.add(rd, s.mul(rc.momentum, s.sub(v, rd)))
    std = spec.bn.mode == "standard"
    return ForwardResult(
        x_enc=stt.x_enc, y_enc=y_enc, shape=(n_, c, h, w), mean=stt.mean, dispersion=stt.dispersion,
        inv_sigma=stt.inv_sigma, scale=stt.scale, shift=stt.shift, gamma=gamma_s,
        beta=beta_s, running_mean=new_rm, running_var=new_rd if std else None,
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
        return from_stream(self.dx_enc.vals, self.shape)

    @cached_property
    def dy_values(self) -> np.ndarray:
        """The incoming gradient as stored (after storage quantization), NCHW."""
        return from_stream(self.dy_enc.vals, self.shape)

    @property
    def dgamma_bits(self) -> np.ndarray:
        return _bits(self.dgamma, self.scalar_fmt)

    @property
    def dbeta_bits(self) -> np.ndarray:
        return _bits(self.dbeta, self.scalar_fmt)


def backward(spec: Spec, x: np.ndarray, dy: np.ndarray, gamma: np.ndarray | float = 1.0,
             beta: np.ndarray | float = 0.0, *,
             saved: ForwardResult | None = None) -> BackwardResult:
    """Training-mode backward (dx, dgamma, dbeta) as the hardware computes it.

    ``saved``: the forward result of the same x, gamma and beta, whose statistics are reused
    (as the hardware keeps them from the forward pass); without it they are recomputed.
    """
    x = check_finite("x", x)
    dy = check_finite("dy", dy)
    n_, c, h, w = _check_shape(spec, x, "x")
    if dy.shape != x.shape:
        raise ValueError(f"dy has shape {dy.shape}, x has {x.shape}")
    n = n_ * h * w
    rc = constants(spec, n)
    s = _Ops(spec.scalar)
    p = _Ops(spec.compute)
    gamma_s = s.host(_per_channel("gamma", gamma, c))
    beta_s = s.host(_per_channel("beta", beta, c))
    if saved is not None:
        if saved.shape != x.shape or not (np.array_equal(saved.gamma, gamma_s)
                                            and np.array_equal(saved.beta, beta_s)):
            raise ValueError("saved forward result is for another x, gamma or beta")
        stt = saved.stats
    else:
        stt = _statistics(spec, x, gamma_s, beta_s, rc)

    fp = fpnum.fp_params(spec.compute)
    fa = fpnum.fp_params(spec.accum)
    lanes = spec.hw.lanes
    dyvals, dybits, dyexps = empty_encoded_arrays(spec.storage.dy, c, n)
    sums = np.zeros((c, 2), np.float64)
    mu_p, isig_p = p.cvt(stt.mean), p.cvt(stt.inv_sigma)
    kdy, stdy = codec(spec.storage.dy)
    _reduce_kernel(dy.reshape(n_, c, h * w), n, stdy, kdy.encode_channel,
                   spec.storage.dy.exact_beat_sum, lanes, spec.hw.accum_ways, stt.x_enc.vals,
                   mu_p, isig_p, fp, fa, dyvals, dybits, dyexps, sums)
    dbeta = s.cvt(sums[:, 0])
    dgamma = s.cvt(sums[:, 1])
    mdb = s.mul(dbeta, rc.inv_n)
    mode = 0 if spec.bn.mode == "standard" else 1
    mdg = s.mul(dgamma, rc.inv_n) if mode == 0 else np.zeros(c)
    cor = s.mul(dgamma, rc.c_k) if mode == 1 else np.zeros(c)

    dxvals, dxbits, dxexps = empty_encoded_arrays(spec.storage.dx, c, n)
    kdx, stdx = codec(spec.storage.dx)
    _dx_kernel(dyvals, stt.x_enc.vals, n, mode, mu_p, isig_p, p.cvt(stt.scale), p.cvt(mdb),
               p.cvt(mdg), p.cvt(cor), stt.argmax, stt.argmin, fp, stdx, kdx.encode_channel,
               dxvals, dxbits, dxexps)
    return BackwardResult(
        x_enc=stt.x_enc,
        dy_enc=make_encoded(spec.storage.dy, n, dyvals, dybits, dyexps),
        dx_enc=make_encoded(spec.storage.dx, n, dxvals, dxbits, dxexps),
        shape=(n_, c, h, w), dgamma=dgamma, dbeta=dbeta, mean=stt.mean, inv_sigma=stt.inv_sigma,
        scalar_fmt=spec.scalar,
    )


__all__ = [
    "BackwardResult", "ForwardResult", "RunConstants", "backward", "constants", "forward",
    "run_constants",
]
