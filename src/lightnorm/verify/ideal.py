"""Float64 ideal model of batch normalization, with no quantization anywhere.

It is the yardstick for the quantized golden model (how far does a format move y and dx from the
real-number result?) and it is itself checked against PyTorch autograd and finite differences
(tests/test_ideal.py). It follows docs/numerics.md sections 5, 8 and 9 but shares no code with
the quantized path: only the chunk layout and the range constant C(n/K)/K come from the spec, so
that "ideal" and "golden" mean the same chunks.

Standard BN uses the biased variance (two-pass, as accurate as float64 allows). Range BN uses
sigma_hat = C(n/K)/K * sum_k (max_k - min_k) over beat-granular chunks, and its backward pass is
either the exact gradient (through the first argmax/argmin of each chunk, what the hardware
computes) or the gradient with sigma_hat held constant (the cheaper alternative, for comparison).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lightnorm.spec import chunk_bounds, range_constant

Array = NDArray[np.float64]
IndexArray = NDArray[np.int64]

MODES = ("standard", "range")
RANGE_GRADS = ("exact", "constant")


@dataclass(frozen=True, eq=False)
class IdealForward:
    """Forward result. Per-channel fields have shape (C,), tensors (N, C, H, W)."""

    y: Array
    x_hat: Array
    mean: Array
    inv_sigma: Array
    var: Array | None = None  # standard: biased variance (the one that normalizes)
    sigma: Array | None = None  # range: sigma_hat
    var_unbiased: Array | None = None  # standard: n/(n-1) * var (what running_var tracks)
    # range: (C, K) stream index of the first max / min of each chunk
    argmax: IndexArray | None = None
    argmin: IndexArray | None = None


@dataclass(frozen=True, eq=False)
class IdealBackward:
    """Backward result: dx (N, C, H, W), dgamma and dbeta (C,)."""

    dx: Array
    dgamma: Array
    dbeta: Array


@dataclass(frozen=True, eq=False)
class _Stats:
    mean: Array
    inv_sigma: Array
    var: Array | None = None
    sigma: Array | None = None
    argmax: IndexArray | None = None
    argmin: IndexArray | None = None


# --- stream order -----------------------------------------------------------------------------


def _to_stream(a: Array) -> Array:
    """NCHW -> (C, n) with element i = n*H*W + h*W + w (numerics.md section 5)."""
    n_, c, h, w = a.shape
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(c, n_ * h * w)


def _from_stream(s: Array, shape: tuple[int, ...]) -> Array:
    """(C, n) in stream order -> NCHW of the given shape."""
    n_, c, h, w = shape
    return np.ascontiguousarray(s.reshape(c, n_, h, w).transpose(1, 0, 2, 3))


# --- argument checks --------------------------------------------------------------------------


def _as_inputs(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, dy: ArrayLike | None = None
) -> tuple[Array, Array, Array, Array | None]:
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {xa.shape}")
    c = xa.shape[1]
    ga = np.asarray(gamma, dtype=np.float64)
    ba = np.asarray(beta, dtype=np.float64)
    for name, v in (("gamma", ga), ("beta", ba)):
        if v.shape != (c,):
            raise ValueError(f"{name} must have shape ({c},), got {v.shape}")
    dya = None
    if dy is not None:
        dya = np.asarray(dy, dtype=np.float64)
        if dya.shape != xa.shape:
            raise ValueError(f"dy must have the shape of x {xa.shape}, got {dya.shape}")
    return xa, ga, ba, dya


def _check_layout(mode: str, n: int, chunks: int, lanes: int) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if chunks < 1 or lanes < 1:
        raise ValueError(f"chunks and lanes must be >= 1, got chunks={chunks}, lanes={lanes}")
    if mode == "standard":
        if chunks != 1:
            raise ValueError(f"chunks must be 1 for standard BN, got {chunks}")
        if n < 2:
            raise ValueError(f"standard BN needs n = N*H*W >= 2, got {n}")
        return
    # same bound as Spec.min_channel_elems: C(n/K) needs n/K > 1, every chunk needs a beat
    n_min = max(2 * chunks, (chunks - 1) * lanes + 1)
    if n < n_min:
        raise ValueError(f"range BN with chunks={chunks}, lanes={lanes} needs n = N*H*W >= "
                         f"{n_min}, got {n}")


# --- statistics -------------------------------------------------------------------------------


def _stats(xs: Array, *, mode: str, eps: float, chunks: int, lanes: int) -> _Stats:
    c, n = xs.shape
    mean = xs.mean(axis=1)
    if mode == "standard":
        # two-pass variance: the ideal model should not inherit E[x^2] - mu^2 cancellation
        var = np.mean((xs - mean[:, None]) ** 2, axis=1)
        return _Stats(mean=mean, inv_sigma=1.0 / np.sqrt(var + eps), var=var)

    rows = np.arange(c)
    smax = np.zeros(c)
    smin = np.zeros(c)
    amax = np.empty((c, chunks), dtype=np.int64)
    amin = np.empty((c, chunks), dtype=np.int64)
    for k, (a, b) in enumerate(chunk_bounds(n, lanes, chunks)):
        seg = xs[:, a:b]
        # np.argmax/argmin return the first occurrence: the contract's "first in stream order"
        im, jm = seg.argmax(axis=1), seg.argmin(axis=1)
        smax += seg[rows, im]
        smin += seg[rows, jm]
        amax[:, k] = a + im
        amin[:, k] = a + jm
    sigma = (smax - smin) * range_constant(n, chunks)
    return _Stats(mean=mean, inv_sigma=1.0 / (sigma + eps), sigma=sigma, argmax=amax,
                  argmin=amin)


def _dsigma_dx(st: _Stats, c: int, n: int, chunks: int) -> Array:
    """d sigma_hat / d x_j in stream order: +c_k at each chunk's argmax, -c_k at its argmin."""
    assert st.argmax is not None and st.argmin is not None
    ck = range_constant(n, chunks)
    d = np.zeros((c, n))
    rows = np.broadcast_to(np.arange(c)[:, None], st.argmax.shape)
    # add.at, not fancy +=: a constant chunk has argmax == argmin and must net to 0
    np.add.at(d, (rows, st.argmax), ck)
    np.add.at(d, (rows, st.argmin), -ck)
    return d


# --- public API -------------------------------------------------------------------------------


def forward(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    *,
    mode: str,
    eps: float,
    chunks: int = 1,
    lanes: int = 1,
) -> IdealForward:
    """Training-mode BN forward in float64 (batch statistics over N, H, W)."""
    xa, ga, ba, _ = _as_inputs(x, gamma, beta)
    xs = _to_stream(xa)
    c, n = xs.shape
    _check_layout(mode, n, chunks, lanes)
    st = _stats(xs, mode=mode, eps=eps, chunks=chunks, lanes=lanes)
    x_hat = (xs - st.mean[:, None]) * st.inv_sigma[:, None]
    y = ga[:, None] * x_hat + ba[:, None]
    return IdealForward(
        y=_from_stream(y, xa.shape),
        x_hat=_from_stream(x_hat, xa.shape),
        mean=st.mean,
        inv_sigma=st.inv_sigma,
        var=st.var,
        sigma=st.sigma,
        var_unbiased=None if st.var is None else st.var * (n / (n - 1)),
        argmax=st.argmax,
        argmin=st.argmin,
    )


def backward(
    x: ArrayLike,
    dy: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    *,
    mode: str,
    eps: float,
    chunks: int = 1,
    lanes: int = 1,
    range_grad: str = "exact",
) -> IdealBackward:
    """Gradients of training-mode BN w.r.t. x, gamma and beta, given dy = dL/dy.

    With s = inv_sigma, x_hat_i = (x_i - mu) * s and dgamma = sum_i dy_i x_hat_i:
    d x_hat_i / d x_j = s (delta_ij - 1/n) - x_hat_i * s * d sigma/d x_j, hence
    dx_j = gamma s (dy_j - mean(dy) - dgamma * d sigma / d x_j), where d sigma / d x_j is
    x_hat_j / n for standard BN (sigma = sqrt(var + eps)) and c_k (+1 at the chunk's argmax,
    -1 at its argmin) for range BN; range_grad="constant" drops that term for range BN.
    """
    if range_grad not in RANGE_GRADS:
        raise ValueError(f"range_grad must be one of {RANGE_GRADS}, got {range_grad!r}")
    xa, ga, ba, dya = _as_inputs(x, gamma, beta, dy)
    assert dya is not None
    xs, dys = _to_stream(xa), _to_stream(dya)
    c, n = xs.shape
    _check_layout(mode, n, chunks, lanes)
    st = _stats(xs, mode=mode, eps=eps, chunks=chunks, lanes=lanes)
    x_hat = (xs - st.mean[:, None]) * st.inv_sigma[:, None]

    dbeta = dys.sum(axis=1)
    dgamma = (dys * x_hat).sum(axis=1)
    g = dys - (dbeta / n)[:, None]
    if mode == "standard":
        g -= x_hat * (dgamma / n)[:, None]
    elif range_grad == "exact":
        g -= dgamma[:, None] * _dsigma_dx(st, c, n, chunks)
    dx = (ga * st.inv_sigma)[:, None] * g
    return IdealBackward(dx=_from_stream(dx, xa.shape), dgamma=dgamma, dbeta=dbeta)


def range_grad_difference(
    x: ArrayLike,
    dy: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    *,
    eps: float,
    chunks: int = 1,
    lanes: int = 1,
) -> dict[str, float]:
    """How far the constant-sigma range-BN dx is from the exact one (dgamma, dbeta agree).

    rel_rms = rms(dx_exact - dx_constant) / rms(dx_exact); max_abs = max |dx_exact - dx_const|.
    """
    exact, const = (
        backward(x, dy, gamma, beta, mode="range", eps=eps, chunks=chunks, lanes=lanes,
                 range_grad=rg).dx
        for rg in RANGE_GRADS
    )
    diff = exact - const
    rms_diff = math.sqrt(float(np.mean(diff**2)))
    rms_exact = math.sqrt(float(np.mean(exact**2)))
    if rms_exact == 0.0:
        rel = 0.0 if rms_diff == 0.0 else math.inf
    else:
        rel = rms_diff / rms_exact
    return {"rel_rms": rel, "max_abs": float(np.max(np.abs(diff)))}
