"""Timing-driven generation (issue 16): pipelined units stay bit-exact in every register
placement, the characterized library is cached and keyed by what it measured, the chooser
takes the fewest registers that fit, and designs generated for two clocks co-simulate
bit-exact."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lightnorm.cli.core import main
from lightnorm.codegen import rtl, timing
from lightnorm.codegen.pipe import Delays, balanced_cuts
from lightnorm.spec import FPFormat, SpecError, from_dict, load
from lightnorm.verify import cosim

from .strategies import small_spec_tables


class _Sections:
    """A timing plan that records each pipelinable module's section count."""

    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def cuts(self, unit: str, template: str, sections: int, variant: object,
             max_latency: int | None = None) -> frozenset[int]:
        self.n[unit] = sections
        return frozenset()


def _sections(kind: str, f: FPFormat) -> int:
    s = _Sections()
    reg = rtl.Modules(12, s)
    getattr(reg, kind)(*((f,) if kind == "add" else (f, f)))
    return next(n for u, n in s.n.items() if u.startswith(f"fp_{kind}"))


def _reserved_free(bits: np.ndarray, f: FPFormat) -> np.ndarray:
    e = (bits >> np.uint64(f.man_bits)) & np.uint64((1 << f.exp_bits) - 1)
    bits[e == (1 << f.exp_bits) - 1] = 0  # the reserved exponent is never an input
    return bits


@pytest.mark.parametrize("f", [FPFormat(4, 3), FPFormat(5, 10), FPFormat(8, 23, "truncate")],
                         ids=str)
def test_every_register_placement_is_bit_exact(f: FPFormat) -> None:
    """Adder and multiplier with every subset of their cut points registered, streamed one
    operation per enabled cycle with random stalls (the harness), against the reference."""
    units = []
    for kind in ("add", "mul"):
        n = _sections(kind, f)
        for k in range(n):
            units += [rtl.Unit(kind, f, f, frozenset(c))
                      for c in itertools.combinations(range(1, n), k)]
    h = cosim.build_unit_harness(units)
    rng = np.random.default_rng(f.width)
    checked = 0
    for i, u in enumerate(units):
        a = _reserved_free(rng.integers(0, 1 << f.width, 600, dtype=np.uint64), f)
        b = _reserved_free(rng.integers(0, 1 << f.width, 600, dtype=np.uint64), f)
        got = h.run(i, a, b)
        want = cosim.unit_reference(u, a, b)
        assert np.array_equal(got, want), (u, int(np.sum(got != want)))
        checked += a.size
    assert checked == 600 * len(units) and len(units) > 16


def test_mixed_format_multipliers_pipelined() -> None:
    units = [rtl.Unit("mul", FPFormat(5, 10), FPFormat(8, 23), frozenset({1, 2})),
             rtl.Unit("mul", FPFormat(8, 23), FPFormat(5, 4), frozenset({1, 2, 3})),
             rtl.Unit("mul", FPFormat(2, 1), FPFormat(5, 4), frozenset({1, 2}))]
    h = cosim.build_unit_harness(units)
    rng = np.random.default_rng(3)
    for i, u in enumerate(units):
        a = _reserved_free(rng.integers(0, 1 << u.fin.width, 2000, dtype=np.uint64), u.fin)
        b = _reserved_free(rng.integers(0, 1 << u.fin.width, 2000, dtype=np.uint64), u.fin)
        assert np.array_equal(h.run(i, a, b), cosim.unit_reference(u, a, b)), u


# --- the chooser ---------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.05, 6.0), min_size=1, max_size=8), st.floats(0.2, 1.5),
       st.floats(2.0, 12.0))
def test_chooser_takes_the_fewest_registers_that_fit(logic: list[float], overhead: float,
                                                      clock: float) -> None:
    t = timing.UnitTiming("u", len(logic), tuple(logic), overhead, 0.0, 0, clock, "k")
    cuts = t.choose(clock, margin_ns=0.25)
    stages = t.stage_ns(cuts, 0.25)
    if max(stages) <= clock:
        for d in range(len(cuts)):  # no placement with fewer registers fits
            assert max(t.stage_ns(balanced_cuts(logic, d), 0.25)) > clock
    else:  # nothing fits: every cut point is registered
        assert cuts == frozenset(range(1, len(logic)))
    assert stages == pytest.approx([sum(g) + overhead + 0.25 for g in
                                    _groups(logic, cuts)])


def _groups(logic: list[float], cuts: frozenset[int]) -> list[list[float]]:
    bounds = [0, *sorted(cuts), len(logic)]
    return [logic[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def test_delays_are_registers_enabled_by_the_pipeline() -> None:
    d = Delays()
    assert d("m1", 16, 0) == "m1"
    assert d("v1", 1, 2, reset=True) == "v1_q2"
    assert d("v1", 1, 1, reset=True) == "v1_q1"
    text = d.emit()
    assert "reg  v1_q1;" in text and "reg  v1_q2;" in text
    assert "if (rst) begin" in text and "end else if (en) begin" in text
    assert d.valid_bits("v1") == ["v1_q1", "v1_q2"]
    with pytest.raises(ValueError, match="two widths"):
        d("v1", 2, 1)


# --- the library -----------------------------------------------------------------------------
@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A new library cache; the harness top of each characterization run, in order."""
    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path))
    made: list[str] = []
    real = timing.characterize

    def counting(*args: object, **kw: object) -> object:
        made.append(str(args[1]))
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(timing, "characterize", counting)
    return made


def test_library_is_cached_and_keyed_by_what_it_measured(tmp_path: Path,
                                                         calls: list[str]) -> None:

    def build(plan: rtl.TimingPlan) -> rtl.Modules:
        reg = rtl.Modules(12, plan)
        reg.add(FPFormat(5, 4))
        return reg

    p1 = timing.plan_for(build, 5.0)
    assert len(calls) == 1
    t = next(iter(p1.timings.values()))
    assert t.sections == 5 and len(t.logic_ns) == 5 and t.overhead_ns > 0
    assert t.area_um2 > 0 and t.flip_flops > 0 and t.energy_pj > 0
    assert all(x >= 0 for x in t.logic_ns) and sum(t.logic_ns) > 1.0
    entry = tmp_path / "synth" / "oplib" / p1.liberty_sha256[:16] / f"{t.key}.json"
    assert json.loads(entry.read_text())["unit"] == "fp_add_e5m4_rne"
    p2 = timing.plan_for(build, 5.0)  # a lookup: no tool runs
    assert len(calls) == 1 and p2.timings == p1.timings
    timing.plan_for(build, 9.0)  # another clock: another characterization
    assert len(calls) == 2
    reg = build(p2)
    assert reg.latency(reg.units["fp_add_e5m4_rne"]) == len(p2.choices["fp_add_e5m4_rne"].cuts)


def test_a_loop_that_does_not_fit_is_characterized_as_placed(calls: list[str]) -> None:
    """An accumulator's adder whose loop allows fewer registers than the clock needs: its
    stages are measured with the registers where they go (merged sections map shorter than
    the sum of the sections' delays), once; the registers are the chooser's all the same."""

    def build(plan: rtl.TimingPlan) -> rtl.Modules:
        reg = rtl.Modules(12, plan)
        reg.add(FPFormat(5, 4), 1)  # no register allowed: one stage
        reg.add(FPFormat(5, 6), 2)  # at most one
        reg.add(FPFormat(6, 4))  # no loop: summed as before
        return reg

    plan = timing.plan_for(build, 2.0)
    assert len(calls) == 3 + 2  # every cut of the three, then the two loops as placed
    build(plan)
    loops = {"fp_add_acc1_e5m4_rne": 0, "fp_add_acc2_e5m6_rne": 1}
    assert set(plan.placed) == set(loops)
    for unit, most in loops.items():
        c, t = plan.choices[unit], plan.timings[unit]
        cuts, placed = plan.placed[unit]
        assert c.placed and c.cuts == cuts and len(cuts) == most == c.max_latency
        assert placed.sections == len(c.stage_ns) == most + 1
        assert c.stage_ns == [d + placed.overhead_ns + plan.margin_ns for d in placed.logic_ns]
        summed = t.stage_ns(cuts, plan.margin_ns)
        assert max(c.stage_ns) < max(summed) and not c.fits
        assert c.to_dict()["stages_characterized_as_placed"] is True
    plain = plan.choices["fp_add_e6m4_rne"]
    assert not plain.placed and "stages_characterized_as_placed" not in plain.to_dict()
    assert plain.stage_ns == plan.timings[plain.unit].stage_ns(plain.cuts, plan.margin_ns)
    again = timing.plan_for(build, 2.0)  # lookups: no tool runs
    assert len(calls) == 5 and again.placed == plan.placed
    assert timing.plan_for(build, 50.0).placed == {}  # every loop fits a slow clock


def test_units_that_differ_in_name_and_comments_are_one_characterization(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A BFP exponent scan is named and described after its block size but does not depend on
    it: the scans of BFP(16,..) and BFP(32,..) are characterized once, under a fixed name,
    and each unit gets the timing under its own name (the same for both)."""
    from lightnorm.spec.formats.bfp import BFPFormat

    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path))
    calls: list[dict[str, str]] = []
    real = timing.characterize

    def counting(*args: object, **kw: object) -> object:
        calls.append(dict(args[0]))  # type: ignore[call-overload]
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(timing, "characterize", counting)
    p = FPFormat(5, 4)

    def build(blocks: tuple[int, ...]) -> Callable[[rtl.TimingPlan], rtl.Modules]:
        def b(plan: rtl.TimingPlan) -> rtl.Modules:
            reg = rtl.Modules(12, plan)
            for g in blocks:
                reg.bfp_scan(BFPFormat(block=g, man_bits=3, exp_bits=6), p, 4)
            return reg
        return b

    plan = timing.plan_for(build((16, 32)), 5.0)
    assert len(calls) == 1
    names = sorted(plan.timings)
    assert len(names) == 2 and all("scan" in n for n in names)
    t16, t32 = (plan.timings[n] for n in names)
    assert (t16.unit, t32.unit) == tuple(names) and t16.key == t32.key
    assert t16.logic_ns == t32.logic_ns
    # the tools saw the fixed name only
    assert f"{timing.CHAR_UNIT}.v" in calls[0]
    assert not any(n in text for text in calls[0].values() for n in names)
    # a later request of the other block alone is a lookup, under its own name
    again = timing.plan_for(build((32,)), 5.0)
    assert len(calls) == 1 and [t.unit for t in again.timings.values()] == [names[1]]


def test_plan_summary_in_the_manifest() -> None:
    from lightnorm.codegen import build_manifest, render_files

    spec = load("lightnorm")
    man = build_manifest(spec, render_files(spec, ("rtl",)))
    t = man["timing"]
    assert t["clock_ns"] == spec.hw.clock_ns and t["liberty"] == "osu018_stdcells.lib"
    units = {u["unit"]: u for u in t["units"]}
    assert any(u.startswith("fp_add_") for u in units) and t["fits"]
    for u in units.values():
        assert u["latency"] == len(u["cuts"]) and max(u["stage_ns"]) <= t["clock_ns"]
    assert t["predicted_critical_ns"] == max(max(u["stage_ns"]) for u in units.values())


# --- designs at two clocks ---------------------------------------------------------------------
@settings(max_examples=3, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(table=small_spec_tables(clocks=(4.0,)))
def test_random_specs_at_two_clocks(table: dict[str, Any]) -> None:
    """A random valid spec generated for 4 ns and for 25 ns: each module gets the fewest
    registers its library entry predicts (within its loop's limit), the fast design has
    registers and the slow one none, and both are bit-exact in co-simulation."""
    latency = {}
    for clock in (4.0, 25.0):
        spec = from_dict({**table, "hw": {**table["hw"], "clock_ns": clock}})
        plan = rtl.timing_plan(spec)
        rtl.render_rtl(spec)  # the plan's choices fill in
        for c in plan.choices.values():  # the chooser's minimum for each module
            t = plan.timings[c.unit]
            # (the extrema's first compare has a margin of its own: tests/test_extrema_key.py)
            margin = plan.margin_ns + c.context_ns
            assert c.context_ns == (rtl.EXTREMA_KEY_CONTEXT_NS
                                    if c.template == "ln_extrema_key.v.j2" else 0.0)
            assert c.cuts == t.choose(clock, margin, c.max_latency)
            # a loop that does not fit is predicted as placed, anything else by its sections
            assert c.placed == (c.unit in plan.placed)
            stages = (t.stage_ns(c.cuts, margin) if not c.placed
                      else [d + plan.placed[c.unit][1].overhead_ns + margin
                            for d in plan.placed[c.unit][1].logic_ns])
            assert c.stage_ns == stages and c.fits == (max(stages) <= clock)
        latency[clock] = sum(len(c.cuts) for c in plan.choices.values())
        res = cosim.compare_many(spec, [cosim.Case("random", cosim.default_shape(spec), 1,
                                                   "both")])
        assert res[0]["bit_exact"] and res[0]["elements"] > 0, cosim.describe(res[0])
    assert latency[4.0] > 0 and latency[25.0] == 0


# --- the clock as a design parameter ----------------------------------------------------------
def test_with_clock_is_a_checked_spec_field() -> None:
    spec = load("lightnorm")
    assert spec.with_clock(None) is spec and spec.with_clock(spec.hw.clock_ns) is spec
    fast = spec.with_clock(7.0)
    assert fast.hw.clock_ns == 7.0 and fast.hash != spec.hash
    assert fast.to_dict() | {"hw": spec.to_dict()["hw"]} == spec.to_dict()
    with pytest.raises(SpecError) as exc:
        spec.with_clock(0.01)
    assert exc.value.path == "hw.clock_ns"


def test_units_spec_shows_the_library_and_the_choice(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    regs = {}
    for clock in ("5", "20"):
        assert main(["units", "--spec", "lightnorm", "--clock-ns", clock, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["spec"] == "lightnorm" and data["clock_ns"] == float(clock)
        for u in data["units"]:
            assert len(u["section_logic_ns"]) == u["sections"] and u["area_um2_every_cut"] > 0
            assert u["latency"] == len(u["cuts"]) and len(u["stage_ns"]) == u["latency"] + 1
        regs[clock] = sum(u["latency"] for u in data["units"])
    assert regs["5"] > regs["20"] == 0
    assert main(["units", "--spec", "lightnorm"]) == 0
    text = capsys.readouterr().out
    assert "fp_add_e8m15_rne" in text and "predicted critical stage" in text
    # the range-BN extrema's first compare, with its context margin
    key = f"+{rtl.EXTREMA_KEY_CONTEXT_NS:g}"
    assert "ln_extrema_key_bfp_unpack_m7e8_l16" in text and key in text and "+C: C ns" in text


def test_generate_for_another_clock(tmp_path: Path) -> None:
    assert main(["generate", "lightnorm", "-o", str(tmp_path / "g"), "--clock-ns", "20"]) == 0
    man = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert man["spec"]["hw"]["clock_ns"] == 20.0 and man["timing"]["clock_ns"] == 20.0
    assert all(u["latency"] == 0 for u in man["timing"]["units"])
    rtl_files = {p.name for p in (tmp_path / "g" / "rtl").iterdir()}
    assert not any("_p" in n and n.startswith("fp_add") for n in rtl_files)
