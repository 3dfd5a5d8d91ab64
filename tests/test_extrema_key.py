"""The range-BN extrema's first compare (docs/timing.md, section 6).

``ln_extrema`` unpacks every lane of a beat, makes its order-preserving key and compares two
keys, in one clock period unless the timing plan registers the keys in between: the timing unit
``ln_extrema_key_*`` (characterized from ``ln_extrema_key.v.j2``, which the design does not
instantiate) decides it, predicted with ``rtl.EXTREMA_KEY_CONTEXT_NS`` more than other units.
Here the keys are registered by a plan that says so and the whole ``lightnorm_top`` is
co-simulated bit-exact with the golden model; and a plan from made-up characterizations shows
the decision follows the clock with the context margin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from lightnorm import backends
from lightnorm.backends import Backend
from lightnorm.codegen import rtl, timing
from lightnorm.spec import Spec, from_dict
from lightnorm.tools import verilator as vlt
from lightnorm.verify import cosim

KEY_TEMPLATE = "ln_extrema_key.v.j2"
BFP_RANGE = {  # 4 lanes: two levels of compare trees after the key register
    "name": "key-bfp-range", "bn": {"mode": "range", "chunks": 3},
    "hw": {"lanes": 4, "max_channel_elems": 4096, "accum_ways": 2},
    "storage": {
        "x": {"kind": "bfp", "block": 8, "man_bits": 6, "exp_bits": 6},
        "y": {"kind": "fp", "exp_bits": 5, "man_bits": 6},
        "dy": {"kind": "fp", "exp_bits": 5, "man_bits": 7},
        "dx": {"kind": "fp", "exp_bits": 5, "man_bits": 6},
    },
    "compute": {"exp_bits": 6, "man_bits": 8},
    "accum": {"exp_bits": 6, "man_bits": 9},
    "scalar": {"exp_bits": 8, "man_bits": 14},
}
MX_RANGE = {  # MX x (E8M0 scale per beat), 2 lanes: one compare level
    **BFP_RANGE, "name": "key-mx-range", "bn": {"mode": "range", "chunks": 2},
    "hw": {**BFP_RANGE["hw"], "lanes": 2},
    "storage": {**BFP_RANGE["storage"], "x": {"kind": "mx", "element": "fp8_e4m3", "block": 32}},
    "accum": {"exp_bits": 8, "man_bits": 9},
}


class KeysRegistered:
    """A timing plan that registers the extrema's keys and nothing else; it keeps what the
    design asked of it."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, int, float]] = []
        self.variants: dict[str, Callable[[frozenset[int]], rtl.Variant]] = {}

    def cuts(self, unit: str, template: str, sections: int,
             variant: Callable[[frozenset[int]], rtl.Variant],
             max_latency: int | None = None, context_ns: float = 0.0,
             instantiated: bool = True) -> frozenset[int]:
        del max_latency, instantiated
        self.asked.append((unit, template, sections, context_ns))
        if template != KEY_TEMPLATE:
            return frozenset()
        self.variants[unit] = variant
        return frozenset({1})


class KeyBackend(Backend):
    """The template design with the extrema's keys registered (test only)."""

    name = "extrema-keys-registered"  # type: ignore[assignment]
    label = "extrema keys registered"
    description = "the template RTL with a register between the extrema's keys and compare"

    def render(self, spec: Spec, *, clock_ns: float | None = None,
               liberty: str | Path | None = None, **options: object) -> dict[str, str]:
        return rtl.render_rtl(spec, KeysRegistered())

    def cache_tag(self) -> tuple[str, ...]:
        return (self.name,)


@pytest.mark.parametrize("table", [BFP_RANGE, MX_RANGE], ids=["bfp-4-lanes", "mx-2-lanes"])
def test_registered_keys_are_bit_exact(monkeypatch: pytest.MonkeyPatch,
                                       table: dict[str, Any]) -> None:
    spec = from_dict(table)
    plan = KeysRegistered()
    files = rtl.render_rtl(spec, plan)
    keyed = [a for a in plan.asked if a[1] == KEY_TEMPLATE]
    assert len(keyed) == 1 and keyed[0][2:] == (2, rtl.EXTREMA_KEY_CONTEXT_NS)
    text = files["ln_extrema.v"]
    assert "keys_r <= keys;" in text and "kx_0 = keys_r" in text and keyed[0][0] in text
    assert "%Warning" not in vlt.lint(files, rtl.TOP)
    # the characterization module, with and without its register, is clean Verilog too
    for cuts in (frozenset(), frozenset({1})):
        top, mods, regs = plan.variants[keyed[0][0]](cuts)
        assert "%Warning" not in vlt.lint(mods, top)
        assert set(regs.values()) == set(cuts)
    unregistered = rtl.render_rtl(spec, rtl.Combinational())["ln_extrema.v"]
    assert "keys_r" not in unregistered and "kx_0 = keys," in unregistered
    be = KeyBackend()
    monkeypatch.setitem(backends._REGISTRY, be.name, be)
    lo = spec.min_channel_elems()
    lanes = spec.hw.lanes
    shape = cosim.edge_shape(spec)
    cases = [
        cosim.Case("long", (1, 3, 1, max(lo, 13 * lanes + 1)), 3),  # the last beat short
        cosim.Case("edge", shape, 5, data=cosim.edge_data(spec, shape, 5)),
    ]
    for r in cosim.compare_many(spec, cases, backend=be.name, channels_per_run=2):
        assert r["elements"] > 0 and r["bit_exact"], cosim.describe(r)


class MadeUp(Mapping[str, timing.UnitTiming]):
    """Characterizations of every unit: the extrema's key unit as given, every other unit one
    short section (no register anywhere else)."""

    def __init__(self, key_logic: tuple[float, float], overhead: float) -> None:
        self.key_logic, self.overhead = key_logic, overhead
        self.seen: set[str] = set()

    def __getitem__(self, unit: str) -> timing.UnitTiming:
        self.seen.add(unit)
        if unit.startswith("ln_extrema_key"):
            return timing.UnitTiming(unit, 2, self.key_logic, self.overhead, 0.0, 0, 1.0, "k")
        return timing.UnitTiming(unit, 1, (0.1,), self.overhead, 0.0, 0, 1.0, unit)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.seen))

    def __len__(self) -> int:
        return len(self.seen)


@pytest.mark.parametrize("table", [BFP_RANGE, MX_RANGE], ids=["bfp-4-lanes", "mx-2-lanes"])
def test_the_keys_are_registered_when_the_path_does_not_fit(table: dict[str, Any]) -> None:
    spec = from_dict(table)
    key_logic, over = (1.5, 1.2), 0.4
    summed = sum(key_logic) + over + timing.MARGIN_NS
    ctx = rtl.EXTREMA_KEY_CONTEXT_NS
    assert ctx > 0
    for clock, registered in ((summed + ctx + 0.05, False), (summed + ctx - 0.05, True),
                              (summed - 0.05, True)):
        plan = timing.LibraryPlan(clock, MadeUp(key_logic, over))
        text = rtl.render_design(rtl.rtl_context(spec, plan))["ln_extrema.v"]
        assert ("keys_r <= keys;" in text) is registered, clock
        [choice] = [c for u, c in plan.choices.items() if u.startswith("ln_extrema_key")]
        assert choice.template == KEY_TEMPLATE and bool(choice.cuts) is registered
        expect = ([key_logic[0] + over + timing.MARGIN_NS + ctx,
                   key_logic[1] + over + timing.MARGIN_NS + ctx] if registered
                  else [summed + ctx])
        assert choice.stage_ns == pytest.approx(expect) and choice.fits
        assert choice.context_ns == ctx and choice.to_dict()["context_ns"] == ctx


def test_one_lane_has_no_first_compare() -> None:
    spec = from_dict({**MX_RANGE, "name": "key-one-lane", "hw": {**MX_RANGE["hw"], "lanes": 1}})
    plan = KeysRegistered()
    text = rtl.render_rtl(spec, plan)["ln_extrema.v"]
    assert not [a for a in plan.asked if a[1] == KEY_TEMPLATE] and "keys_r" not in text


def test_the_key_unit_does_not_move_the_synthesis_target() -> None:
    """The key unit is characterized but not instantiated: the register overhead the
    synthesis's ABC target is set from (``cost.synth.map_target_ns``) is the mean over the units
    the design instantiates, so adding the decision left every other design's target as it
    was."""
    spec = from_dict(BFP_RANGE)
    plan = timing.plan_for(lambda p: rtl.rtl_context(spec, p), 4.0)
    [key] = [u for u in plan.timings if u.startswith("ln_extrema_key")]
    assert plan.not_instantiated == {key}
    rest = [t.overhead_ns for u, t in plan.timings.items() if u != key]
    assert plan.overhead_ns == pytest.approx(sum(rest) / len(rest))
