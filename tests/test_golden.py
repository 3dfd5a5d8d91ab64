"""The golden model against the slow rational reference (tests/reference_model.py).

Both implement docs/numerics.md independently; agreement is checked on decoded values of
every output (which fixes the encoded patterns: the encodings are bijective on the grid) and
on the encoded patterns round-tripping through the decoder.
"""

from __future__ import annotations

import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightnorm.spec import NORMALIZE_FORMS, FPFormat, SpecError, from_dict, load, preset_names
from lightnorm.spec.rounding import round_exact
from lightnorm.verify import fpnum, golden, ideal
from lightnorm.verify.encoding import Encoded, encode, from_stream, to_stream

from . import w1_contract
from .reference_model import as_float, reference


def fp_table(draw, exp_lo=2, exp_hi=11, man_hi=23):  # type: ignore[no-untyped-def]
    return {
        "exp_bits": draw(st.integers(exp_lo, exp_hi)),
        "man_bits": draw(st.integers(1, man_hi)),
        "rounding": draw(st.sampled_from(["nearest", "truncate"])),
    }


@st.composite
def small_specs(draw):  # type: ignore[no-untyped-def]
    """Random valid specs with small lanes/blocks/chunks so the reference stays fast."""
    lanes = draw(st.sampled_from([1, 2, 4, 8]))
    mode = draw(st.sampled_from(["standard", "range"]))
    chunks = draw(st.integers(1, 4)) if mode == "range" else 1

    def storage():  # type: ignore[no-untyped-def]
        if draw(st.booleans()):
            return {"kind": "fp", **fp_table(draw, exp_lo=3)}
        return {
            "kind": "bfp",
            "block": lanes * draw(st.sampled_from([1, 2, 4])),
            "man_bits": draw(st.integers(1, 12)),
            "exp_bits": draw(st.integers(3, 9)),
            "rounding": draw(st.sampled_from(["nearest", "truncate"])),
            "carry": draw(st.sampled_from(["saturate", "raise"])),
        }

    table = {
        "name": "rnd",
        "bn": {"mode": mode, "chunks": chunks, "eps": draw(st.sampled_from([1e-5, 1e-3, 0.1])),
               "momentum": 0.1, "normalize": draw(st.sampled_from(NORMALIZE_FORMS))},
        "hw": {"lanes": lanes, "max_channel_elems": 4096,
               "accum_ways": draw(st.sampled_from([1, 2, 4, 8, 16]))},
        "storage": {r: storage() for r in ("x", "y", "dy", "dx")},
        "compute": fp_table(draw, exp_lo=4, man_hi=16),
        "accum": fp_table(draw, exp_lo=6),
        "scalar": {"exp_bits": draw(st.integers(7, 11)), "man_bits": draw(st.integers(6, 23)),
                   "rounding": draw(st.sampled_from(["nearest", "truncate"]))},
    }
    try:
        return from_dict(table)
    except SpecError:
        from hypothesis import assume

        assume(False)


def _data(spec, shape, seed, kind="normal"):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 1.7, shape) * (2.0 ** rng.integers(-3, 4, (1, shape[1], 1, 1)))
    dy = rng.normal(0, 0.05, shape)
    if kind == "edge":
        x[:, 0] = 0.0  # all-zero channel
        if shape[1] > 1:
            x[:, 1] = 1.25  # constant channel
        if shape[1] > 2:
            big = spec.storage.x.max_value
            x[0, 2].flat[:2] = [min(big * 4, 1e308), -min(big * 4, 1e308)]  # saturation
            x[-1, 2].flat[-2:] = [1e-300, -3e-42]  # far below the smallest normal
            dy[0, 2].flat[:2] = [min(spec.storage.dy.max_value * 2, 1e308), 1e-310]
    g = rng.uniform(0.5, 1.5, shape[1])
    b = rng.uniform(-0.5, 0.5, shape[1])
    return x, dy, g, b


def _compare(spec, x, dy, g, b):  # type: ignore[no-untyped-def]
    fr = golden.forward(spec, x, g, b)
    br = golden.backward(spec, x, dy, g, b)
    ref = reference(spec, x, dy, g, b)
    n = x.shape[0] * x.shape[2] * x.shape[3]
    checks = {
        "y": (to_stream(fr.y), as_float(ref["y"])),
        "dx": (to_stream(br.dx), as_float(ref["dx"])),
        "mean": (fr.mean, as_float(ref["mean"])),
        "inv_sigma": (fr.inv_sigma, as_float(ref["inv_sigma"])),
        "scale": (fr.scale, as_float(ref["scale"])),
        "shift": (fr.shift, as_float(ref["shift"])),
        "dgamma": (br.dgamma, as_float(ref["dgamma"])),
        "dbeta": (br.dbeta, as_float(ref["dbeta"])),
    }
    for name, (got, want) in checks.items():
        bad = np.argwhere(got != want)
        assert bad.size == 0, (
            f"{spec.name} {name}: {len(bad)} mismatches, first at {tuple(bad[0])}: "
            f"golden {got[tuple(bad[0])]!r} reference {want[tuple(bad[0])]!r}"
        )
    # encoded patterns decode back to the same values
    for enc in (fr.y_enc, br.dx_enc, fr.x_enc, br.dy_enc):
        back = Encoded.from_bits(enc.fmt, n, enc.bits, enc.exps)
        assert np.array_equal(back.vals, enc.vals)
    assert np.array_equal(from_stream(fr.y_enc.vals, x.shape), fr.y)


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("kind", ["normal", "edge"])
@pytest.mark.parametrize("form", NORMALIZE_FORMS)
def test_presets_match_reference(name: str, kind: str, form: str) -> None:
    spec = load(name).with_normalize(form)
    # n = 2*11*13 = 286: not a multiple of any block; >= min_channel_elems (113 for K=8, L=16)
    # a seed per preset that does not change with PYTHONHASHSEED, so a failure reproduces
    x, dy, g, b = _data(spec, (2, 3, 11, 13), seed=zlib.crc32(name.encode()) % 1000, kind=kind)
    _compare(spec, x, dy, g, b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=small_specs(), seed=st.integers(0, 2**16), kind=st.sampled_from(["normal", "edge"]),
       hw=st.sampled_from([(3, 5), (1, 7), (4, 4), (2, 9)]))
def test_random_specs_match_reference(spec, seed, kind, hw) -> None:  # type: ignore[no-untyped-def]
    shape = (2, 3, *hw)
    n = shape[0] * hw[0] * hw[1]
    if n < spec.min_channel_elems():
        shape = (8, 3, *hw)
    x, dy, g, b = _data(spec, shape, seed, kind)
    _compare(spec, x, dy, g, b)


def _with(spec, **hw):  # type: ignore[no-untyped-def]
    t = spec.to_dict()
    t["hw"].update(hw)
    return from_dict(t)


@pytest.mark.parametrize(("name", "ways", "shape"), [
    ("lightnorm", 16, (1, 2, 1, 150)),  # K = 8 chunks < W = 16, B = 10 beats < W
    ("lightnorm", 2, (1, 2, 1, 150)),  # K = 8 > W = 2
    ("lightnorm", 8, (1, 2, 1, 113)),  # n = min_channel_elems: 8 beats, the last one short
    ("fp32-baseline", 4, (1, 2, 1, 3)),  # one short beat: three partials stay +0
    ("fp32-baseline", 8, (1, 2, 1, 16)),  # one full beat
    ("fp32-baseline", 4, (1, 2, 1, 50)),  # B = 4 = W
    ("bf16-standard", 16, (1, 2, 1, 49)),  # B = 4 < W
])
def test_ways_edge_cases_match_reference(name: str, ways: int,
                                         shape: tuple[int, int, int, int]) -> None:
    """Channels shorter than W beats, a single beat, range BN with K < W and K > W."""
    spec = _with(load(name), accum_ways=ways)
    x, dy, g, b = _data(spec, shape, seed=ways)
    _compare(spec, x, dy, g, b)


def test_ways_one_is_the_sequential_contract() -> None:
    """W = 1 gives the bits of the golden model from before accum_ways (one sequential sum per
    channel and for the chunk averages), kept in tests/data/w1_contract.npz; W = 4 does not."""
    path = Path(__file__).parent / "data" / "w1_contract.npz"
    differs = []
    with np.load(path) as z:
        for name, source, _ in w1_contract.CASES:
            inp = {k: z[f"{name}/in_{k}"] for k in ("x", "dy", "gamma", "beta")}
            want = {k[len(name) + 1:]: z[k] for k in z.files
                    if k.startswith(f"{name}/") and "/in_" not in k}
            spec1 = w1_contract.case_spec(source, accum_ways=1)
            got = w1_contract.outputs(spec1, inp)
            assert set(got) == set(want), name
            # the BFP-native backward (issue 17, docs/numerics.md section 9) changed the
            # contract of dgamma (and so dx) where x and dy are both BFP: the exact-rational
            # reference model checks those (test_presets_match_reference)
            changed = {"dgamma", "dx_bits", "dx_exps"} if spec1.exact_dot else set()
            for k, v in want.items():
                if k in changed:
                    continue
                assert np.array_equal(got[k], v), f"{name} {k}: W = 1 differs from the old model"
            four = w1_contract.outputs(w1_contract.case_spec(source, accum_ways=4), inp)
            differs.append(not np.array_equal(four["raw"], want["raw"]))
    # W changes the bits, so this test can fail (not on the BFP presets here: 10 beats of 7-bit
    # mantissas sum exactly in FP(8,15), in any order)
    assert sum(differs) >= len(differs) // 2, differs


def test_single_block_channel_and_bits() -> None:
    spec = load("lightnorm")
    # 8 chunks of 16 lanes need n >= 113; a (1, 2, 8, 16) tensor is 128 = 8 blocks of 16
    x, dy, g, b = _data(spec, (1, 2, 8, 16), 3)
    _compare(spec, x, dy, g, b)
    fr = golden.forward(spec, x, g, b)
    assert fr.y_enc.exps is not None and fr.y_enc.exps.shape == (2, 8)
    assert fr.y_enc.bits.dtype == np.uint64 and int(fr.y_enc.bits.max()) < 2 ** 8


def test_deterministic_and_saved_forward_reused() -> None:
    spec = load("lightnorm")
    x, dy, g, b = _data(spec, (4, 5, 6, 7), 11)
    f1, f2 = golden.forward(spec, x, g, b), golden.forward(spec, x, g, b)
    assert np.array_equal(f1.y_enc.words(), f2.y_enc.words())
    b1 = golden.backward(spec, x, dy, g, b)
    b2 = golden.backward(spec, x, dy, g, b, saved=f1)
    assert np.array_equal(b1.dx_enc.words(), b2.dx_enc.words())
    with pytest.raises(ValueError):
        golden.backward(spec, x, dy, g * 2, b, saved=f1)


def test_bad_inputs_are_rejected() -> None:
    spec = load("lightnorm")
    with pytest.raises(SpecError, match="elements per channel"):
        golden.forward(spec, np.ones((1, 2, 3, 3)))  # n = 9 < 113
    x = np.ones((2, 2, 8, 8))
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="inf or NaN"):
        golden.forward(spec, x)
    with pytest.raises(ValueError, match="NCHW"):
        golden.forward(spec, np.ones((4, 64)))


@pytest.mark.parametrize("name", preset_names())
def test_close_to_ideal(name: str) -> None:
    """A sanity bound only: the measured errors are reported by `lightnorm golden`."""
    spec = load(name)
    x, dy, g, b = _data(spec, (8, 4, 10, 10), 5)
    fr = golden.forward(spec, x, g, b)
    br = golden.backward(spec, x, dy, g, b, saved=fr)
    kw = dict(mode=spec.bn.mode, eps=spec.bn.eps, chunks=spec.bn.chunks, lanes=spec.hw.lanes)
    dyq = from_stream(br.dy_enc.vals, x.shape)
    idf = ideal.forward(fr.x_values, fr.gamma, fr.beta, **kw)
    idb = ideal.backward(fr.x_values, dyq, fr.gamma, fr.beta, **kw)
    p = spec.compute.man_bits
    y = spec.storage.y
    ym = y.precision - 1 if y.kind == "mx" else y.man_bits  # an MX element: less its hidden bit
    tol = 8 * 2.0 ** -min(p, ym)
    rel = np.sqrt(np.mean((fr.y - idf.y) ** 2) / np.mean(idf.y ** 2))
    reldx = np.sqrt(np.mean((br.dx - idb.dx) ** 2) / np.mean(idb.dx ** 2))
    assert rel < tol and reldx < 4 * tol, (rel, reldx, tol)


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("form", NORMALIZE_FORMS)
def test_constant_channels_are_exact(name: str, form: str) -> None:
    """A constant channel (numerics.md section 10; range BN: rng = 0, standard BN: the
    statistics pass's flag): inv_sigma = +0, so y is beta as the lanes round it (rnd_P, then
    into Y), dx is +0, dgamma +0 and dbeta the channel sum of dy - for constants of several
    magnitudes and both signs, gamma and beta random, next to channels that are not constant
    (one element off, or the constant with a tiny variance), which keep the rules of section 8.
    Both normalize forms: mul_P(anything, +0) = +0."""
    spec = load(name).with_normalize(form)
    consts = [0.0, 3.0, -0.7, 1e-3, -250.0, 0.5 * spec.storage.x.max_value]
    shape = (2, len(consts), 4, 25)  # n = 200
    rng = np.random.default_rng(11)
    x = np.stack([np.full((2, 4, 25), c) for c in consts], axis=1)
    # a channel with one element off is not constant: its inv_sigma is recip(den) > 0
    xo = np.concatenate([x, np.full((2, 1, 4, 25), -0.7)], axis=1)
    xo[1, -1, 3, 24] = -0.75
    fo = golden.forward(spec, xo, 1.0, 0.0)
    assert fo.inv_sigma[-1] > 0 and np.all(fo.inv_sigma[:-1] == 0)
    if spec.bn.mode == "standard":
        assert np.all(fo.dispersion[:-1] == 0) and fo.dispersion[-1] > 0
    dy = rng.normal(0, 0.05, shape)
    gamma = rng.uniform(-2, 2, len(consts))
    beta = rng.uniform(-1, 1, len(consts))
    fr = golden.forward(spec, x, gamma, beta)
    br = golden.backward(spec, x, dy, gamma, beta, saved=fr)
    assert np.all(fr.inv_sigma == 0) and np.all(fr.scale == 0)
    assert np.array_equal(fr.shift, fr.beta)  # beta - mu * 0
    # y: beta in P, then encoded like any lane result (each channel is one value)
    beta_p = fpnum.round_array(fr.beta, spec.compute, spec.compute.rounding)
    want = encode(np.repeat(beta_p[:, None], 200, axis=1), spec.storage.y)
    got = to_stream(fr.y)
    assert np.array_equal(got, want.vals), (got[:, :3], want.vals[:, :3])
    assert np.all(br.dx == 0) and np.all(br.dx_enc.bits == 0)  # +0, every element
    assert np.all(br.dgamma == 0)
    dyq = from_stream(br.dy_enc.vals, x.shape)
    assert np.allclose(br.dbeta, dyq.sum(axis=(0, 2, 3)), rtol=1e-2, atol=1e-6)
    # the rational reference agrees exactly
    ref = reference(spec, x, dy, gamma, beta)
    assert np.array_equal(as_float(ref["inv_sigma"]), np.zeros(len(consts)))
    assert np.array_equal(as_float(ref["y"]), got)


def test_standard_bn_constant_flag_needs_equal_values() -> None:
    """Standard BN flags only a channel whose stored values are all equal: a channel of two
    values whose variance is below eps keeps inv_sigma = 1/sqrt(var + eps) (section 8)."""
    spec = load("fp32-baseline")
    x = np.full((1, 1, 10, 15), 1.0)
    x[0, 0, 0, 0] = 1.0 + 2.0 ** -20  # var ~ 1e-14, far below eps = 1e-5
    fr = golden.forward(spec, x, 1.0, 0.0)
    assert abs(fr.inv_sigma[0] - 1.0 / np.sqrt(1e-5)) < 1e-2 * fr.inv_sigma[0]
    x[0, 0, 0, 0] = 1.0
    assert golden.forward(spec, x, 1.0, 0.0).inv_sigma[0] == 0.0


@settings(max_examples=400, deadline=None)
@given(s=st.integers(-(2**52), 2**52), k=st.integers(-2200, 2100),
       fmt=st.composite(lambda draw: FPFormat(**fp_table(draw)))())
def test_scaled_integer_rounds_once(s: int, k: int, fmt: FPFormat) -> None:
    """The BFP-native beat dot product's rounding (rnd_A(s * 2^k), docs/numerics.md section 6)
    against exact rationals, over float64's whole range and past it (k from -2200: products
    of two 11-bit-exponent blocks fall below float64's subnormals; up to 2100: past its max)."""
    got = golden._rnd_scaled(np.int64(s), k, fpnum.fp_params(fmt)) if s else 0.0
    want = round_exact(Fraction(s) * Fraction(2) ** k, fmt)
    assert Fraction(got) == want
