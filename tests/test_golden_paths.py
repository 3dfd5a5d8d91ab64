"""The golden model's fast paths give the results of its plain ones, bit for bit.

The speed of the golden model (docs/benchmarks.md) comes from paths that must not change a
single bit: per-channel tables of block formats, beat sums reassociated where they are exact,
float32 host tensors read without a float64 copy, values written by the pass that encodes
them, patterns kept in narrow words. Each is compared here with the path it replaces; the
model itself is checked against the rational reference in test_golden.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightnorm.spec import from_dict, load, preset_names
from lightnorm.verify import golden
from lightnorm.verify.cosim import default_data, edge_data
from lightnorm.verify.encoding import Encoded, encode, pattern_dtype, to_stream

from .test_golden import small_specs

BLOCK_PRESETS = [p for p in preset_names() if load(p).storage.x.shared_exp_width]


def _outputs(spec: Any, d: dict[str, np.ndarray], **kw: Any) -> dict[str, np.ndarray]:
    """Every output of forward + backward (from saved and recomputed statistics)."""
    x, dy, g, b = d["x"], d["dy"], d["gamma"], d["beta"]
    fr = golden.forward(spec, x, g, b, running_mean=d["running_mean"],
                        running_disp=d["running_disp"])
    br = golden.backward(spec, x, dy, g, b, saved=fr)
    b2 = golden.backward(spec, x, dy, g, b)
    out = {"raw": fr.stats.raw, "final": fr.stats.final, "argmax": fr.stats.argmax,
           "argmin": fr.stats.argmin, "dgamma": br.dgamma, "dbeta": br.dbeta,
           "dgamma2": b2.dgamma, "dbeta2": b2.dbeta, "y": fr.y, "dx": br.dx}
    for name, enc in (("x", fr.x_enc), ("y", fr.y_enc), ("dy", br.dy_enc), ("dx", br.dx_enc),
                      ("dx2", b2.dx_enc)):
        out[name + "_bits"] = enc.bits
        out[name + "_exps"] = enc.exps if enc.exps is not None else np.zeros(0)
    return out


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k].view(np.uint8), b[k].view(np.uint8)), k


@pytest.mark.parametrize("name", BLOCK_PRESETS)
@pytest.mark.parametrize("kind", ["default", "edge"])
def test_tables_match_evaluating_each_element(name: str, kind: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load(name)
    shape = (8, 6, 24, 24)  # n = 4608: tables for up to 4 exponent fields of 256 patterns
    d = (default_data if kind == "default" else edge_data)(spec, shape, 4)
    n = shape[0] * shape[2] * shape[3]
    assert golden._table_limit(n, 1 << spec.storage.x.element_width) >= 2
    with_tables = _outputs(spec, d)
    monkeypatch.setattr(golden, "TABLE_WIDTH", 0)
    _assert_same(with_tables, _outputs(spec, d))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=small_specs(), seed=st.integers(0, 2**16))
def test_tables_of_random_specs(spec: Any, seed: int) -> None:
    """Small blocks and mantissas make tables pay off on small channels: every family, rounding
    and carry rule of the random specs."""
    d = default_data(spec, (8, 3, 12, 12), seed)
    with_tables = _outputs(spec, d)
    old = golden.TABLE_WIDTH
    try:
        golden.TABLE_WIDTH = 0
        _assert_same(with_tables, _outputs(spec, d))
    finally:
        golden.TABLE_WIDTH = old


def _with(name: str, **storage: dict[str, Any]) -> Any:
    t = load(name).to_dict()
    t["storage"] = {**t["storage"], **storage}
    t["hw"] = {**t["hw"], "lanes": 16}
    return from_dict(t)


MXE5 = {"kind": "mx", "element": "fp8_e5m2", "block": 32}
BFP11 = {"kind": "bfp", "block": 16, "man_bits": 23, "exp_bits": 11}


@pytest.mark.parametrize(("spec", "rules"), [
    (load("lightnorm"), (golden.SUM_EXACT, golden.SUM_EXACT)),
    (load("lightnorm-mxint8"), (golden.SUM_EXACT, golden.SUM_EXACT)),
    (load("fp32-baseline"), (golden.SUM_TREE, golden.SUM_TREE)),
    # E5M2 squares reach 2^64 grid steps; 11-bit exponents leave float64's range
    (_with("bf16-standard", x=MXE5, dy=MXE5, y=MXE5, dx=MXE5), (golden.SUM_EXACT, golden.SUM_WIDE)),
    (_with("bf16-standard", x=BFP11, dy=BFP11, y=BFP11, dx=BFP11),
     (golden.SUM_WIDE, golden.SUM_WIDE)),
])
def test_beat_sum_rules(spec: Any, rules: tuple[int, int]) -> None:
    lanes = spec.hw.lanes
    assert (golden._sum_rule(spec.storage.x, lanes, False),
            golden._sum_rule(spec.storage.x, lanes, True)) == rules


@pytest.mark.parametrize("name", ["lightnorm", "lightnorm-aggressive", "lightnorm-mxfp8",
                                  "lightnorm-mxint8"])
@pytest.mark.parametrize("kind", ["default", "edge"])
def test_reassociated_exact_sums_are_the_ordered_ones(name: str, kind: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """SUM_EXACT (vectorized, any order) and SUM_WIDE (in order, error-free) both give the
    exact beat sums where SUM_EXACT is chosen."""
    t = load(name).to_dict()
    t["bn"] = {"mode": "standard", "chunks": 1, "eps": 1e-5, "momentum": 0.1}  # squares too
    spec = from_dict(t)
    d = (default_data if kind == "default" else edge_data)(spec, (4, 6, 10, 12), 9)
    exact = _outputs(spec, d)
    rule = golden._sum_rule.__wrapped__

    def wide(fmt: Any, lanes: int, square: bool) -> int:
        r = rule(fmt, lanes, square)
        return golden.SUM_WIDE if r == golden.SUM_EXACT else r

    monkeypatch.setattr(golden, "_sum_rule", wide)
    _assert_same(exact, _outputs(spec, d))


@pytest.mark.parametrize("name", preset_names())
def test_float32_tensors_and_values_written_by_the_pass(name: str) -> None:
    spec = load(name)
    d = default_data(spec, (4, 5, 9, 11), 2)
    x32, dy32 = d["x"].astype(np.float32), d["dy"].astype(np.float32)
    y_out, dx_out = np.empty(x32.shape, np.float32), np.empty(x32.shape, np.float32)
    f32 = golden.forward(spec, x32, d["gamma"], d["beta"], y_out=y_out)
    b32 = golden.backward(spec, None, dy32, d["gamma"], d["beta"], saved=f32, dx_out=dx_out)
    f64 = golden.forward(spec, x32.astype(np.float64), d["gamma"], d["beta"])
    b64 = golden.backward(spec, x32.astype(np.float64), dy32.astype(np.float64), d["gamma"],
                          d["beta"])
    for a, b in [(f32.y_enc.words(), f64.y_enc.words()), (f32.x_enc.words(), f64.x_enc.words()),
                 (b32.dx_enc.words(), b64.dx_enc.words()), (b32.dgamma, b64.dgamma),
                 (b32.dbeta, b64.dbeta), (f32.running_mean, f64.running_mean)]:
        assert np.array_equal(a, b)
    assert np.array_equal(y_out, f64.y.astype(np.float32))
    assert np.array_equal(dx_out, b64.dx.astype(np.float32))


def test_outputs_and_inputs_are_checked() -> None:
    spec = load("lightnorm")
    x = np.ones((2, 2, 8, 8))
    with pytest.raises(ValueError, match="y_out"):
        golden.forward(spec, x, y_out=np.empty((2, 2, 8, 8)))  # float64
    with pytest.raises(ValueError, match="needs x"):
        golden.backward(spec, None, x)
    dy = x.astype(np.float32)
    dy[1, 1, 3, 3] = np.inf
    fr = golden.forward(spec, x)
    with pytest.raises(ValueError, match="dy contains inf or NaN"):
        golden.backward(spec, None, dy, saved=fr)
    with pytest.raises(TypeError, match="C-contiguous"):  # the kernels' own argument check
        golden._forward_kernel(np.ones((2, 2, 64))[:, :, ::2], *([0] * 40))


@pytest.mark.parametrize("name", preset_names())
def test_encoded_patterns_in_narrow_words(name: str) -> None:
    spec = load(name)
    d = default_data(spec, (2, 3, 8, 8), 5)
    fr = golden.forward(spec, d["x"], d["gamma"], d["beta"])
    host = encode(to_stream(d["x"]), spec.storage.x)  # the host encoder: uint64 patterns
    enc = fr.x_enc
    assert enc.patterns.dtype == pattern_dtype(spec.storage.x)
    assert enc.patterns.dtype.itemsize * 8 >= spec.storage.x.element_width
    assert enc.bits.dtype == np.uint64 and np.array_equal(enc.bits, host.bits)
    assert np.array_equal(enc.vals, host.vals)  # decoded from the narrow words
    back = Encoded.from_bits(enc.fmt, enc.n, enc.bits, enc.exps)
    assert np.array_equal(back.nchw(fr.shape, np.float32), fr.x_values.astype(np.float32))
    with pytest.raises(ValueError, match="does not hold"):
        enc.nchw((2, 3, 8, 9))



def test_compile_kernels_compiles_every_typed_kernel() -> None:
    """setup.sh's warm-up: every typed kernel has its one signature's overload afterwards (also
    in a process that has called some already), and a forward and backward pass of a spec of
    each family then compiles no further overload."""
    from lightnorm.verify import kernels

    sp = load("lightnorm")
    golden.forward(sp, default_data(sp, (1, 2, 1, 256), 0)["x"])  # kernels already in use
    n = golden.compile_kernels()
    assert n == 2 * len(kernels.KERNELS) + len(kernels.TYPED) >= 8
    assert all(sig.args in disp.overloads for disp, sig in kernels.TYPED)
    before = [len(disp.overloads) for disp, _sig in kernels.TYPED]
    for name in ("fp32-baseline", "lightnorm", "lightnorm-mxfp8"):
        sp = load(name)
        data = default_data(sp, (1, 2, 1, 256), 0)
        fw = golden.forward(sp, data["x"])
        golden.backward(sp, data["x"], data["dy"], saved=fw)
    assert [len(disp.overloads) for disp, _sig in kernels.TYPED] == before
