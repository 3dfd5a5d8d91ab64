"""The W-way accumulators of the RTL with a pipelined adder (docs/numerics.md section 6).

The accumulator (``ln_acc.v.j2``) is written for an adder of any latency ``lat < W``: its adder
(``rtl.Modules.acc_adder``: ``fp_add_acc<W>_*``, which selects its operands from the partials in
a first section of its own) gets the registers the timing plan gives it. Here a fixed plan puts
1, 2 or 3 registers in it (5 at W = 8) and nowhere else, and the whole ``lightnorm_top`` is
co-simulated bit-exact with the golden model - random idle cycles and back-pressure,
back-to-back channels, channels shorter than W beats, range BN with more chunks than ways. An
accumulator told a latency one below its adder's must break: the test can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lightnorm import backends
from lightnorm.backends import Backend
from lightnorm.codegen import rtl
from lightnorm.spec import FPFormat, Spec, SpecError, from_dict, load
from lightnorm.tools import verilator as vlt
from lightnorm.verify import cosim

BFP_RANGE = {  # K = 5 chunks > W = 4; BFP x (exact beat sums), FP dy (tree of products)
    "name": "acc-bfp-range", "bn": {"mode": "range", "chunks": 5},
    "hw": {"lanes": 2, "max_channel_elems": 4096, "accum_ways": 4},
    "storage": {
        "x": {"kind": "bfp", "block": 4, "man_bits": 6, "exp_bits": 6},
        "y": {"kind": "bfp", "block": 2, "man_bits": 5, "exp_bits": 6},
        "dy": {"kind": "fp", "exp_bits": 5, "man_bits": 7},
        "dx": {"kind": "fp", "exp_bits": 5, "man_bits": 6},
    },
    "compute": {"exp_bits": 6, "man_bits": 8},
    "accum": {"exp_bits": 6, "man_bits": 9, "rounding": "truncate"},
    "scalar": {"exp_bits": 8, "man_bits": 14},
}
FP_STANDARD = {  # standard BN: x and x^2 through the lane tree, FP storage everywhere
    "name": "acc-fp-std", "bn": {"mode": "standard"},
    "hw": {"lanes": 4, "max_channel_elems": 4096, "accum_ways": 4},
    "storage": {r: {"kind": "fp", "exp_bits": 5, "man_bits": 7} for r in ("x", "y", "dy", "dx")},
    "compute": {"exp_bits": 6, "man_bits": 9},
    "accum": {"exp_bits": 6, "man_bits": 8},
    "scalar": {"exp_bits": 8, "man_bits": 15},
}


def acc_unit(spec: Spec) -> str:
    """The name (without register suffix) of the accumulator adder of ``spec``'s design."""
    return f"fp_add_acc{spec.hw.accum_ways}_{spec.accum.view.ftag}"


class PlacedAccumulator(Backend):
    """The template design with ``stages`` registers in its accumulator adder and none
    elsewhere, the accumulator told latency ``lat`` (the same, unless a test wants a wrong
    declaration)."""

    label = "placed accumulator"
    description = "the template RTL with a pipelined accumulator adder (test only)"

    def __init__(self, lat: int, stages: int) -> None:
        self.lat, self.stages = lat, stages
        self.name = f"acc-lat{lat}-s{stages}"  # type: ignore[misc]

    def render(self, spec: Spec, *, clock_ns: float | None = None,
               liberty: str | Path | None = None, **options: object) -> dict[str, str]:
        plan = rtl.FixedPlan({acc_unit(spec): frozenset(range(1, self.stages + 1))})
        real = rtl.Modules.acc_adder

        def declared(reg: rtl.Modules, f: FPFormat, ways: int) -> tuple[str, int]:
            name, lat = real(reg, f, ways)
            assert lat == self.stages
            return name, self.lat

        mp = pytest.MonkeyPatch()
        mp.setattr(rtl.Modules, "acc_adder", declared)
        try:
            return rtl.render_rtl(spec, plan)
        finally:
            mp.undo()

    def cache_tag(self) -> tuple[str, ...]:
        return (self.name,)


def _cases(spec: Spec) -> list[cosim.Case]:
    lo = spec.min_channel_elems()
    lanes = spec.hw.lanes
    return [
        cosim.Case("long", (1, 3, 1, max(lo, 23 * lanes + 1)), 3),  # 24 beats, the last short
        cosim.Case("short", (1, 3, 1, max(lo, 2 * lanes + 1)), 4),  # 3 beats < W
        cosim.Case("edge", cosim.edge_shape(spec), 5,
                   data=cosim.edge_data(spec, cosim.edge_shape(spec), 5)),
    ]


def _run(monkeypatch: pytest.MonkeyPatch, table: dict[str, Any], lat: int,
         stages: int) -> list[dict[str, Any]]:
    be = PlacedAccumulator(lat, stages)
    monkeypatch.setitem(backends._REGISTRY, be.name, be)
    spec = from_dict(table)
    files = be.render(spec)
    acc = f"ln_acc_w{spec.hw.accum_ways}_{spec.accum.view.ftag}_lat{lat}.v"
    assert acc in files and f"{acc_unit(spec)}_p" in files[acc]
    assert "u_add (.clk(clk), .en(1'b1)" in files[acc]
    assert "%Warning" not in vlt.lint(files, rtl.TOP)
    return cosim.compare_many(spec, _cases(spec), backend=be.name, channels_per_run=2)


@pytest.mark.parametrize("lat", [1, 2, 3])
@pytest.mark.parametrize("table", [BFP_RANGE, FP_STANDARD], ids=["bfp-range", "fp-standard"])
def test_pipelined_adder_bit_exact(monkeypatch: pytest.MonkeyPatch, table: dict[str, Any],
                                   lat: int) -> None:
    for r in _run(monkeypatch, table, lat, lat):
        assert r["elements"] > 0 and r["bit_exact"], cosim.describe(r)


def test_more_ways_than_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """W = 8 > K = 5 chunks (three chunk-average partials stay +0), latency 5."""
    table = {**BFP_RANGE, "hw": {**BFP_RANGE["hw"], "accum_ways": 8}}
    for r in _run(monkeypatch, table, 5, 5):
        assert r["elements"] > 0 and r["bit_exact"], cosim.describe(r)


def test_wrong_latency_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """An adder one register deeper than declared: the accumulators write stale sums."""
    res = _run(monkeypatch, FP_STANDARD, 1, 2)
    assert any(not r["bit_exact"] and r["mismatches"] > 0 for r in res)


def test_latency_must_be_below_the_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load("fp32-baseline")
    assert spec.hw.accum_ways == 4
    monkeypatch.setattr(rtl.Modules, "acc_adder", lambda reg, f, ways: (reg.add(f), 4))
    with pytest.raises(SpecError, match="hw.accum_ways = 4: expected more than 4"):
        rtl.rtl_context(spec, rtl.Combinational())


@pytest.mark.parametrize("ways", [1, 2, 8, 16])
def test_every_way_count_lints_clean(ways: int) -> None:
    """W = 1 is the plain accumulator (no reduction logic); larger W size the counters."""
    t = load("lightnorm").to_dict()
    t["hw"]["accum_ways"] = ways
    files = rtl.render_rtl(from_dict(t), rtl.Combinational())
    acc = files[f"ln_acc_w{ways}_e8m15_rne.v"]
    assert ("u_add (.a(acc), .b(in_data)" in acc) == (ways == 1)
    assert "%Warning" not in vlt.lint(files, rtl.TOP)
