"""Numerical quality of a spec: how far its y and dx are from float64 batch normalization.

This is the accuracy axis of configuration comparisons (docs/quality.md). :func:`measure` runs
the bit-accurate golden model (:mod:`lightnorm.verify.golden`) on a fixed set of input
distributions that batch normalization meets in training (:data:`DISTRIBUTIONS`, each with a
fixed seed derived from its name) and compares y and dx with two float64 references
(:mod:`lightnorm.verify.ideal`), both evaluated on the *raw* float64 inputs, so that the
quantization of x and dy into their storage formats counts:

* ``vs_own``: ideal BN of the spec's own kind (``spec.bn.mode``, its chunks and lanes, the exact
  range-BN gradient) - what the spec's arithmetic and storage formats cost;
* ``vs_standard``: ideal standard BN (mean and biased variance) - additionally what range BN
  changes, which is large (sigma_hat is about 2 sigma, docs/numerics.md section 7).

The ``constant`` distribution (every channel constant) is a degenerate case: both references
are the degenerate-channel result y = beta, dx = 0 (issue 17), and dx's relative error is taken
against ``gamma * dy`` (:data:`DEGENERATE`). The summary scalar ``error = max(mean y rel RMS,
mean dx rel RMS)``, both ``vs_own`` and over :data:`SUMMARY_DISTRIBUTIONS` (every distribution
but ``constant``), is the figure plotted on Pareto fronts. ``lightnorm quality [SPEC ...]``
prints a table of summary figures (:mod:`lightnorm.cli.quality`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..spec import Spec, check_channel_elems
from . import golden, ideal

# Bump whenever the definition changes (distributions, seeds, shape rule, references, metrics,
# summary): callers use it as part of a cache key.
QUALITY_VERSION = 2

# name -> one-line description, in the order they are measured and reported.
DISTRIBUTIONS: dict[str, str] = {
    "gaussian": "x ~ N(0.5, 2^2); dy ~ N(0, 0.01^2)",
    "relu": "x = max(N(0, 1), 0) (post-ReLU half-Gaussian, half exact zeros); dy ~ N(0, 0.01^2)",
    "laplace": "x ~ Laplace(0, 1) (heavy-tailed); dy ~ Laplace(0, 0.01/sqrt(2)) (std 0.01)",
    "student_t": "x ~ Student t, 3 degrees of freedom (heavy-tailed); dy ~ N(0, 0.01^2)",
    "outliers": "x ~ N(0, 1) with 0.1% of each channel's elements (at least one) moved by "
                "+-50; dy ~ N(0, 0.01^2)",
    "offset": "x ~ N(11, 1) (mean/std = 11: far from zero); dy ~ N(0, 0.01^2)",
    "constant": "every channel constant, x = CONSTANTS[c % 8] (several values and signs, some "
                "above a lane format's max); dy ~ N(0, 0.01^2)",
}

# Distributions whose references are the degenerate-channel result (y = beta, dx = 0), not the
# ideal model: a constant channel's float64 gradient gamma / (sigma + eps) * (dy - mean dy) is
# set by eps, not by the data. They are reported but left out of the summary, whose figures
# are errors on the data BN normalizes in training (docs/quality.md).
DEGENERATE = ("constant",)
SUMMARY_DISTRIBUTIONS = tuple(d for d in DISTRIBUTIONS if d not in DEGENERATE)

# gamma ~ U(GAMMA_RANGE), beta ~ U(BETA_RANGE), one value per channel.
GAMMA_RANGE = (0.5, 1.5)
BETA_RANGE = (-0.5, 0.5)
DY_STD = 1e-2
OUTLIER_FRACTION = 1e-3
OUTLIER_SHIFT = 50.0
OFFSET_MEAN = 11.0
# The values of the `constant` distribution's channels (channel c: CONSTANTS[c % 8]): zero, both
# signs, magnitudes from 1e-3 to 5e9; 6e4 is just below the max of FP(5,6) (65024, the lanes of
# lightnorm-aggressive), -1e5 above it, 5e9 above the max of FP(6,9) (4.29e9, the lanes of
# lightnorm and the MX presets), so that lane conversions saturate.
CONSTANTS = (0.0, -0.7, 3.0, 1e-3, -250.0, 6.0e4, -1.0e5, 5.0e9)

# The preferred shape: 8 channels of n = 4*16*16 = 1024 elements.
DEFAULT_N = 1024
DEFAULT_BATCH = 4
DEFAULT_CHANNELS = 8

TENSORS = ("y", "dx")
REFERENCES = ("vs_standard", "vs_own")

Shape = tuple[int, int, int, int]


# ---- inputs ---------------------------------------------------------------------------------


def seed_of(name: str) -> int:
    """The fixed seed of a distribution: the first 8 bytes of SHA-256("lightnorm.quality:NAME").

    Unlike ``hash()`` it does not change between runs or Python versions.
    """
    digest = hashlib.sha256(f"lightnorm.quality:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True, eq=False)
class Inputs:
    """One distribution's batch: x and dy (N, C, H, W), gamma and beta (C,), all float64."""

    x: np.ndarray
    dy: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray


def _check_shape(shape: Sequence[int]) -> Shape:
    ok = len(shape) == 4 and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in shape)
    if not ok:
        raise ValueError(f"shape must be four positive integers (N, C, H, W), got {shape!r}")
    n_, c, h, w = (int(d) for d in shape)
    return n_, c, h, w


def inputs(name: str, shape: Sequence[int]) -> Inputs:
    """The batch of distribution ``name`` at ``shape`` (the same for every spec).

    Draws from ``numpy.random.Generator(PCG64(seed_of(name)))`` in this order: x (none for
    ``constant``), dy, (outlier positions and signs), gamma, beta.
    """
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {name!r} (known: {', '.join(DISTRIBUTIONS)})")
    n_, c, h, w = dims = _check_shape(shape)
    rng = np.random.Generator(np.random.PCG64(seed_of(name)))
    if name == "gaussian":
        x = rng.normal(0.5, 2.0, dims)
        dy = rng.normal(0.0, DY_STD, dims)
    elif name == "relu":
        x = np.maximum(rng.standard_normal(dims), 0.0)
        dy = rng.normal(0.0, DY_STD, dims)
    elif name == "laplace":
        x = rng.laplace(0.0, 1.0, dims)
        dy = rng.laplace(0.0, DY_STD / math.sqrt(2.0), dims)
    elif name == "student_t":
        x = rng.standard_t(3.0, dims)
        dy = rng.normal(0.0, DY_STD, dims)
    elif name == "offset":
        x = rng.normal(OFFSET_MEAN, 1.0, dims)
        dy = rng.normal(0.0, DY_STD, dims)
    elif name == "constant":
        x = np.empty(dims)
        for ch in range(c):
            x[:, ch] = CONSTANTS[ch % len(CONSTANTS)]
        dy = rng.normal(0.0, DY_STD, dims)
    else:  # outliers
        x = rng.standard_normal(dims)
        dy = rng.normal(0.0, DY_STD, dims)
        n = n_ * h * w
        k = max(1, round(OUTLIER_FRACTION * n))
        for ch in range(c):
            pos = rng.choice(n, size=k, replace=False)
            sign = rng.choice(np.array([-1.0, 1.0]), size=k)
            a, i, j = np.unravel_index(pos, (n_, h, w))
            x[a, ch, i, j] += OUTLIER_SHIFT * sign
    gamma = rng.uniform(*GAMMA_RANGE, size=c)
    beta = rng.uniform(*BETA_RANGE, size=c)
    return Inputs(x=x, dy=dy, gamma=gamma, beta=beta)


def default_shape(spec: Spec) -> Shape:
    """(4, 8, 16, 16) - n = 1024 elements per channel - unless the spec cannot take n = 1024.

    Then n is the nearest channel length the spec accepts (``spec.hw.max_channel_elems`` when
    that is smaller, ``spec.min_channel_elems()`` when that is larger), still with 8 channels:
    N = 4 (or 2, or 1: the largest that divides n) and H x W the most square factorization of
    n / N with H <= W.
    """
    lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
    n = min(max(DEFAULT_N, lo), hi)
    batch = next(b for b in (DEFAULT_BATCH, 2, 1) if n % b == 0)
    rest = n // batch
    h = max(d for d in range(1, math.isqrt(rest) + 1) if rest % d == 0)
    shape = (batch, DEFAULT_CHANNELS, h, rest // h)
    check_channel_elems(spec, batch * h * (rest // h))
    return shape


# ---- metrics --------------------------------------------------------------------------------


def _scaled_norm(a: np.ndarray) -> tuple[float, float]:
    """(r, m) with ||a||_2 = r * m, m = max |a|, computed without overflow or underflow."""
    m = float(np.max(np.abs(a)))
    if m == 0.0:
        return 0.0, 0.0
    return math.sqrt(float(np.sum(np.square(a / m)))), m


def error_stats(got: Any, ref: Any, scale: Any = None) -> dict[str, float | None]:
    """Error of ``got`` against the reference ``ref`` (same shape), JSON-ready.

    * ``rel_rms = ||got - ref||_2 / ||scale||_2``, ``scale`` = ``ref`` unless given (for a
      reference that is zero by definition, ``scale`` says what the error is relative to);
    * ``sqnr_db = 10 log10(sum scale^2 / sum (got - ref)^2) = -20 log10(rel_rms)``;
    * ``max_abs_err = max |got - ref|``.

    Computed with scaling, so neither overflows nor underflows. ``None`` stands for a value that
    is not a finite float: ``sqnr_db`` is None when the error is exactly zero (rel_rms 0.0,
    SQNR +inf); every field is None if ``got``, ``ref`` or ``scale`` holds inf or NaN; rel_rms
    and sqnr_db are None when ``scale`` is all zeros but the error is not, and any field is None
    if it overflows float64.
    """
    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    sc = r if scale is None else np.asarray(scale, dtype=np.float64)
    for name, a in (("reference", r), ("scale", sc)):
        if g.shape != a.shape:
            raise ValueError(f"shape mismatch: {g.shape} vs {name} {a.shape}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(r)) and np.all(np.isfinite(sc))):
        return {"rel_rms": None, "sqnr_db": None, "max_abs_err": None}
    if g.size == 0:
        return {"rel_rms": 0.0, "sqnr_db": None, "max_abs_err": 0.0}
    half = 0.5 * g - 0.5 * r  # (got - ref) / 2: cannot overflow
    re, me = _scaled_norm(half)
    rr, mr = _scaled_norm(sc)
    with np.errstate(over="ignore"):
        max_abs = 2.0 * me
    out: dict[str, float | None] = {"rel_rms": None, "sqnr_db": None,
                                    "max_abs_err": max_abs if math.isfinite(max_abs) else None}
    if me == 0.0:
        out["rel_rms"] = 0.0
        return out
    if mr == 0.0:
        return out
    # log10 of rel_rms = (2 re me) / (rr mr), each factor finite and nonzero
    log_rel = math.log10(2.0 * re / rr) + math.log10(me) - math.log10(mr)
    out["sqnr_db"] = -20.0 * log_rel
    if log_rel < 300.0:
        rel = (2.0 * re / rr) * (me / mr)
        out["rel_rms"] = rel if math.isfinite(rel) else None
    return out


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None) / len(values))


# ---- the measurement ------------------------------------------------------------------------


# tensor -> (reference, scale or None), as error_stats takes them
Reference = dict[str, tuple[np.ndarray, np.ndarray | None]]


def _references(spec: Spec, name: str, inp: Inputs) -> dict[str, Reference]:
    """reference name -> its y and dx: the float64 ideal model on the raw inputs, or for a
    DEGENERATE distribution y = beta and dx = 0, dx's error relative to gamma * dy."""
    if name in DEGENERATE:
        g = inp.gamma[None, :, None, None]
        deg: Reference = {"y": (np.broadcast_to(inp.beta[None, :, None, None], inp.x.shape),
                                None),
                          "dx": (np.zeros_like(inp.dy), g * inp.dy)}
        return {ref: deg for ref in REFERENCES}
    eps = spec.bn.eps
    own: dict[str, Any] = {"mode": spec.bn.mode, "eps": eps, "chunks": spec.bn.chunks,
                           "lanes": spec.hw.lanes}
    std: dict[str, Any] = {"mode": "standard", "eps": eps, "chunks": 1, "lanes": 1}
    out: dict[str, Reference] = {}
    for ref, kw in (("vs_standard", std), ("vs_own", own)):
        y = ideal.forward(inp.x, inp.gamma, inp.beta, **kw).y
        dx = ideal.backward(inp.x, inp.dy, inp.gamma, inp.beta, range_grad="exact", **kw).dx
        out[ref] = {"y": (y, None), "dx": (dx, None)}
    return out


def measure(spec: Spec, shape: Sequence[int] | None = None) -> dict[str, Any]:
    """The numerical quality of ``spec`` (JSON-serializable; floats are finite or None).

    ``shape`` (N, C, H, W) defaults to :func:`default_shape`. Layout::

        {"version": QUALITY_VERSION, "shape": [N, C, H, W], "mode": spec.bn.mode,
         "distributions": {name: {"y": {"vs_standard": stats, "vs_own": stats},
                                  "dx": {...}}},
         "summary": {"y_vs_own", "dx_vs_own", "y_vs_standard", "dx_vs_standard", "error"}}

    with ``stats`` from :func:`error_stats`; each summary figure is the mean of rel_rms over
    :data:`SUMMARY_DISTRIBUTIONS` (None if any is None) and
    ``error = max(y_vs_own, dx_vs_own)``.
    """
    dims = default_shape(spec) if shape is None else _check_shape(shape)
    check_channel_elems(spec, dims[0] * dims[2] * dims[3])
    dists: dict[str, Any] = {}
    for name in DISTRIBUTIONS:
        inp = inputs(name, dims)
        fr = golden.forward(spec, inp.x, inp.gamma, inp.beta)
        br = golden.backward(spec, inp.x, inp.dy, inp.gamma, inp.beta, saved=fr)
        got = {"y": fr.y, "dx": br.dx}
        refs = _references(spec, name, inp)
        dists[name] = {t: {ref: error_stats(got[t], *refs[ref][t]) for ref in REFERENCES}
                       for t in TENSORS}

    def mean_rel(t: str, ref: str) -> float | None:
        return _mean_or_none([dists[d][t][ref]["rel_rms"] for d in SUMMARY_DISTRIBUTIONS])

    y_own, dx_own = mean_rel("y", "vs_own"), mean_rel("dx", "vs_own")
    summary = {
        "y_vs_own": y_own, "dx_vs_own": dx_own,
        "y_vs_standard": mean_rel("y", "vs_standard"),
        "dx_vs_standard": mean_rel("dx", "vs_standard"),
        "error": None if y_own is None or dx_own is None else max(y_own, dx_own),
    }
    return {"version": QUALITY_VERSION, "shape": list(dims), "mode": spec.bn.mode,
            "distributions": dists, "summary": summary}


__all__ = [
    "CONSTANTS", "DEGENERATE", "DISTRIBUTIONS", "Inputs", "QUALITY_VERSION",
    "SUMMARY_DISTRIBUTIONS", "default_shape", "error_stats", "inputs", "measure", "seed_of",
]
