"""Tests of the float64 ideal BN model against PyTorch autograd and finite differences.

The ideal model is the yardstick of every quantized result, so it is checked against oracles
that share nothing with it: torch's own batch_norm (standard BN), a torch re-implementation of
range BN differentiated by autograd, and central finite differences (no torch needed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lightnorm.spec import chunk_bounds, range_constant
from lightnorm.verify import ideal

EPS = 1e-5
# H*W deliberately not a multiple of 2, 4, ...: 77, 33, 1, 15
SHAPES = [(2, 3, 4, 4), (3, 2, 7, 11), (1, 4, 3, 11), (5, 2, 1, 1), (2, 1, 3, 5)]
# (shape, chunks, lanes) valid for range BN (n >= max(2K, (K-1)L + 1))
RANGE_CASES = [
    ((2, 3, 4, 4), 1, 1),
    ((2, 3, 4, 4), 1, 4),
    ((2, 3, 4, 4), 4, 1),
    ((3, 2, 7, 11), 4, 4),
    ((3, 2, 7, 11), 8, 4),
    ((1, 4, 3, 11), 3, 4),
    ((2, 1, 3, 5), 2, 4),
]

FEW = settings(max_examples=15, deadline=None)


def _data(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, ...]:
    """Gaussian x (offset and scaled per channel), dy, gamma, beta: ties have probability 0."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    loc = rng.uniform(-3, 3, size=(1, c, 1, 1))
    scale = np.exp(rng.uniform(-2, 2, size=(1, c, 1, 1)))
    x = loc + scale * rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    gamma = rng.uniform(0.5, 2.0, size=c) * rng.choice([-1.0, 1.0], size=c)
    beta = rng.standard_normal(c)
    return x, dy, gamma, beta


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    """Relative to the tensor's scale: dx has near-zero entries made by cancellation."""
    expected = np.asarray(expected)
    atol = rtol * max(float(np.max(np.abs(expected))), 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --- PyTorch oracles --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch() -> ModuleType:
    return pytest.importorskip("torch")


def _torch_grads(
    torch: ModuleType, fwd: Callable[..., Any], x: np.ndarray, dy: np.ndarray,
    gamma: np.ndarray, beta: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """y, dx, dgamma, dbeta of fwd(x, gamma, beta) by autograd in float64."""
    xt, gt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True)
                  for a in (x, gamma, beta))
    y = fwd(xt, gt, bt)
    y.backward(torch.tensor(dy, dtype=torch.float64))
    return tuple(t.detach().numpy() for t in (y, xt.grad, gt.grad, bt.grad))


def _torch_standard(torch: ModuleType) -> Callable[..., Any]:
    def fwd(xt: Any, gt: Any, bt: Any) -> Any:
        return torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=EPS)
    return fwd


def _torch_range(torch: ModuleType, chunks: int, lanes: int, detach: bool) -> Callable[..., Any]:
    """Range BN written directly in torch: per-chunk .max()/.min() over chunk_bounds slices."""
    def fwd(xt: Any, gt: Any, bt: Any) -> Any:
        n_, c, h, w = xt.shape
        n = n_ * h * w
        xs = xt.transpose(0, 1).reshape(c, n)
        mu = xs.mean(dim=1)
        bounds = chunk_bounds(n, lanes, chunks)
        smax = sum(xs[:, a:b].max(dim=1).values for a, b in bounds)
        smin = sum(xs[:, a:b].min(dim=1).values for a, b in bounds)
        sig = (smax - smin) * range_constant(n, chunks)
        if detach:
            sig = sig.detach()
        inv = 1.0 / (sig + EPS)
        ys = gt[:, None] * ((xs - mu[:, None]) * inv[:, None]) + bt[:, None]
        return ys.reshape(c, n_, h, w).transpose(0, 1)
    return fwd


@pytest.mark.torch
@pytest.mark.parametrize("shape", SHAPES)
def test_standard_matches_torch(torch: ModuleType, shape: tuple[int, ...]) -> None:
    x, dy, gamma, beta = _data(shape, seed=sum(shape))
    y_t, dx_t, dg_t, db_t = _torch_grads(torch, _torch_standard(torch), x, dy, gamma, beta)
    f = ideal.forward(x, gamma, beta, mode="standard", eps=EPS)
    b = ideal.backward(x, dy, gamma, beta, mode="standard", eps=EPS)
    _close(f.y, y_t, 1e-10)
    _close(b.dx, dx_t, 1e-10)
    _close(b.dgamma, dg_t, 1e-10)
    _close(b.dbeta, db_t, 1e-10)
    # the statistics torch reports (biased var normalizes, unbiased var is the running one)
    xt = torch.tensor(x)
    assert f.var is not None and f.var_unbiased is not None
    _close(f.mean, xt.mean(dim=(0, 2, 3)).numpy(), 1e-12)
    _close(f.var, xt.var(dim=(0, 2, 3), unbiased=False).numpy(), 1e-12)
    _close(f.var_unbiased, xt.var(dim=(0, 2, 3), unbiased=True).numpy(), 1e-12)
    assert f.sigma is None and f.argmax is None


@pytest.mark.torch
@pytest.mark.parametrize("range_grad", ["exact", "constant"])
@pytest.mark.parametrize(("shape", "chunks", "lanes"), RANGE_CASES)
def test_range_matches_torch(
    torch: ModuleType, shape: tuple[int, ...], chunks: int, lanes: int, range_grad: str
) -> None:
    x, dy, gamma, beta = _data(shape, seed=sum(shape) + chunks + lanes)
    fwd = _torch_range(torch, chunks, lanes, detach=range_grad == "constant")
    y_t, dx_t, dg_t, db_t = _torch_grads(torch, fwd, x, dy, gamma, beta)
    kw: dict[str, Any] = {"mode": "range", "eps": EPS, "chunks": chunks, "lanes": lanes}
    f = ideal.forward(x, gamma, beta, **kw)
    b = ideal.backward(x, dy, gamma, beta, range_grad=range_grad, **kw)
    _close(f.y, y_t, 1e-10)
    _close(b.dx, dx_t, 1e-10)
    _close(b.dgamma, dg_t, 1e-10)
    _close(b.dbeta, db_t, 1e-10)
    assert f.var is None and f.var_unbiased is None
    assert f.argmax is not None and f.argmax.shape == (shape[1], chunks)


@pytest.mark.torch
@FEW
@given(
    n_=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 7),
    chunks=st.integers(1, 5), lanes=st.sampled_from([1, 2, 4, 8]), seed=st.integers(0, 2**32),
)
def test_random_shapes_match_torch(
    torch: ModuleType, n_: int, c: int, h: int, w: int, chunks: int, lanes: int, seed: int
) -> None:
    shape = (n_, c, h, w)
    n = n_ * h * w
    assume(n >= max(2, 2 * chunks, (chunks - 1) * lanes + 1))
    x, dy, gamma, beta = _data(shape, seed)
    y_t, dx_t, _, _ = _torch_grads(torch, _torch_standard(torch), x, dy, gamma, beta)
    _close(ideal.forward(x, gamma, beta, mode="standard", eps=EPS).y, y_t, 1e-10)
    _close(ideal.backward(x, dy, gamma, beta, mode="standard", eps=EPS).dx, dx_t, 1e-10)
    fwd = _torch_range(torch, chunks, lanes, detach=False)
    y_t, dx_t, _, _ = _torch_grads(torch, fwd, x, dy, gamma, beta)
    kw: dict[str, Any] = {"mode": "range", "eps": EPS, "chunks": chunks, "lanes": lanes}
    _close(ideal.forward(x, gamma, beta, **kw).y, y_t, 1e-10)
    _close(ideal.backward(x, dy, gamma, beta, **kw).dx, dx_t, 1e-10)


# --- finite differences (no torch) ------------------------------------------------------------


def _untied(shape: tuple[int, ...], seed: int, gap: float = 1e-4) -> tuple[np.ndarray, ...]:
    """Data whose channel values are pairwise >= gap apart, so a 1e-6 step moves no argmax."""
    while True:
        x, dy, gamma, beta = _data(shape, seed)
        xs = np.sort(x.transpose(1, 0, 2, 3).reshape(shape[1], -1), axis=1)
        if np.min(np.diff(xs, axis=1)) >= gap:
            return x, dy, gamma, beta
        seed += 10_000


def _fd_grad(f: Callable[[np.ndarray], float], a: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.empty_like(a)
    for i in np.ndindex(a.shape):
        ap, am = a.copy(), a.copy()
        ap[i] += h
        am[i] -= h
        g[i] = (f(ap) - f(am)) / (2 * h)
    return g


FD_CASES = [
    ("standard", 1, 1),
    ("range", 1, 1),
    ("range", 2, 1),
    ("range", 2, 4),  # n = 18, 5 beats: unequal chunks of 8 and 10 elements
    ("range", 3, 2),
]


@pytest.mark.parametrize(("mode", "chunks", "lanes"), FD_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_finite_differences(mode: str, chunks: int, lanes: int, seed: int) -> None:
    shape = (2, 3, 3, 3)
    x, w, gamma, beta = _untied(shape, seed)
    kw: dict[str, Any] = {"mode": mode, "eps": EPS, "chunks": chunks, "lanes": lanes}

    def loss(xv: np.ndarray, gv: np.ndarray = gamma, bv: np.ndarray = beta) -> float:
        # L = sum(w * y), so dL/dy = w
        return float(np.sum(w * ideal.forward(xv, gv, bv, **kw).y))

    b = ideal.backward(x, w, gamma, beta, **kw)
    _close(b.dx, _fd_grad(loss, x), 1e-6)
    _close(b.dgamma, _fd_grad(lambda gv: loss(x, gv, beta), gamma), 1e-6)
    _close(b.dbeta, _fd_grad(lambda bv: loss(x, gamma, bv), beta), 1e-6)


def test_finite_differences_see_the_range_term() -> None:
    """The constant-sigma gradient is NOT the derivative of the range-BN forward."""
    x, w, gamma, beta = _untied((2, 3, 3, 3), seed=3)
    kw: dict[str, Any] = {"mode": "range", "eps": EPS, "chunks": 2, "lanes": 1}
    fd = _fd_grad(lambda xv: float(np.sum(w * ideal.forward(xv, gamma, beta, **kw).y)), x)
    const = ideal.backward(x, w, gamma, beta, range_grad="constant", **kw).dx
    assert np.max(np.abs(const - fd)) > 1e-3 * np.max(np.abs(fd))


# --- structure of the range-BN gradient -------------------------------------------------------


@FEW
@given(
    n_=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 6),
    chunks=st.integers(1, 4), lanes=st.sampled_from([1, 2, 4]), seed=st.integers(0, 2**32),
)
def test_exact_minus_constant_is_the_argmax_argmin_term(
    n_: int, c: int, h: int, w: int, chunks: int, lanes: int, seed: int
) -> None:
    shape = (n_, c, h, w)
    n = n_ * h * w
    assume(n >= max(2 * chunks, (chunks - 1) * lanes + 1))
    x, dy, gamma, beta = _data(shape, seed)
    kw: dict[str, Any] = {"mode": "range", "eps": EPS, "chunks": chunks, "lanes": lanes}
    f = ideal.forward(x, gamma, beta, **kw)
    ex = ideal.backward(x, dy, gamma, beta, range_grad="exact", **kw)
    co = ideal.backward(x, dy, gamma, beta, range_grad="constant", **kw)
    assert f.argmax is not None and f.argmin is not None
    np.testing.assert_array_equal(ex.dgamma, co.dgamma)
    np.testing.assert_array_equal(ex.dbeta, co.dbeta)

    # expected difference: -gamma * inv_sigma * dgamma * c_k at argmax, + at argmin
    corr = gamma * f.inv_sigma * ex.dgamma * range_constant(n, chunks)
    want = np.zeros((c, n))
    rows = np.arange(c)[:, None]
    want[rows, f.argmax] -= corr[:, None]  # distinct chunks: no repeated index per row
    want[rows, f.argmin] += corr[:, None]
    got = (ex.dx - co.dx).transpose(1, 0, 2, 3).reshape(c, n)
    _close(got, want, 1e-9)

    # chunk argmax/argmin lie in their chunk and hold its max/min
    xs = x.transpose(1, 0, 2, 3).reshape(c, n)
    for k, (a, b) in enumerate(chunk_bounds(n, lanes, chunks)):
        assert np.all((a <= f.argmax[:, k]) & (f.argmax[:, k] < b))
        np.testing.assert_array_equal(xs[np.arange(c), f.argmax[:, k]], xs[:, a:b].max(axis=1))
        np.testing.assert_array_equal(xs[np.arange(c), f.argmin[:, k]], xs[:, a:b].min(axis=1))

    d = ideal.range_grad_difference(x, dy, gamma, beta, eps=EPS, chunks=chunks, lanes=lanes)
    diff = ex.dx - co.dx
    assert d["max_abs"] == pytest.approx(np.max(np.abs(diff)))
    assert d["rel_rms"] == pytest.approx(
        math.sqrt(np.mean(diff**2)) / math.sqrt(np.mean(ex.dx**2)))


def test_ties_go_to_the_first_index_in_stream_order() -> None:
    # one channel, n = 8, K = 2, L = 2: chunks [0, 4) and [4, 8); maxima tied at 1 and 3
    x = np.array([0.0, 5.0, 1.0, 5.0, -2.0, 3.0, -2.0, 3.0]).reshape(1, 1, 2, 4)
    gamma, beta = np.array([1.5]), np.array([0.2])
    f = ideal.forward(x, gamma, beta, mode="range", eps=EPS, chunks=2, lanes=2)
    np.testing.assert_array_equal(f.argmax, [[1, 5]])
    np.testing.assert_array_equal(f.argmin, [[0, 4]])


def test_constant_chunk_has_no_range_term() -> None:
    # chunk 0 is constant: argmax == argmin, so its +c_k and -c_k cancel (contract: "both: +0")
    x = np.array([2.0, 2.0, 2.0, 2.0, -1.0, 4.0, 0.5, 3.0]).reshape(1, 1, 1, 8)
    dy = np.linspace(-1, 1, 8).reshape(x.shape)
    gamma, beta = np.array([1.0]), np.array([0.0])
    kw: dict[str, Any] = {"mode": "range", "eps": EPS, "chunks": 2, "lanes": 1}
    ex = ideal.backward(x, dy, gamma, beta, range_grad="exact", **kw).dx.ravel()
    co = ideal.backward(x, dy, gamma, beta, range_grad="constant", **kw).dx.ravel()
    np.testing.assert_array_equal(ex[:4], co[:4])
    assert np.count_nonzero(ex[4:] != co[4:]) == 2


# --- why C(n) exists --------------------------------------------------------------------------


def test_range_sigma_tracks_the_std_on_gaussian_data() -> None:
    """sigma_hat is proportional to the std of Gaussian data; C(n) removes the n dependence.

    For n Gaussians E[max - min] ~ 2 * sigma * sqrt(2 ln n) (slowly: about 9% lower at n = 1e5),
    so with C(n) = 1/sqrt(2 ln n) as in the contract, sigma_hat estimates about 2 * sigma, not
    sigma. Banner et al.'s reference code multiplies C(n) by 0.175 * (1 + sqrt(pi * ln 4))
    (~0.54), which folds in the 1/2 and the finite-n bias; with it the ratio is ~1.
    """
    rng = np.random.default_rng(2024)
    c = 4
    x = 3.0 + 0.7 * rng.standard_normal((10, c, 100, 100))  # n = 1e5 per channel
    f = ideal.forward(x, np.ones(c), np.zeros(c), mode="range", eps=0.0)
    ratio = float(np.mean(f.sigma / x.std(axis=(0, 2, 3))))
    assert 1.7 < ratio < 2.0  # about 2 * (1 - 0.09)
    banner = 0.175 * (1.0 + math.sqrt(math.pi * math.log(4.0)))
    assert abs(ratio * banner - 1.0) < 0.1
    # the same ratio at a 100x smaller n: C(n) is what keeps it (roughly) n-independent
    f_small = ideal.forward(x[:1, :, :10, :100], np.ones(c), np.zeros(c), mode="range", eps=0.0)
    small = float(np.mean(f_small.sigma / x[:1, :, :10, :100].std(axis=(0, 2, 3))))
    assert abs(small / ratio - 1.0) < 0.2


# --- argument checks --------------------------------------------------------------------------


def test_rejects_bad_arguments() -> None:
    x, dy, gamma, beta = _data((2, 3, 2, 2), seed=0)
    with pytest.raises(ValueError, match="mode"):
        ideal.forward(x, gamma, beta, mode="layer", eps=EPS)
    with pytest.raises(ValueError, match="chunks must be 1"):
        ideal.forward(x, gamma, beta, mode="standard", eps=EPS, chunks=2)
    with pytest.raises(ValueError, match="needs n"):
        ideal.forward(x, gamma, beta, mode="range", eps=EPS, chunks=5)  # n = 8 < 2K
    with pytest.raises(ValueError, match="needs n"):
        ideal.forward(x, gamma, beta, mode="range", eps=EPS, chunks=3, lanes=4)  # 2 beats < K
    with pytest.raises(ValueError, match="range_grad"):
        ideal.backward(x, dy, gamma, beta, mode="range", eps=EPS, range_grad="approx")
    with pytest.raises(ValueError, match="gamma"):
        ideal.forward(x, gamma[:2], beta, mode="standard", eps=EPS)
    with pytest.raises(ValueError, match="dy"):
        ideal.backward(x, dy[:1], gamma, beta, mode="standard", eps=EPS)
