"""Sweeps that explore (issue 18): the estimated Pareto front, ``--synth`` and
``--synth-points``, the two rounds of ``lightnorm sweep`` on tiny specs, and the report's
estimate-vs-synthesis table and figure (lightnorm.flow.explore, lightnorm.reports)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from lightnorm.cli.core import main
from lightnorm.flow import explore
from lightnorm.flow.store import ResultStore
from lightnorm.flow.sweep import SweepError, load_sweep
from lightnorm.reports.metrics import COMPARED, NAMED, ON_FRONT, pareto_nd
from lightnorm.reports.report import build_report

from .test_flow import TINY, _spec_file
from .test_report import WHEN, clean_summaries, stage
from .test_synth import needs_tools


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


# --- the front -----------------------------------------------------------------------------------
# small integer coordinates: many ties and equal points
POINTS = hs.lists(hs.tuples(*[hs.integers(0, 6).map(float)] * 3), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(POINTS)
def test_front_is_exactly_the_undominated_points(points: list[tuple[float, ...]]) -> None:
    front = pareto_nd(points)
    assert len(set(front)) == len(front)
    on = set(front)
    for i in on:  # no point on the front is dominated by any point
        assert not any(_dominates(q, points[i]) for q in points)
    for i in set(range(len(points))) - on:  # every other point is dominated by a front point
        assert any(_dominates(points[j], points[i]) for j in on)


def test_front_by_hand() -> None:
    pts = [(1.0, 5.0, 1.0), (2.0, 2.0, 2.0), (3.0, 3.0, 3.0), (1.0, 5.0, 1.0), (5.0, 1.0, 9.0)]
    # (3,3,3) is dominated by (2,2,2); equal points do not dominate each other
    assert sorted(pareto_nd(pts)) == [0, 1, 3, 4]


def _summary(name: str, area: float | None, energy: float, err: float,
             preset: bool = False) -> dict[str, Any]:
    est = {"area_um2": area, "layer": {"total_pj_per_element": energy}}
    return {"spec": name, "preset": preset,
            "stages": {"estimate": {"status": "ok", "metrics": est},
                       "quality": {"status": "ok", "metrics": {"summary": {"error": err}}}}}


def test_select_front_named_and_presets() -> None:
    first = [_summary("base", 9.0, 9.0, 0.0, preset=True),
             _summary("a", 1.0, 4.0, 0.3), _summary("b", 2.0, 2.0, 0.2),
             _summary("c", 3.0, 3.0, 0.25),   # dominated by b
             _summary("d", None, 1.0, 0.1)]   # no estimate: neither chosen nor in the way
    assert explore.front(first[1:]) == ["a", "b"]
    assert explore.select(first, "front", ["c"]) == {"base": COMPARED, "a": ON_FRONT,
                                                     "b": ON_FRONT, "c": NAMED}
    assert explore.select(first, "none", ["c"]) == {"c": NAMED}
    assert explore.select(first, "none", []) == {}


def test_rounds_split_the_stages() -> None:
    two = explore.rounds(("generate", "csim", "synth", "energy"), "front")
    assert two is not None
    assert two.explore == ("generate", "quality", "estimate")
    assert two.selected == ("generate", "csim", "synth", "energy", "quality", "estimate")
    assert explore.rounds(("synth", "energy"), "all") is None
    assert explore.rounds(("generate", "quality"), "front") is None  # nothing to synthesize


# --- options and sweep files ---------------------------------------------------------------------
SWEEP = """
[sweep]
name = "tiny-explore"
base = "tiny-flow.toml"
stages = ["quality", "synth", "energy"]
layer_shape = [2, 4, 8, 8]
{extra}
[axes]
"hw.max_channel_elems" = [1024, 4096]
"""


def _sweep(tmp: Path, extra: str = "") -> Path:
    _spec_file(tmp, TINY)
    p = tmp / "explore.toml"
    p.write_text(SWEEP.format(extra=extra))
    return p


@pytest.mark.parametrize("argv, words", [
    (["--synth", "bogus"], ["--synth", "'bogus'", "front", "all", "none"]),
    (["--synth-points", "tiny-explore-nope"], ["--synth-points", "tiny-explore-nope",
                                               "valid point"]),
])
def test_bad_synth_options_exit_2_with_one_line(tmp_path: Path, argv: list[str],
                                                words: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["sweep", str(_sweep(tmp_path)), "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    ('synth = "some"', "sweep.synth"),
    ("synth_points = 3", "sweep.synth_points"),
])
def test_bad_synth_keys_in_a_sweep_file(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        load_sweep(_sweep(tmp_path, extra))


# --- end to end ----------------------------------------------------------------------------------
@needs_tools
def test_sweep_estimates_every_point_and_synthesizes_the_front(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two tiny points that differ only in hw.max_channel_elems: the same arithmetic (same
    error), the larger one has wider counters - estimated larger and costlier, so dominated
    and not synthesized."""
    path = _sweep(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "-o", str(out), "--jobs", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    by_name = {s["spec"]: s for s in res["specs"]}
    small, large = (p.name for p in load_sweep(path).valid)
    assert res["synth"] == "front"
    assert res["synthesized"] == [{"spec": small, "why": ON_FRONT}]
    for s in res["specs"]:  # every point estimated, its error measured
        assert s["stages"]["estimate"]["status"] == "ok"
        assert s["stages"]["estimate"]["metrics"]["estimated"] is True
        assert s["stages"]["quality"]["status"] == "ok"
    assert by_name[small]["stages"]["synth"]["status"] == "ok"
    assert by_name[small]["stages"]["energy"]["status"] == "ok"
    assert "synth" not in by_name[large]["stages"]
    est = [by_name[n]["stages"]["estimate"]["metrics"] for n in (small, large)]
    assert est[0]["area_um2"] < est[1]["area_um2"]
    rows = ResultStore(out, create=False).rows()
    assert {r.spec_name for r in rows if r.stage == "synth"} == {small}
    # the report: the estimated cloud, the synthesized front and estimate vs synthesis
    data = out / "report" / "data"
    assert (out / "report" / "figures" / "explore_estimates.png").is_file()
    with (data / "estimate_vs_synthesis.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["spec"] == small and row["synthesized_because"] == ON_FRONT
    synth_area = by_name[small]["stages"]["synth"]["metrics"]["area_um2"]
    assert float(row["area_um2_relative_error"]) == pytest.approx(
        est[0]["area_um2"] / synth_area - 1)

    # --synth all: the other point too; the estimates and the first synthesis are reused
    assert main(["sweep", str(path), "-o", str(out), "--jobs", "1", "--json",
                 "--synth", "all", "--stages", "quality,estimate,synth,energy"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert "synthesized" not in again
    for s in again["specs"]:
        assert s["stages"]["synth"]["status"] == "ok"
        assert s["stages"]["estimate"]["cached"] is True
    assert next(s for s in again["specs"] if s["spec"] == small)["stages"]["synth"]["cached"]


# --- the report ----------------------------------------------------------------------------------
def _explored() -> list[dict[str, Any]]:
    """The report's sweep with estimates: each point's estimate is its synthesis x 1.1 (area)
    and x 0.95 (energy); the points off the estimated front have no synthesis."""
    out = clean_summaries()
    for s in out:
        if s["sweep"] is None and not s["preset"]:
            continue
        syn = s["stages"]["synth"]["metrics"]
        en = s["stages"]["energy"]["metrics"]
        s["stages"]["estimate"] = stage({
            "area_um2": syn["area_um2"] * 1.1, "fmax_mhz": syn["fmax_mhz"],
            "energy_pj_per_element": {k: v * 0.95 for k, v in
                                      syn["energy_pj_per_element"].items()},
            "layer": {"total_pj_per_element": en["total_pj_per_element"] * 0.95},
            "estimated": True})
    return out


def test_report_shows_estimates_and_the_synthesized_front(tmp_path: Path) -> None:
    summaries = _explored()
    points = [s for s in summaries if s["sweep"] and not s["preset"]]
    front = set(explore.front(points))
    assert 0 < len(front) < len(points)
    for s in points:
        if s["spec"] not in front:
            del s["stages"]["synth"], s["stages"]["energy"]
    files = build_report(summaries, tmp_path / "report", title="explore", generated=WHEN)
    data = tmp_path / "report" / "data"
    with (data / "estimate_vs_synthesis.csv").open(newline="") as f:
        rows = {r["spec"]: r for r in csv.DictReader(f)}
    # every spec with both figures (the front, and lightnorm and the presets run beside the
    # sweep, which have estimates too), with the relative errors
    assert front <= set(rows) and not (set(rows) & ({s["spec"] for s in points} - front))
    for name in front:
        r = rows[name]
        assert r["synthesized_because"] == ON_FRONT
        assert float(r["area_um2_relative_error"]) == pytest.approx(0.1)
        assert float(r["total_pj_per_element_relative_error"]) == pytest.approx(-0.05)
        assert float(r["fmax_mhz_relative_error"]) == pytest.approx(0.0)
    with (data / "sweep_man-block.csv").open(newline="") as f:
        sweep_rows = {r["spec"]: r for r in csv.DictReader(f)}
    for s in points:
        r = sweep_rows[s["spec"]]
        assert r["on_estimated_front"] == ("true" if s["spec"] in front else "false")
        assert r["synthesized_because"] == (ON_FRONT if s["spec"] in front else "")
        assert float(r["estimated_area_um2"]) > 0
    assert (tmp_path / "report" / "figures" / "explore_estimates.png").is_file()
    html = files.html.read_text(encoding="utf-8")
    assert "Estimates and the synthesized front" in html
    assert f"{len(front)} synthesized" in html


# --- the module library: a module shared by concurrent estimates is synthesized once ------------
@needs_tools
def test_concurrent_estimates_synthesize_a_shared_module_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from lightnorm.cost import estimate as est

    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path / "cache"))
    runs: list[str] = []
    real = est.run_tool

    def counting(cmd: Any) -> Any:
        runs.append(cmd.purpose)
        return real(cmd)

    monkeypatch.setattr(est, "run_tool", counting)
    shared = "module sh(input [5:0] a, b, output [6:0] s); assign s = a + b; endmodule\n"
    # (two different texts: modules that differ only in name are one module of the library)
    own = {k: f"module {k}(input [3:0] a, b, output [7:0] p); assign p = a {op} b; endmodule\n"
           for k, op in (("ma", "*"), ("mb", "+"))}
    got: dict[str, Any] = {}

    def one(k: str) -> None:
        got[k] = est.module_library({"sh.v": shared, f"{k}.v": own[k]}, ["sh", k])

    threads = [threading.Thread(target=one, args=(k,)) for k in own]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # one run per module: the shared one is synthesized once, by one of the threads
    assert sorted(runs) == ["module library (ma)", "module library (mb)", "module library (sh)"]
    assert got["ma"]["sh"] == got["mb"]["sh"] and got["ma"]["sh"].area_um2 > 0
    assert est.module_library({"sh.v": shared}, ["sh"]) == {"sh": got["ma"]["sh"]}
    assert len(runs) == 3  # read from the library
