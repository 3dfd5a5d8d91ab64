"""BFP and FP storage encodings: exhaustive on small blocks, properties by hypothesis."""

from __future__ import annotations

import itertools
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightnorm.spec import BFPFormat, FPFormat
from lightnorm.verify.encoding import Encoded, encode, from_stream, to_stream

from .reference_model import quantize_bfp_block


@pytest.mark.parametrize("carry", ["saturate", "raise"])
@pytest.mark.parametrize("rounding", ["nearest", "truncate"])
def test_every_block_of_a_small_format(rounding: str, carry: str) -> None:
    """Every block of 2 values from a fine grid (incl. ties, carries, clamping) vs rationals."""
    f = BFPFormat(block=2, man_bits=2, exp_bits=3, rounding=rounding, carry=carry)
    # all multiples of 1/32 up to 20 (past the largest BFP value 14) and their negatives
    grid = [k / 32 for k in range(0, 641, 3)]
    grid += [-g for g in grid[1:]]
    blocks = np.array(list(itertools.product(grid, repeat=2)))
    enc = encode(blocks.reshape(1, -1), f)
    vals = enc.vals.reshape(-1, 2)
    exps = enc.exps.reshape(-1)
    for i, blk in enumerate(blocks):
        e, want = quantize_bfp_block([Fr(v) for v in blk], f)
        assert exps[i] == e + f.bias and list(vals[i]) == [float(w) for w in want], blk


@st.composite
def bfp_formats(draw):  # type: ignore[no-untyped-def]
    return BFPFormat(
        block=draw(st.sampled_from([1, 2, 4, 8, 16, 32])),
        man_bits=draw(st.integers(1, 23)),
        exp_bits=draw(st.integers(2, 11)),
        rounding=draw(st.sampled_from(["nearest", "truncate"])),
        carry=draw(st.sampled_from(["saturate", "raise"])),
    )


@settings(max_examples=200, deadline=None)
@given(f=bfp_formats(), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 70),
       spread=st.integers(0, 40))
def test_bfp_properties(f: BFPFormat, seed: int, n: int, spread: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, n)) * np.ldexp(1.0, rng.integers(-spread, spread + 1, (2, n)))
    enc = encode(x, f)
    g = f.block
    nb = -(-n // g)
    assert enc.bits.shape == (2, nb * g) and enc.exps.shape == (2, nb)
    assert np.all(enc.bits[:, n:] == 0)  # padding
    for c in range(2):
        for k in range(nb):
            blk = x[c, k * g:(k + 1) * g]
            q = enc.vals[c, k * g:(k + 1) * g]
            e = int(enc.exps[c, k]) - f.bias
            assert f.emin <= e <= f.emax
            amax = np.max(np.abs(blk))
            e0 = int(np.floor(np.log2(amax))) if amax > 0 else f.emin
            e0 = min(max(e0, f.emin), f.emax)
            # shared exponent: the largest magnitude's, or one more under the raise rule
            assert e == e0 or (f.carry == "raise" and e == e0 + 1)
            ulp = 2.0 ** (e - f.man_bits + 1)
            top = f.max_mantissa * ulp
            assert np.all(np.abs(q) <= top)  # saturation
            inside = np.abs(blk) <= top
            bound = ulp / 2 if f.rounding == "nearest" else ulp
            err = np.abs(q - blk)[inside]
            assert np.all(err <= bound * (1 + 1e-12))  # error bound
            assert np.all(np.abs(q)[inside] <= np.abs(blk)[inside] + bound)
            assert np.all((np.sign(q) == np.sign(blk)) | (q == 0))
    # decoding the patterns gives the values; re-encoding the values is the identity
    back = Encoded.from_bits(f, n, enc.bits, enc.exps)
    assert np.array_equal(back.vals, enc.vals)
    again = encode(enc.vals, f)
    assert np.array_equal(again.bits, enc.bits) and np.array_equal(again.exps, enc.exps)


def test_stream_layout_round_trip() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    s = to_stream(x)
    assert s.shape == (3, 40) and s[1, 0] == x[0, 1, 0, 0] and s[1, 20] == x[1, 1, 0, 0]
    assert np.array_equal(from_stream(s, x.shape), x)


def test_fp_storage_and_bad_values() -> None:
    f = FPFormat(5, 2)
    enc = encode(np.array([[0.3, -1e9, 1e-9, 0.0]]), f)
    assert list(enc.vals[0]) == [0.3125, -57344.0, 0.0, 0.0]
    assert enc.exps is None
    with pytest.raises(ValueError, match="inf or NaN"):
        encode(np.array([[np.inf]]), f)
