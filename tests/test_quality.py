"""Tests of lightnorm.verify.quality: the numerical-quality measurement of a spec."""

from __future__ import annotations

import json
import math
import tomllib
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightnorm.spec import Spec, SpecError, dumps, from_dict, load, preset_names
from lightnorm.verify import fpnum, golden, ideal, quality
from lightnorm.verify.encoding import encode, from_stream

from .strategies import valid_spec_tables

PRESETS = ("fp32-baseline", "bf16-standard", "lightnorm", "lightnorm-aggressive")
SUMMARY_KEYS = {"y_vs_own", "dx_vs_own", "y_vs_standard", "dx_vs_standard", "error"}
METRIC_KEYS = {"rel_rms", "sqnr_db", "max_abs_err"}


@cache
def preset_result(name: str) -> dict[str, Any]:
    return quality.measure(load(name))


def table_of(spec: Spec) -> dict[str, Any]:
    return tomllib.loads(dumps(spec))


def with_compute_bits(name: str, man_bits: int) -> Spec:
    t = table_of(load(name))
    t["compute"]["man_bits"] = man_bits
    return from_dict(t)


def check_well_formed(res: dict[str, Any], spec: Spec) -> None:
    assert set(res) == {"version", "shape", "mode", "distributions", "summary"}
    assert res["version"] == quality.QUALITY_VERSION
    assert res["mode"] == spec.bn.mode
    assert list(res["distributions"]) == list(quality.DISTRIBUTIONS)
    for per in res["distributions"].values():
        assert set(per) == {"y", "dx"}
        for tensor in per.values():
            assert set(tensor) == {"vs_standard", "vs_own"}
            for m in tensor.values():
                assert set(m) == METRIC_KEYS
                for v in m.values():
                    assert v is None or (isinstance(v, float) and math.isfinite(v))
    s = res["summary"]
    assert set(s) == SUMMARY_KEYS
    for t in ("y", "dx"):
        for ref in ("vs_own", "vs_standard"):
            rels = [res["distributions"][d][t][ref]["rel_rms"]
                    for d in quality.SUMMARY_DISTRIBUTIONS]
            if None in rels:
                assert s[f"{t}_{ref}"] is None
            else:
                assert s[f"{t}_{ref}"] == pytest.approx(sum(rels) / len(rels), rel=1e-12)
    if s["y_vs_own"] is not None and s["dx_vs_own"] is not None:
        assert s["error"] == max(s["y_vs_own"], s["dx_vs_own"])
    json.dumps(res, allow_nan=False)


# ---- error_stats ----------------------------------------------------------------------------


def test_error_stats_zero_error() -> None:
    r = np.array([1.0, -2.0, 3.5])
    assert quality.error_stats(r.copy(), r) == {"rel_rms": 0.0, "sqnr_db": None,
                                                "max_abs_err": 0.0}


def test_error_stats_known_ratio() -> None:
    ref = np.full((4, 5), 2.0)
    e = quality.error_stats(ref * 1.1, ref)
    assert e["rel_rms"] == pytest.approx(0.1, rel=1e-12)
    assert e["sqnr_db"] == pytest.approx(20.0, rel=1e-12)
    assert e["max_abs_err"] == pytest.approx(0.2, rel=1e-12)
    # a 3-4-5 triangle: ||err|| / ||ref|| = 5 / 50 -> 20 dB; 10^-3 -> 60 dB
    e = quality.error_stats([30.0 + 3.0, 40.0 - 4.0], [30.0, 40.0])
    assert e["rel_rms"] == pytest.approx(0.1, rel=1e-12)
    assert e["sqnr_db"] == pytest.approx(20.0, rel=1e-12)
    assert e["max_abs_err"] == pytest.approx(4.0)
    e = quality.error_stats([1.001, -1.001], [1.0, -1.0])
    assert e["sqnr_db"] == pytest.approx(60.0, rel=1e-9)


def test_error_stats_degenerate() -> None:
    nones = {"rel_rms": None, "sqnr_db": None, "max_abs_err": None}
    assert quality.error_stats([1.0, math.inf], [1.0, 2.0]) == nones
    assert quality.error_stats([1.0, math.nan], [1.0, 2.0]) == nones
    # zero reference, nonzero result: infinite relative error
    assert quality.error_stats([0.0, 0.5], [0.0, 0.0]) == {"rel_rms": None, "sqnr_db": None,
                                                          "max_abs_err": 0.5}
    # |err| overflows float64, the ratio does not
    big = 1.5e308
    e = quality.error_stats([big], [-big])
    assert e["max_abs_err"] is None
    assert e["rel_rms"] == pytest.approx(2.0)
    assert e["sqnr_db"] == pytest.approx(-20 * math.log10(2.0))
    # tiny values: no underflow to a zero norm
    e = quality.error_stats([1e-300 * 1.5], [1e-300])
    assert e["rel_rms"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        quality.error_stats(np.zeros(3), np.zeros(4))


def test_error_stats_scale() -> None:
    """A reference that is zero by definition: the error relative to ``scale``."""
    e = quality.error_stats([3.0, -4.0], [0.0, 0.0], [30.0, 40.0])
    assert e["rel_rms"] == pytest.approx(0.1, rel=1e-12)
    assert e["sqnr_db"] == pytest.approx(20.0, rel=1e-12)
    assert e["max_abs_err"] == pytest.approx(4.0)
    # scale only replaces the denominator: the error is still got - ref
    e = quality.error_stats([1.5, 2.0], [1.0, 2.0], [5.0, 0.0])
    assert e["rel_rms"] == pytest.approx(0.1) and e["max_abs_err"] == pytest.approx(0.5)
    assert quality.error_stats([0.0, 0.0], [0.0, 0.0], [1.0, 1.0]) == {
        "rel_rms": 0.0, "sqnr_db": None, "max_abs_err": 0.0}
    assert quality.error_stats([0.5, 0.0], [0.0, 0.0], [0.0, 0.0])["rel_rms"] is None
    assert quality.error_stats([1.0], [0.0], [math.inf])["max_abs_err"] is None
    with pytest.raises(ValueError, match="scale"):
        quality.error_stats(np.zeros(3), np.zeros(3), np.ones(4))


# no tiny magnitudes: the direct formula below (the oracle) underflows on them
moderate = st.floats(-1e6, 1e6).map(lambda v: 0.0 if abs(v) < 1e-100 else v)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(moderate, moderate), min_size=1, max_size=40)
       .filter(lambda v: any(r != 0.0 for _, r in v)))
def test_error_stats_matches_direct_formula(pairs: list[tuple[float, float]]) -> None:
    got = np.array([g for g, _ in pairs])
    ref = np.array([r for _, r in pairs])
    err = got - ref
    noise, signal = float(np.sum(err**2)), float(np.sum(ref**2))
    e = quality.error_stats(got, ref)
    assert e["max_abs_err"] == pytest.approx(float(np.max(np.abs(err))), rel=1e-12)
    if noise == 0.0:
        assert e["rel_rms"] == 0.0 and e["sqnr_db"] is None
    else:
        assert e["rel_rms"] == pytest.approx(math.sqrt(noise / signal), rel=1e-9)
        assert e["sqnr_db"] == pytest.approx(10 * math.log10(signal / noise), rel=1e-9, abs=1e-9)


# ---- inputs and shape -----------------------------------------------------------------------


def test_seeds_are_fixed() -> None:
    # pinned: changing a seed changes every figure (bump QUALITY_VERSION)
    assert quality.seed_of("gaussian") == 0x7E6ADDE6AE978202
    seeds = [quality.seed_of(n) for n in quality.DISTRIBUTIONS]
    assert len(set(seeds)) == len(seeds)
    assert seeds == [quality.seed_of(n) for n in quality.DISTRIBUTIONS]


def test_inputs() -> None:
    shape = (4, 8, 16, 16)
    for name in quality.DISTRIBUTIONS:
        a, b = quality.inputs(name, shape), quality.inputs(name, shape)
        for f in ("x", "dy", "gamma", "beta"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), (name, f)
        assert a.x.shape == a.dy.shape == shape
        assert np.all((0.5 <= a.gamma) & (a.gamma <= 1.5))
        assert np.all((-0.5 <= a.beta) & (a.beta <= 0.5))
        assert 0.008 < float(np.std(a.dy)) < 0.012
    relu = quality.inputs("relu", shape).x
    assert relu.min() == 0.0 and 0.4 < np.mean(relu == 0.0) < 0.6
    out = quality.inputs("outliers", shape).x
    big = np.abs(out) > 25
    assert np.all(big.sum(axis=(0, 2, 3)) == 1)  # 0.1% of 1024, at least one per channel
    off = quality.inputs("offset", shape).x
    mean, std = off.mean(axis=(0, 2, 3)), off.std(axis=(0, 2, 3))
    assert np.all(np.abs(mean - 11.0) < 0.2) and np.all(np.abs(std - 1.0) < 0.1)
    # different distributions draw from different streams
    assert not np.array_equal(quality.inputs("gaussian", shape).gamma,
                              quality.inputs("relu", shape).gamma)
    with pytest.raises(ValueError, match="unknown distribution"):
        quality.inputs("uniform", shape)
    with pytest.raises(ValueError, match="shape"):
        quality.inputs("gaussian", (4, 8, 16))


shapes = st.tuples(*(st.integers(1, n) for n in (3, 20, 5, 6)))


@settings(max_examples=50, deadline=None)
@given(shapes)
def test_constant_inputs(shape: tuple[int, int, int, int]) -> None:
    """Every channel of `constant` is one value, CONSTANTS[c % 8], at every shape."""
    inp = quality.inputs("constant", shape)
    for ch in range(shape[1]):
        assert np.all(inp.x[:, ch] == quality.CONSTANTS[ch % len(quality.CONSTANTS)])
    assert inp.dy.shape == shape and np.all(inp.dy != 0.0)
    assert inp.gamma.shape == inp.beta.shape == (shape[1],)


def test_constants_cover_signs_and_saturation() -> None:
    c = np.array(quality.CONSTANTS)
    assert len(c) == quality.DEFAULT_CHANNELS  # one per channel at the default shape
    assert np.any(c == 0) and np.sum(c > 0) >= 3 and np.sum(c < 0) >= 3
    assert len(set(np.abs(c[c != 0]))) == len(c) - 1  # several magnitudes
    # documented: 6e4 below FP(5,6)'s max, -1e5 above it, 5e9 above FP(6,9)'s
    fp56 = load("lightnorm-aggressive").compute.max_value
    fp69 = load("lightnorm").compute.max_value
    assert 6.0e4 in c and 6.0e4 < fp56 < 1.0e5 and -1.0e5 in c
    assert max(c) == 5.0e9 > fp69


@settings(max_examples=20, deadline=None)
@given(st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(16, 24),
                 st.integers(16, 24)))
def test_offset_inputs(shape: tuple[int, int, int, int]) -> None:
    """`offset`: every channel's mean is about 11 standard deviations from zero."""
    x = quality.inputs("offset", shape).x
    ratio = x.mean(axis=(0, 2, 3)) / x.std(axis=(0, 2, 3))
    assert np.all((8.0 < ratio) & (ratio < 15.0)), ratio  # n >= 256: >= 6 sigma of the ratio


def check_default_shape(spec: Spec) -> None:
    n_, c, h, w = shape = quality.default_shape(spec)
    n = n_ * h * w
    assert c == 8 and h <= w
    lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
    assert lo <= n <= hi
    assert n == min(max(1024, lo), hi)
    if n == 1024:
        assert shape == (4, 8, 16, 16)


def test_default_shape_limits() -> None:
    for name in PRESETS:
        assert quality.default_shape(load(name)) == (4, 8, 16, 16)
    t = table_of(load("lightnorm"))
    t["hw"]["max_channel_elems"] = 300
    assert quality.default_shape(from_dict(t)) == (4, 8, 5, 15)
    t["bn"]["chunks"] = 1
    t["hw"]["max_channel_elems"] = 2
    assert quality.default_shape(from_dict(t)) == (2, 8, 1, 1)
    # range BN with 64 chunks of 64-lane beats needs n >= 63 * 64 + 1 = 4033 = 37 * 109
    t = table_of(load("lightnorm"))
    t["hw"]["lanes"] = 64
    t["bn"]["chunks"] = 64
    for role in ("x", "y", "dy", "dx"):
        t["storage"][role]["block"] = 64
    assert quality.default_shape(from_dict(t)) == (1, 8, 37, 109)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_spec_tables())
def test_default_shape_random_specs(table: dict[str, Any]) -> None:
    check_default_shape(from_dict(table))


def test_explicit_shape() -> None:
    spec = load("lightnorm")
    res = quality.measure(spec, (2, 3, 8, 8))
    assert res["shape"] == [2, 3, 8, 8]
    check_well_formed(res, spec)
    with pytest.raises(SpecError):
        quality.measure(spec, (1, 2, 2, 2))  # n = 4 < 113
    with pytest.raises(ValueError, match="shape"):
        quality.measure(spec, (1, 2, 2.5, 2))  # type: ignore[arg-type]


# ---- measure --------------------------------------------------------------------------------


def test_deterministic_and_json() -> None:
    for name in ("lightnorm", "bf16-standard"):
        spec = load(name)
        a, b = quality.measure(spec), quality.measure(spec)
        assert a == b
        assert json.dumps(a, allow_nan=False) == json.dumps(b, allow_nan=False)
        check_well_formed(a, spec)


def test_references_are_raw_inputs() -> None:
    """vs_own is the ideal BN of the spec's kind on the raw float64 x and dy."""
    spec = load("lightnorm")
    res = preset_result("lightnorm")
    inp = quality.inputs("student_t", quality.default_shape(spec))
    fr = golden.forward(spec, inp.x, inp.gamma, inp.beta)
    br = golden.backward(spec, inp.x, inp.dy, inp.gamma, inp.beta)
    kw: dict[str, Any] = {"mode": "range", "eps": spec.bn.eps, "chunks": spec.bn.chunks,
                          "lanes": spec.hw.lanes}
    y_ref = ideal.forward(inp.x, inp.gamma, inp.beta, **kw).y
    dx_ref = ideal.backward(inp.x, inp.dy, inp.gamma, inp.beta, range_grad="exact", **kw).dx
    d = res["distributions"]["student_t"]
    assert d["y"]["vs_own"] == quality.error_stats(fr.y, y_ref)
    assert d["dx"]["vs_own"] == quality.error_stats(br.dx, dx_ref)
    y_std = ideal.forward(inp.x, inp.gamma, inp.beta, mode="standard", eps=spec.bn.eps).y
    assert d["y"]["vs_standard"] == quality.error_stats(fr.y, y_std)


def test_fp32_baseline() -> None:
    res = preset_result("fp32-baseline")
    check_well_formed(res, load("fp32-baseline"))
    for name in quality.SUMMARY_DISTRIBUTIONS:
        per = res["distributions"][name]
        for t in ("y", "dx"):
            assert per[t]["vs_own"] == per[t]["vs_standard"]
            assert 0.0 < per[t]["vs_own"]["rel_rms"] < 1e-5
    s = res["summary"]
    assert s["error"] < 1e-5
    assert s["y_vs_own"] == s["y_vs_standard"] and s["dx_vs_own"] == s["dx_vs_standard"]


def test_range_bn_presets() -> None:
    ln = preset_result("lightnorm")["summary"]
    agg = preset_result("lightnorm-aggressive")["summary"]
    # range BN normalizes by sigma_hat (about 2 sigma): far from standard BN
    for k in ("y", "dx"):
        assert ln[f"{k}_vs_standard"] > 10 * ln[f"{k}_vs_own"]
        assert agg[f"{k}_vs_standard"] > 5 * agg[f"{k}_vs_own"]
        assert min(ln[f"{k}_vs_standard"], agg[f"{k}_vs_standard"]) > 0.2
    for k in ("y_vs_own", "dx_vs_own", "error"):
        assert agg[k] > 2 * ln[k]
    bf16 = preset_result("bf16-standard")["summary"]
    assert preset_result("fp32-baseline")["summary"]["error"] < bf16["error"] < ln["error"]


@pytest.mark.parametrize("name", preset_names())
def test_constant_distribution_is_exact(name: str) -> None:
    """Every preset on `constant` (numerics.md section 10: range BN by rng = 0, standard BN by
    the statistics pass's flag): dx is exactly 0 against the degenerate
    reference, and y's error is exactly that of beta rounded into S, P and Y - for every
    constant value, sign and magnitude, including values that saturate the lanes."""
    spec = load(name)
    res = preset_result(name)
    check_well_formed(res, spec)
    shape = quality.default_shape(spec)
    inp = quality.inputs("constant", shape)
    d = res["distributions"]["constant"]
    for ref in quality.REFERENCES:
        assert d["dx"][ref] == {"rel_rms": 0.0, "sqnr_db": None, "max_abs_err": 0.0}
    beta_s = fpnum.round_array(inp.beta, spec.scalar, "nearest")
    beta_p = fpnum.round_array(beta_s, spec.compute, spec.compute.rounding)
    n = shape[0] * shape[2] * shape[3]
    y = from_stream(encode(np.repeat(beta_p[:, None], n, axis=1), spec.storage.y).vals, shape)
    want = quality.error_stats(y, np.broadcast_to(inp.beta[None, :, None, None], shape))
    assert d["y"]["vs_own"] == d["y"]["vs_standard"] == want
    assert 0.0 < want["rel_rms"] < 0.1  # type: ignore[operator]


def test_summary_leaves_out_degenerate_distributions() -> None:
    """The `constant` figures (measured against y = beta and dx = 0, dx relative to gamma dy)
    are reported per distribution and stay out of the summary, which averages the others."""
    assert quality.SUMMARY_DISTRIBUTIONS == tuple(
        d for d in quality.DISTRIBUTIONS if d not in quality.DEGENERATE)
    assert "offset" in quality.SUMMARY_DISTRIBUTIONS and "constant" in quality.DEGENERATE
    res = preset_result("fp32-baseline")
    c = res["distributions"]["constant"]
    assert c["dx"]["vs_own"]["rel_rms"] == 0.0  # exact (numerics.md section 10)
    dists = res["distributions"]
    want = np.mean([dists[d]["dx"]["vs_own"]["rel_rms"] for d in quality.SUMMARY_DISTRIBUTIONS])
    assert res["summary"]["dx_vs_own"] == pytest.approx(want, rel=1e-12)
    assert c["dx"]["vs_own"] == c["dx"]["vs_standard"]


@pytest.mark.parametrize("name, bits", [
    ("fp32-baseline", (23, 16, 10, 6, 3)),
    ("lightnorm", (9, 7, 5, 3)),
])
def test_monotone_in_compute_bits(name: str, bits: tuple[int, ...]) -> None:
    sums = [quality.measure(with_compute_bits(name, b))["summary"] for b in bits]
    for key in ("y_vs_own", "dx_vs_own", "error"):
        seq = [s[key] for s in sums]
        assert all(a < b for a, b in zip(seq, seq[1:], strict=False)), (key, seq)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_spec_tables())
def test_random_specs(table: dict[str, Any]) -> None:
    spec = from_dict(table)
    res = quality.measure(spec)
    check_well_formed(res, spec)
    assert res["shape"] == list(quality.default_shape(spec))
    # the golden model saturates instead of overflowing: every figure is finite here
    assert all(v is not None for k, v in res["summary"].items())
    if spec.bn.mode == "standard":
        for per in res["distributions"].values():
            assert per["y"]["vs_own"] == per["y"]["vs_standard"]


def test_quality_command(capsys: pytest.CaptureFixture[str]) -> None:
    from lightnorm.cli import main

    assert main(["quality", "fp32-baseline", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fp32-baseline"] == quality.measure(load("fp32-baseline"))
    assert main(["quality", "fp32-baseline"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| spec | mode |") and table[2].startswith("| fp32-baseline |")
    assert main(["quality", "no-such-spec"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    from lightnorm.cli.core import build_parser

    assert build_parser().parse_args(["quality"]).specs == preset_names()  # default: all
