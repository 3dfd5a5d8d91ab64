"""Every preset's RTL: lint-clean and co-simulated bit-exact against the golden model.

One Verilator build per spec (cached by lightnorm.verify.cosim); random data and edge cases
(all-zero and constant channels, saturation, values below the smallest normal, a channel
length that is not a multiple of the block), forward and backward, with random idle cycles
and back-pressure on the streams.
"""

from __future__ import annotations

import pytest

from lightnorm.codegen.rtl import render_rtl
from lightnorm.spec import load, preset_names
from lightnorm.verify import cosim

from .test_golden import _data


@pytest.mark.parametrize("name", preset_names())
def test_preset_lints_clean(name: str) -> None:
    cosim.lint(render_rtl(load(name)), "lightnorm_top")


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("kind", ["normal", "edge"])
def test_preset_cosim_bit_exact(name: str, kind: str) -> None:
    spec = load(name)
    # n = 2*11*13 = 286: not a multiple of any block size, >= every preset's minimum
    x, dy, g, b = _data(spec, (2, 3, 11, 13), seed=7, kind=kind)
    res = cosim.compare(spec, x.shape, pass_="both", data={"x": x, "dy": dy, "gamma": g,
                                                           "beta": b})
    assert res["elements"] > 0
    assert res["bit_exact"], res["first_mismatches"][:5]
