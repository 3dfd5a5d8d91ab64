"""The MX family (OCP Microscaling v1.0, docs/numerics.md section 11): its constants, the golden
kernel against independent implementations of the element types and of the MX conversion
(ml_dtypes in the main suite; torchao's MX conversion with the ``torch`` marker), the exact
rational reference, and the quantization API and command."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lightnorm
from lightnorm.cli import main
from lightnorm.spec import SpecError, from_dict, load
from lightnorm.spec.formats import ELEMENTS, MXFormat, build_storage
from lightnorm.verify import golden
from lightnorm.verify.encoding import Encoded, encode

from .reference_model import quantize_mx_block

FP_ELEMENTS = {"fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
               "fp6_e3m2": ml_dtypes.float6_e3m2fn, "fp6_e2m3": ml_dtypes.float6_e2m3fn,
               "fp4_e2m1": ml_dtypes.float4_e2m1fn}


def test_element_constants_are_the_specifications() -> None:
    maxes = {"fp8_e4m3": 448.0, "fp8_e5m2": 57344.0, "fp6_e3m2": 28.0, "fp6_e2m3": 7.5,
             "fp4_e2m1": 6.0, "int8": 127 / 64}
    emax = {"fp8_e4m3": 8, "fp8_e5m2": 15, "fp6_e3m2": 4, "fp6_e2m3": 2, "fp4_e2m1": 2,
            "int8": 0}
    assert set(ELEMENTS) == set(maxes)
    for name, el in ELEMENTS.items():
        assert el.max_value == maxes[name] and el.emax == emax[name]
        if name in FP_ELEMENTS:
            fi = ml_dtypes.finfo(FP_ELEMENTS[name])
            assert el.max_value == float(fi.max)
            assert 2.0 ** el.lsb == float(fi.smallest_subnormal)
            assert 2.0 ** el.emin == float(fi.smallest_normal)
            # the pattern of the largest normal is ml_dtypes' (sign bit clear)
            assert el.maxpat == int(np.array(fi.max, FP_ELEMENTS[name]).view(np.uint8))
    f = MXFormat("fp8_e4m3")
    assert f.block == 32 and f.bits_per_element == 8.25 and f.view.xw == 8
    assert f.rules.subnormals == "keep" and f.rules.finite_only and f.exact_beat_sum
    assert f.max_value == 448.0 * 2.0 ** 127 and f.lsb_exp == -127 - 9


def test_block_rules() -> None:
    with pytest.raises(SpecError, match=r"storage.x.element = 'fp9'"):
        build_storage({"kind": "mx", "element": "fp9"}, "storage.x")
    with pytest.raises(SpecError, match=r"storage.x.block = 24"):
        build_storage({"kind": "mx", "element": "int8", "block": 24}, "storage.x")
    table = load("lightnorm-mxfp8").to_dict()
    table["storage"]["y"]["block"] = 8  # lanes = 16: a beat would span two blocks
    with pytest.raises(SpecError, match=r"^storage.y.block = 8: expected a multiple of"):
        from_dict(table)


# ---- the golden kernel against independent element and scale implementations --------------
def _blocks(name: str, rng: np.random.Generator, nblk: int, k: int) -> np.ndarray:
    """Random blocks over a wide range and adversarial ones: all zero, one huge value among
    tiny ones, values at, just over and far over the element's largest normal, subnormal
    elements, exact ties of the element grid, values far below 2^-127, far above 2^127."""
    el = ELEMENTS[name]
    x = rng.standard_normal((nblk, k)) * 2.0 ** rng.integers(-30, 30, (nblk, 1))
    top = 2.0 ** el.emax  # a block maximum in [top, 2 top) makes the scale 1
    x[0] = 0.0
    x[1] = rng.standard_normal(k) * 1e-3
    x[1, 3] = 1e6
    x[2] = rng.uniform(-1, 1, k) * 2 * top
    x[2, 0] = el.max_value
    x[3] = rng.uniform(-1, 1, k) * 2 * top
    x[3, 0] = -(el.max_value + (2 * top - el.max_value) * 0.75)  # rounds past the max
    x[4] = top
    x[4, 1:] = 2.0 ** el.lsb * rng.integers(-7, 8, k - 1)  # subnormal elements
    x[5] = top
    x[5, 1:] = 2.0 ** el.lsb * (rng.integers(-20, 20, k - 1) + 0.5)  # ties
    x[6] = rng.standard_normal(k) * 2.0 ** -140
    x[7] = rng.standard_normal(k) * 2.0 ** 140
    return x


def _spec_scale(x: np.ndarray, emax: int) -> np.ndarray:
    """E of each block (rows), straight from the specification's formula."""
    amax = np.abs(x).max(axis=1)
    _, ex = np.frexp(amax)  # amax = f * 2^ex, f in [0.5, 1): floor(log2 amax) = ex - 1
    return np.where(amax > 0, np.clip(ex - 1 - emax, -127, 127), -127)


@pytest.mark.parametrize("name", list(FP_ELEMENTS))
def test_fp_elements_and_scales_match_ml_dtypes(name: str) -> None:
    el, dt = ELEMENTS[name], FP_ELEMENTS[name]
    x = _blocks(name, np.random.default_rng(7), 64, 32)
    enc = encode(x, MXFormat(name))
    e = _spec_scale(x, el.emax)
    scale = np.ldexp(1.0, e).astype(ml_dtypes.float8_e8m0fnu)  # E8M0 from ml_dtypes
    assert np.array_equal(enc.exps[:, 0], scale.view(np.uint8))
    q = np.clip(x / np.ldexp(1.0, e)[:, None], -el.max_value, el.max_value)  # saturation
    ref = q.astype(dt)  # nearest-even with subnormals, ml_dtypes' own conversion
    bits = ref.view(np.uint8).astype(np.uint64)
    # the one difference: an element that rounds to -0 is +0 here (zero is always +0)
    negzero = (ref.astype(np.float64) == 0) & np.signbit(ref.astype(np.float64))
    assert negzero.any() and not (enc.bits[negzero]).any()
    assert np.array_equal(enc.bits[~negzero], bits[~negzero])
    dec = ref.astype(np.float64) * np.ldexp(1.0, e)[:, None]
    assert np.array_equal(enc.vals, dec)  # -0.0 == +0.0
    assert np.array_equal(Encoded.from_bits(MXFormat(name), 32, enc.bits, enc.exps).vals,
                          enc.vals)


def test_int8_elements_and_scales() -> None:
    x = _blocks("int8", np.random.default_rng(8), 64, 32)
    enc = encode(x, MXFormat("int8"))
    e = _spec_scale(x, 0)
    assert np.array_equal(enc.exps[:, 0], e + 127)
    code = np.clip(np.rint(x / np.ldexp(1.0, e)[:, None] * 64), -127, 127).astype(np.int64)
    assert np.array_equal(enc.bits.astype(np.int64), code & 0xFF)
    assert -127 in code and 127 in code  # saturation, symmetric
    # the code -128 is never produced, and reads as -2
    f = MXFormat("int8", 2)
    dec = Encoded.from_bits(f, 2, np.array([[0x80, 0x7F]]), np.array([[127]]))
    assert dec.vals.tolist() == [[-2.0, 127 / 64]]


def test_reserved_patterns_decode_as_the_specification_says() -> None:
    f = MXFormat("fp8_e4m3", 2)
    d = Encoded.from_bits(f, 2, np.array([[0x7F, 0x01]]), np.array([[255]])).vals
    assert np.isnan(d).all()  # E4M3 NaN; the E8M0 NaN scale
    g = MXFormat("fp8_e5m2", 2)
    d = Encoded.from_bits(g, 2, np.array([[0x7C, 0xFD]]), np.array([[127]])).vals
    assert d[0, 0] == np.inf and np.isnan(d[0, 1])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(ELEMENTS)),
       st.lists(st.floats(-1e40, 1e40, allow_nan=False, allow_subnormal=True), min_size=1,
                max_size=40))
def test_kernel_matches_the_rational_reference(name: str, vals: list[float]) -> None:
    f = MXFormat(name, 8)
    got = encode(np.array([vals]), f).vals[0]
    ref: list[Fraction] = []
    for b in range(0, len(vals), 8):
        ref += quantize_mx_block([Fraction(v) for v in vals[b:b + 8]], f)[1]
    assert [Fraction(v) for v in got] == ref


def test_golden_model_matches_the_rational_reference() -> None:
    from .reference_model import as_float, reference

    for preset in ("lightnorm-mxfp8", "lightnorm-mxint8"):
        spec = load(preset)
        rng = np.random.default_rng(3)
        shape = (2, 2, 1, 64)
        x = rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 20, shape)
        dy = rng.standard_normal(shape) * 1e-2
        g, b = np.array([1.0, 0.5]), np.array([0.0, 0.25])
        ref = reference(spec, x, dy, g, b)
        fw = golden.forward(spec, x, g, b)
        bw = golden.backward(spec, x, dy, g, b, saved=fw)
        assert np.array_equal(fw.y_enc.vals, as_float(ref["y"]))
        assert np.array_equal(bw.dx_enc.vals, as_float(ref["dx"]))
        assert np.array_equal(bw.dgamma, as_float(ref["dgamma"]))


def test_wide_squares_sum_exactly() -> None:
    """E5M2 beats whose squares span more than 64 bits: the golden sum of squares is the exact
    rational one rounded once (standard BN)."""
    from .reference_model import as_float, reference

    table = load("lightnorm-mxfp8").to_dict()
    table["bn"] = {"mode": "standard"}
    table["storage"]["x"] = {"kind": "mx", "element": "fp8_e5m2"}
    spec = from_dict(table)
    x = np.zeros((1, 1, 1, 32))
    x[0, 0, 0, :4] = [57344.0, 2.0 ** -16, 3 * 2.0 ** -15, -1.0]
    x[0, 0, 0, 16:20] = [1.0, 2.0 ** -14, 2.0 ** -16, 5.0]
    ref = reference(spec, x, x, np.ones(1), np.zeros(1))
    fw = golden.forward(spec, x)
    assert np.array_equal(fw.inv_sigma, as_float(ref["inv_sigma"]))


# ---- the quantization API and command ------------------------------------------------------
def test_quantize_blocks_along_the_last_axis() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 40))
    table = {"kind": "mx", "element": "fp6_e2m3", "block": 8}
    q = lightnorm.quantize(table, x)
    assert q.shape == x.shape and q.dtype == np.float64
    assert np.array_equal(q, encode(x.reshape(6, 40), build_storage(table, "f")).vals
                          .reshape(x.shape))
    assert np.array_equal(lightnorm.quantize(MXFormat("fp6_e2m3", 8), x), q)
    assert np.array_equal(lightnorm.quantize(table, q), q)  # idempotent on stored values
    with pytest.raises(ValueError, match="inf or NaN"):
        lightnorm.quantize(table, np.array([1.0, np.inf]))
    with pytest.raises(SpecError, match="format.element"):
        lightnorm.quantize({"kind": "mx", "element": "e4m3"}, x)
    with pytest.raises(TypeError):
        lightnorm.quantize("mx", x)


def test_quantize_command(tmp_path: Path, capsys: Any) -> None:
    fmt = tmp_path / "f.toml"
    fmt.write_text('kind = "mx"\nelement = "int8"\nblock = 16\n')
    x = np.random.default_rng(2).standard_normal((4, 50))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "sub" / "q.npy"
    assert main(["quantize", str(fmt), "--in", str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    assert np.array_equal(np.load(out), lightnorm.quantize(MXFormat("int8", 16), x))
    capsys.readouterr()
    np.save(tmp_path / "bad.npy", np.array([np.nan]))
    bad_cases = [
        [str(fmt), "--in", str(tmp_path / "bad.npy"), "--out", str(out)],
        [str(tmp_path / "x.npy"), "--in", str(tmp_path / "x.npy"), "--out", str(out)],
        [str(fmt), "--in", str(fmt), "--out", str(out)],
        [str(fmt), "--in", str(tmp_path / "x.npy"), "--out", str(tmp_path)],
    ]
    for argv in bad_cases:
        assert main(["quantize", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("lightnorm: error: ") and err.count("\n") == 1


# ---- an independent MX implementation: torchao's conversion (torch extra) -------------------
@pytest.mark.torch
@pytest.mark.parametrize("name", list(FP_ELEMENTS))
def test_scales_and_elements_match_torchao(name: str) -> None:
    """torchao.prototype.mx_formats.to_mx (OCP 'FLOOR' scale mode) on float32 blocks: identical
    scales and element patterns, except where torchao departs from the specification - for a
    scale of 2^-127 (field 0) it divides by 2^-126 (float32's smallest normal), and it keeps the
    sign of an element that rounds to zero (-0)."""
    torch = pytest.importorskip("torch")
    mx_tensor = pytest.importorskip("torchao.prototype.mx_formats.mx_tensor")
    from torchao.prototype.mx_formats import constants

    dtype = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2,
             "fp6_e3m2": constants.DTYPE_FP6_E3M2, "fp6_e2m3": constants.DTYPE_FP6_E2M3,
             "fp4_e2m1": torch.float4_e2m1fn_x2}[name]
    x64 = _blocks(name, np.random.default_rng(9), 64, 32)
    x64[7] *= 2.0 ** -20  # float32 inputs: at most 2^128
    x = x64.astype(np.float32)
    x[6] = np.random.default_rng(1).standard_normal(32).astype(np.float32) * 2.0 ** -126
    scale, data = mx_tensor.to_mx(torch.from_numpy(x.copy()), dtype, 32)
    t_scale = scale.view(torch.uint8).numpy().reshape(-1).astype(np.uint64)
    t_bits = data.view(torch.uint8).numpy().astype(np.uint64)
    if name == "fp4_e2m1":  # two elements a byte, the first in the low nibble
        t_bits = np.stack([t_bits & 0xF, t_bits >> 4], axis=-1).reshape(x.shape)
    enc = encode(x.astype(np.float64), MXFormat(name))
    assert np.array_equal(enc.exps[:, 0], t_scale)
    el = ELEMENTS[name]
    negzero = t_bits == (1 << (el.width - 1))
    normal = (enc.exps[:, 0] != 0)[:, None]
    same = normal & ~negzero
    assert np.array_equal(enc.bits[same], t_bits[same])
    assert not enc.bits[negzero & normal].any()
    # blocks at scale field 0: torchao's elements are the values at 2^-126, ours at 2^-127
    low = enc.exps[:, 0] == 0
    assert low.any()
    ours_at_126 = encode(x[low].astype(np.float64) * 0.5, MXFormat(name))
    assert np.array_equal(np.where(negzero[low], 0, t_bits[low]), ours_at_126.bits)
