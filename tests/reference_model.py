"""A slow second implementation of docs/numerics.md on exact rationals, for tiny tensors.

Written straight from the contract, scalar by scalar, with ``lightnorm.spec.rounding`` as
the only rounding; it shares no code with the numba golden model, so agreement between the
two checks the golden model's kernels (reduction order, trees, chunks, argmax, BFP, MX).
"""

from __future__ import annotations

from fractions import Fraction as Fr

import numpy as np

from lightnorm.spec import BFPFormat, FPFormat, Spec, chunk_bounds, range_constant
from lightnorm.spec.formats import MXFormat
from lightnorm.spec.rounding import _floor_log2, round_exact, sqrt_exact


def _rnd(v: Fr, f: FPFormat) -> Fr:
    return round_exact(v, f)


def _recip(v: Fr, f: FPFormat) -> Fr:
    return Fr(f.max_value) if v == 0 else round_exact(1 / v, f)


def quantize_bfp_block(xs: list[Fr], f: BFPFormat) -> tuple[int, list[Fr]]:
    nz = [abs(x) for x in xs if x != 0]
    e = max(_floor_log2(a) for a in nz) if nz else f.emin
    e = min(max(e, f.emin), f.emax)

    def mants(e: int) -> list[int]:
        q = Fr(2) ** (e - f.man_bits + 1)
        out = []
        for x in xs:
            k = abs(x) / q
            fl = k.numerator // k.denominator
            if f.rounding == "nearest" and (k - fl > Fr(1, 2) or (k - fl == Fr(1, 2) and fl % 2)):
                fl += 1
            out.append(fl)
        return out

    ms = mants(e)
    if any(m > f.max_mantissa for m in ms) and f.carry == "raise" and e < f.emax:
        e += 1
        ms = mants(e)
    q = Fr(2) ** (e - f.man_bits + 1)
    return e, [
        (-1 if x < 0 else 1) * min(m, f.max_mantissa) * q for x, m in zip(xs, ms, strict=True)
    ]


def _round_half_even(k: Fr) -> int:
    fl = k.numerator // k.denominator
    if k - fl > Fr(1, 2) or (k - fl == Fr(1, 2) and fl % 2):
        fl += 1
    return fl


def quantize_mx_block(xs: list[Fr], f: MXFormat) -> tuple[int, list[Fr]]:
    """docs/numerics.md section 11: E = floor(log2 max|x|) - emax_elem in [-127, 127] (-127 for
    an all-zero block); each |x| / 2^E rounded to nearest even on the element's grid (FP:
    step 2^(max(floor(log2 v), emin) - m); INT8: 2^-6), saturated at the largest normal."""
    el = f.el
    nz = [abs(x) for x in xs if x != 0]
    e = min(max(_floor_log2(max(nz)) - el.emax, -127), 127) if nz else -127
    out = []
    for x in xs:
        v = abs(x) / Fr(2) ** e
        if v == 0:
            out.append(Fr(0))
            continue
        step = Fr(2) ** (el.lsb if el.is_int else max(_floor_log2(v), el.emin) - el.mbits)
        q = min(_round_half_even(v / step) * step, Fr(el.max_value))
        out.append((-q if x < 0 else q) * Fr(2) ** e)
    return e, out


def quantize(vals: list[Fr], fmt: FPFormat | BFPFormat | MXFormat) -> list[Fr]:
    if isinstance(fmt, FPFormat):
        return [_rnd(v, fmt) for v in vals]
    block = quantize_bfp_block if isinstance(fmt, BFPFormat) else quantize_mx_block
    out: list[Fr] = []
    for b in range(0, len(vals), fmt.block):
        out += block(vals[b : b + fmt.block], fmt)[1]  # type: ignore[arg-type]
    return out


def _tree(ws: list[Fr], a: FPFormat) -> Fr:
    while len(ws) > 1:
        ws = [_rnd(ws[2 * j] + ws[2 * j + 1], a) for j in range(len(ws) // 2)]
    return ws[0]


def ways_sum(items: list[Fr], ways: int, a: FPFormat) -> Fr:
    """Section 6: item i into partial i mod W (each from +0, add_A in order), then the pairwise
    tree of the W partials."""
    parts = [Fr(0)] * ways
    for i, t in enumerate(items):
        parts[i % ways] = _rnd(parts[i % ways] + t, a)
    return _tree(parts, a)


def beat_sums(vals: list[Fr], lanes: int, a: FPFormat, exact: bool, square: bool) -> list[Fr]:
    """t_b of every beat of a channel (section 6)."""
    out = []
    for b0 in range(0, len(vals), lanes):
        beat = vals[b0 : b0 + lanes]
        if exact:  # BFP, MX: the exact beat sum, rounded once
            out.append(_rnd(sum((v * v if square else v) for v in beat), a))
        else:
            ws = [(_rnd(v * v, a) if square else _rnd(v, a)) for v in beat]
            ws += [Fr(0)] * (lanes - len(ws))
            out.append(_tree(ws, a))
    return out


def channel_sum(vals: list[Fr], lanes: int, ways: int, a: FPFormat, exact: bool,
                square: bool) -> Fr:
    return ways_sum(beat_sums(vals, lanes, a, exact, square), ways, a)


def _stream(x: np.ndarray) -> list[list[Fr]]:
    c = x.shape[1]
    s = x.transpose(1, 0, 2, 3).reshape(c, -1)
    return [[Fr(float(v)) for v in row] for row in s]


def reference(
    spec: Spec, x: np.ndarray, dy: np.ndarray, gamma: np.ndarray, beta: np.ndarray
) -> dict[str, list]:
    """Forward and backward outputs, per channel, as exact values (stream order)."""
    S, A, P = spec.scalar, spec.accum, spec.compute
    n = x.shape[0] * x.shape[2] * x.shape[3]
    lanes, k, ways = spec.hw.lanes, spec.bn.chunks, spec.hw.accum_ways
    inv_n = round_exact(Fr(1, n), S, "nearest")
    c_k = round_exact(range_constant(n, k), S, "nearest") if spec.bn.mode == "range" else Fr(0)
    eps = round_exact(spec.bn.eps, S, "nearest")
    out: dict[str, list] = {
        k_: [] for k_ in ("y", "dx", "mean", "inv_sigma", "dgamma", "dbeta", "scale", "shift")
    }
    xs_all, dys_all = _stream(x), _stream(dy)
    for c in range(x.shape[1]):
        xs = quantize(xs_all[c], spec.storage.x)
        dys = quantize(dys_all[c], spec.storage.dy)
        g = round_exact(float(gamma[c]), S, "nearest")
        bt = round_exact(float(beta[c]), S, "nearest")
        xbfp = spec.storage.x.exact_beat_sum
        sm = channel_sum(xs, lanes, ways, A, xbfp, False)
        mu = _rnd(_rnd(sm, S) * inv_n, S)
        amax: list[int] = []
        amin: list[int] = []
        if spec.bn.mode == "standard":
            sq = channel_sum(xs, lanes, ways, A, xbfp, True)
            ex2 = _rnd(_rnd(sq, S) * inv_n, S)
            var = max(_rnd(ex2 - _rnd(mu * mu, S), S), Fr(0))
            flat = all(v == xs[0] for v in xs)  # a constant channel (section 10)
            if flat:
                var = Fr(0)
            den = sqrt_exact(_rnd(var + eps, S), S)
        else:
            maxes: list[Fr] = []
            mins: list[Fr] = []
            for i0, i1 in chunk_bounds(n, lanes, k):
                seg = xs[i0:i1]
                mx, mn = max(seg), min(seg)
                amax.append(i0 + seg.index(mx))  # first index attaining it
                amin.append(i0 + seg.index(mn))
                maxes.append(_rnd(mx, A))
                mins.append(_rnd(mn, A))
            smax, smin = ways_sum(maxes, ways, A), ways_sum(mins, ways, A)
            rng = _rnd(_rnd(smax, S) - _rnd(smin, S), S)
            sig = _rnd(rng * c_k, S)
            den = _rnd(sig + eps, S)
        isig = _recip(den, S)
        if (rng == 0) if spec.bn.mode == "range" else flat:  # a constant channel (section 10)
            isig = Fr(0)
        scale = _rnd(g * isig, S)
        shift = _rnd(bt - _rnd(mu * scale, S), S)
        scp, mup = _rnd(scale, P), _rnd(mu, P)
        if spec.bn.normalize == "centered":  # (x - mu) * scale + beta (section 8)
            btp = _rnd(bt, P)
            ylanes = [_rnd(_rnd(_rnd(_rnd(v, P) - mup, P) * scp, P) + btp, P) for v in xs]
        else:  # x * scale + shift
            shp = _rnd(shift, P)
            ylanes = [_rnd(_rnd(_rnd(v, P) * scp, P) + shp, P) for v in xs]
        out["y"].append(quantize(ylanes, spec.storage.y))
        # backward
        isp = _rnd(isig, P)
        xh = [_rnd(_rnd(_rnd(v, P) - mup, P) * isp, P) for v in xs]
        dbacc = channel_sum(dys, lanes, ways, A, spec.storage.dy.exact_beat_sum, False)
        dbeta = _rnd(dbacc, S)
        if spec.exact_dot:  # section 9, BFP-native: exact beat dot products, dgamma in S
            dots = [_rnd(sum(u * d for u, d in zip(xs[b0 : b0 + lanes], dys[b0 : b0 + lanes],
                                                   strict=True)), A)
                    for b0 in range(0, n, lanes)]
            sxdy = _rnd(ways_sum(dots, ways, A), S)
            dgamma = _rnd(isig * _rnd(sxdy - _rnd(mu * dbeta, S), S), S)
        else:
            prods = []
            for b0 in range(0, n, lanes):
                ws = [
                    _rnd(_rnd(d, A) * _rnd(h, A), A)
                    for d, h in zip(dys[b0 : b0 + lanes], xh[b0 : b0 + lanes], strict=True)
                ]
                ws += [Fr(0)] * (lanes - len(ws))
                prods.append(_tree(ws, A))
            dgamma = _rnd(ways_sum(prods, ways, A), S)
        mdb = _rnd(_rnd(dbeta * inv_n, S), P)
        if spec.bn.mode == "standard":
            mdg = _rnd(_rnd(dgamma * inv_n, S), P)
            gl = [
                _rnd(_rnd(_rnd(d, P) - mdb, P) - _rnd(h * mdg, P), P)
                for d, h in zip(dys, xh, strict=True)
            ]
        else:
            cor = _rnd(_rnd(dgamma * c_k, S), P)
            gl = [_rnd(_rnd(d, P) - mdb, P) for d in dys]
            for ia, ib in zip(amax, amin, strict=True):
                if ia != ib:
                    gl[ia] = _rnd(gl[ia] - cor, P)
                    gl[ib] = _rnd(gl[ib] + cor, P)
        dxl = [_rnd(_rnd(scale, P) * v, P) for v in gl]
        out["dx"].append(quantize(dxl, spec.storage.dx))
        for key, val in (
            ("mean", mu),
            ("inv_sigma", isig),
            ("dgamma", dgamma),
            ("dbeta", dbeta),
            ("scale", scale),
            ("shift", shift),
        ):
            out[key].append(val)
    return out


def as_float(rows: list) -> np.ndarray:
    return np.array([[float(v) for v in r] if isinstance(r, list) else float(r) for r in rows])


__all__ = ["as_float", "quantize", "reference"]
