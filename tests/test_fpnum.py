"""FP primitives of the golden model against exact rationals and independent FP libraries."""

from __future__ import annotations

from fractions import Fraction as Fr

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightnorm.spec import FPFormat
from lightnorm.spec.rounding import decode_fp, encode_fp, round_exact, sqrt_exact
from lightnorm.verify import fpnum

MODES = ["nearest", "truncate"]


def all_values(f: FPFormat) -> np.ndarray:
    """Every value FP(e, m) can hold (each bit pattern not reserved), deduplicated."""
    pats = [b for b in range(1 << f.width)
            if (b >> f.man_bits) & ((1 << f.exp_bits) - 1) != (1 << f.exp_bits) - 1]
    return np.array(sorted({float(decode_fp(b, f)) for b in pats}))


def exact(op: str, a: float, b: float, f: FPFormat) -> float:
    fa, fb = Fr(a), Fr(b)
    if op == "add":
        return float(round_exact(fa + fb, f))
    if op == "sub":
        return float(round_exact(fa - fb, f))
    if op == "mul":
        return float(round_exact(fa * fb, f))
    if op == "recip":
        return f.max_value if fa == 0 else float(round_exact(1 / fa, f))
    return float(sqrt_exact(fa, f))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_fp43_every_pair(op: str, mode: str) -> None:
    f = FPFormat(4, 3, mode)
    v = all_values(f)
    a, b = np.repeat(v, v.size), np.tile(v, v.size)
    got = fpnum.op_array(op, a, b, f)
    want = np.array([exact(op, x, y, f) for x, y in zip(a, b, strict=True)])
    bad = np.nonzero(got != want)[0]
    assert a.size == 225 * 225 and bad.size == 0, [(a[i], b[i], got[i], want[i]) for i in bad[:5]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", ["recip", "sqrt"])
def test_fp43_every_value_unary(op: str, mode: str) -> None:
    f = FPFormat(4, 3, mode)
    v = all_values(f)
    if op == "sqrt":
        v = v[v >= 0]
    got = fpnum.op_array(op, v, None, f)
    want = np.array([exact(op, x, 0.0, f) for x in v])
    assert np.array_equal(got, want)


def test_every_pattern_encodes_and_decodes() -> None:
    for f in (FPFormat(4, 3), FPFormat(2, 1), FPFormat(5, 2)):
        v = all_values(f)
        bits = fpnum.encode_array(v, f)
        assert [encode_fp(x, f) for x in v] == [int(b) for b in bits]
        assert np.array_equal(fpnum.decode_array(bits, f), v)


def _random_values(f: FPFormat, rng: np.random.Generator, size: int) -> np.ndarray:
    e = rng.integers(f.emin - 3, min(f.emax + 2, 1023), size)
    x = np.ldexp(rng.uniform(1, 2, size), e) * rng.choice([-1, 1], size)
    edge = np.array([0.0, f.max_value, -f.max_value, f.min_normal, -f.min_normal,
                     f.min_normal * (1 - 2.0 ** -(f.man_bits + 2))])
    return fpnum.round_array(np.concatenate([x, edge]), f)


@pytest.mark.parametrize("fmt", [(8, 23), (11, 23), (2, 1), (11, 1), (5, 10), (8, 7), (6, 9)])
@pytest.mark.parametrize("mode", MODES)
def test_random_against_rationals(fmt: tuple[int, int], mode: str) -> None:
    f = FPFormat(*fmt, mode)
    rng = np.random.default_rng(fmt[0] * 100 + fmt[1])
    a, b = _random_values(f, rng, 1500), _random_values(f, rng, 1500)
    # one in eight pairs with equal exponents, to hit cancellation
    b[::8] = -a[::8] * (1 + 2.0 ** -f.man_bits)
    b = fpnum.round_array(b, f)
    for op in ("add", "mul"):
        got = fpnum.op_array(op, a, b, f)
        want = np.array([exact(op, x, y, f) for x, y in zip(a, b, strict=True)])
        assert np.array_equal(got, want), op
    for op, src in (("recip", a), ("sqrt", np.abs(a))):
        got = fpnum.op_array(op, src, None, f)
        assert np.array_equal(got, np.array([exact(op, x, 0.0, f) for x in src])), op


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(2, 11),
       st.integers(1, 23), st.sampled_from(MODES))
def test_round_any_float(v: float, e: int, m: int, mode: str) -> None:
    f = FPFormat(e, m, mode)
    assert fpnum.round_array(np.array([v]), f)[0] == float(round_exact(v, f))


# --- independent implementations: numpy float16/float32, ml_dtypes bfloat16 / float8_e5m2 --

LIBS = [
    ("float32", FPFormat(8, 23), np.float32),
    ("float16", FPFormat(5, 10), np.float16),
    ("bfloat16", FPFormat(8, 7), ml_dtypes.bfloat16),
    ("float8_e5m2", FPFormat(5, 2), ml_dtypes.float8_e5m2),
]


@pytest.mark.parametrize(("name", "f", "dtype"), LIBS, ids=[x[0] for x in LIBS])
def test_against_ieee_libraries_on_normal_range(name: str, f: FPFormat, dtype: type) -> None:
    """Where IEEE and the contract coincide (normal, finite results), results agree."""
    del name
    rng = np.random.default_rng(7)
    a = _random_values(f, rng, 20000)
    b = _random_values(f, rng, 20000)
    for op in ("add", "mul"):
        ours = fpnum.op_array(op, a, b, f)
        # float64 holds every sum/product of these exactly or to 53 bits; one rounding
        # into the library type is then the IEEE result (float32 and smaller).
        exact64 = a + b if op == "add" else a * b
        with np.errstate(over="ignore"):
            lib = exact64.astype(dtype).astype(np.float64)
        ok = np.isfinite(lib) & (np.abs(lib) >= f.min_normal) & (np.abs(lib) <= f.max_value)
        assert ok.sum() > 10000
        assert np.array_equal(ours[ok], lib[ok]), op
    # float32 inputs: ml_dtypes converts float64 through float32 (a double rounding that
    # differs from one correct rounding, e.g. -0x1.f2ffffc2235dep+3 to bfloat16)
    x = rng.normal(0, 10, 20000).astype(np.float32).astype(np.float64)
    with np.errstate(over="ignore"):
        lib = x.astype(dtype).astype(np.float64)
    ok = np.isfinite(lib) & (np.abs(lib) >= f.min_normal) & (np.abs(lib) <= f.max_value)
    assert np.array_equal(fpnum.round_array(x, f)[ok], lib[ok])
