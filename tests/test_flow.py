"""The flow, the results store, sweeps (local, interrupted and resumed, on a Dask LocalCluster)
and regression co-simulation (lightnorm.flow).

Small specs and shapes throughout; the end-to-end flow runs every stage (Yosys, OpenSTA and
Verilator included) on a 2-lane spec once and then checks that a rerun is fully cached.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from lightnorm.cli.core import main
from lightnorm.flow import regress, sources
from lightnorm.flow import stages as st
from lightnorm.flow.runner import Job, run_spec, run_specs
from lightnorm.flow.store import ResultStore, StoreError
from lightnorm.flow.sweep import SweepError, load_sweep
from lightnorm.spec import dumps, from_dict, load

from .test_synth import TINY as SYNTH_TINY

# the synthesis tests' tiny spec, with channels long enough for the flow's verification shapes
TINY = dict(SYNTH_TINY, name="tiny-flow", hw={"lanes": 2, "max_channel_elems": 4096})


def _spec_file(tmp: Path, table: dict[str, Any] = TINY) -> Path:
    p = tmp / f"{table['name']}.toml"
    p.write_text(dumps(from_dict(table)))
    return p


# --- the store -----------------------------------------------------------------------------------
def _writer(d: str, worker: int, n: int) -> None:
    store = ResultStore(d)
    for i in range(n):
        # every worker records the same verdict keys (a race) and its own error rows
        for key, status in ((f"k{i}", "ok"), (f"e{worker}-{i}", "error")):
            store.record(spec_hash="h", spec_name="s", spec_toml="", stage="csim",
                         stage_key=key, tool_versions={"w": worker}, inputs={"i": i},
                         status=status, reason=None if status == "ok" else "boom",
                         metrics={"worker": worker}, started="t", duration_s=0.0,
                         version="test")


def test_store_many_writers_record_each_verdict_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = ResultStore(tmp_path)
    rows = store.rows()
    ok = [r for r in rows if r.status == "ok"]
    assert sorted(r.stage_key for r in ok) == sorted(f"k{i}" for i in range(25))
    assert len([r for r in rows if r.status == "error"]) == 100  # errors accumulate
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # the verdict row returned to a loser of the race is the winner's
    again = store.record(spec_hash="h", spec_name="s", spec_toml="", stage="csim",
                         stage_key="k0", tool_versions={}, inputs={}, status="ok", reason=None,
                         metrics={"worker": 99}, started="t", duration_s=0.0, version="test")
    assert again.metrics is not None and again.metrics["worker"] != 99
    csv_text = store.export_csv(stage="csim")
    assert csv_text.count("\n") == len(rows) + 1


def test_store_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "results.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a lightnorm results database"):
        ResultStore(tmp_path)
    with pytest.raises(StoreError, match="not found"):
        ResultStore(tmp_path / "nowhere", create=False)


def test_report_on_bad_store_exits_2_with_one_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err
    (tmp_path / "results.sqlite").write_bytes(b"garbage" * 500)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a lightnorm results database" in err


# --- stages and the runner -----------------------------------------------------------------------
def test_stage_keys_follow_their_inputs() -> None:
    spec = from_dict(TINY)
    opts = st.FlowOptions()
    k = {s: st.stage_key(s, spec, st.stage_inputs(s, spec, opts, {"synth": {}}),
                         st.tool_versions(s)) for s in ("generate", "csim", "quality", "energy")}
    assert len(set(k.values())) == 4
    other = st.FlowOptions(seeds=(5,), layer_shape=(1, 2, 3, 4))
    assert st.stage_key("csim", spec, st.stage_inputs("csim", spec, other),
                        st.tool_versions("csim")) != k["csim"]
    assert st.stage_key("energy", spec, st.stage_inputs("energy", spec, other, {"synth": {}}),
                        st.tool_versions("energy")) != k["energy"]
    # the same inputs give the same key (what makes a rerun a cache hit)
    assert st.stage_key("csim", spec, st.stage_inputs("csim", spec, opts),
                        st.tool_versions("csim")) == k["csim"]


def test_stage_keys_follow_the_code_they_run(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A verdict's key changes with every source it depends on - the golden model's included -
    and not with code it does not run. Copies of the package, one edited per case, stand in
    for the installed sources (same bytes, same key)."""
    spec, opts = from_dict(TINY), st.FlowOptions()
    keyed = ("csim", "cosim", "quality")

    def keys(root: Path) -> dict[str, str]:
        monkeypatch.setattr(sources, "package_root", lambda: root)
        return {s: st.stage_key(s, spec, st.stage_inputs(s, spec, opts), {}) for s in keyed}

    package = sources.package_root()
    installed = keys(package)
    edits = {"original": None, "golden": "verify/golden.py", "fpnum": "verify/fpnum.py",
             "encoding": "verify/encoding.py", "abi": "templates/csim/abi.cpp.j2",
             "unrelated": "reports/text.py", "cli": "cli/core.py"}
    got = {}
    for case, rel in edits.items():
        root = tmp_path / case / "lightnorm"
        shutil.copytree(package, root,
                        ignore=shutil.ignore_patterns("__pycache__"))
        if rel is not None:
            with (root / rel).open("a") as f:
                f.write("\n")
        got[case] = keys(root)
    assert got["original"] == installed
    for case in ("golden", "fpnum", "encoding"):
        assert all(got[case][s] != installed[s] for s in keyed), case
    assert got["abi"]["csim"] != installed["csim"]
    assert (got["abi"]["cosim"], got["abi"]["quality"]) == (installed["cosim"],
                                                              installed["quality"])
    assert got["unrelated"] == got["cli"] == installed


def test_failed_stage_is_recorded_and_the_rest_goes_on(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(spec: Any, opts: Any, deps: Any) -> st.Result:
        return "failed", "C-simulation not bit-exact: 3 mismatches (injected)", {"bit_exact": False}

    monkeypatch.setitem(st.RUNNERS, "csim", broken)
    store = ResultStore(tmp_path)
    opts = st.FlowOptions(stages=("csim", "energy", "quality"), out_dir=str(tmp_path))
    s = run_spec(from_dict(TINY), opts, store)
    assert s["stages"]["csim"]["status"] == "failed"
    assert "injected" in s["stages"]["csim"]["reason"]
    assert s["stages"]["energy"]["status"] == "skipped"  # needs synth, which did not run
    assert s["stages"]["quality"]["status"] == "ok"


def test_a_crashing_stage_is_an_error_row_and_is_retried(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def crash(spec: Any, opts: Any, deps: Any) -> st.Result:
        calls.append(1)
        raise RuntimeError("tool fell over")

    monkeypatch.setitem(st.RUNNERS, "quality", crash)
    store = ResultStore(tmp_path)
    opts = st.FlowOptions(stages=("quality",), out_dir=str(tmp_path))
    for _ in range(2):
        s = run_spec(from_dict(TINY), opts, store)
        assert s["stages"]["quality"]["status"] == "error"
        assert "RuntimeError: tool fell over" in s["stages"]["quality"]["reason"]
    assert len(calls) == 2  # an error is not a verdict: the next run tries again
    assert [r.status for r in store.rows()] == ["error", "error"]


# --- the whole flow, end to end ------------------------------------------------------------------
def test_flow_end_to_end_then_fully_cached(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    flow_dir = tmp_path
    spec_path = _spec_file(flow_dir)
    base = dict(TINY, name="tiny-base", compute={"exp_bits": 5, "man_bits": 6})
    base_path = _spec_file(flow_dir, base)
    argv = ["flow", str(spec_path), str(base_path), "-o", str(flow_dir / "out"), "--shape",
            "2,4,8,8", "--baseline", "tiny-base", "--jobs", "1", "--json"]
    code = main(argv)
    out = json.loads(capsys.readouterr().out)
    assert code == 0, [(s["spec"], k, v["reason"]) for s in out["specs"]
                       for k, v in s["stages"].items() if v["status"] != "ok"]
    for s in out["specs"]:
        assert [k for k, v in s["stages"].items() if v["status"] == "ok"] == list(st.STAGES)
        assert s["stages"]["csim"]["metrics"]["bit_exact"]
        assert s["stages"]["cosim"]["metrics"]["bit_exact"]
        assert s["stages"]["synth"]["metrics"]["area_um2"] > 0
        e = s["stages"]["energy"]["metrics"]
        assert e["shape"] == [2, 4, 8, 8] and e["total_pj_per_element"] > e["memory_pj_per_element"]
        assert s["stages"]["quality"]["metrics"]["summary"]["error"] > 0
    html = Path(out["report"]["html"])
    assert html.is_file() and Path(out["report"]["markdown"]).is_file()
    assert (flow_dir / "out" / "designs" / "tiny-flow" / "manifest.json").is_file()

    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    for s in again["specs"]:
        assert all(v.get("cached") for v in s["stages"].values()), s["stages"]
    store = ResultStore(flow_dir / "out", create=False)
    assert len(store.rows()) == 2 * len(st.STAGES)  # nothing recorded twice

    # without --json: the comparison table and the report's path on stdout
    assert main([a for a in argv if a != "--json"]) == 0
    text = capsys.readouterr().out
    assert "tiny-flow" in text and "exact" in text and f"report: {html}" in text

    # a run of one spec and one stage still reports everything the store holds for the flow
    html.unlink()
    assert main(["flow", str(spec_path), "-o", str(flow_dir / "out"), "--stages", "quality",
                 "--baseline", "tiny-base", "--json"]) == 0
    part = json.loads(capsys.readouterr().out)
    assert [list(s["stages"]) for s in part["specs"]] == [["quality"]]
    assert part["baseline"] == "tiny-base" and Path(part["report"]["html"]).is_file()
    assert "tiny-base" in Path(part["report"]["markdown"]).read_text()


def test_flow_bad_input_exits_2_and_writes_nothing(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["flow", "no-such-preset", "-o", str(out)]) == 2
    assert main(["flow", "lightnorm", "-o", str(out), "--stages", "csim,bogus"]) == 2
    assert main(["flow", "lightnorm", "-o", str(out), "--shape", "1,2,3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("lightnorm: error:") for line in err)
    assert "bogus" in err[1] and "--shape" in err[2]
    assert not out.exists()


# --- sweeps --------------------------------------------------------------------------------------
SWEEP = """
[sweep]
name = "tiny-sweep"
base = "tiny-flow.toml"
compare = []
stages = ["generate", "csim", "quality"]

[axes]
"compute.man_bits" = [2, 3, 4]
"storage.*.block" = [2, 3]
"""


def _sweep_file(tmp: Path, text: str = SWEEP) -> Path:
    _spec_file(tmp)
    p = tmp / "sweep.toml"
    p.write_text(text)
    return p


def test_sweep_expands_axes_and_lists_invalid_points(tmp_path: Path) -> None:
    sw = load_sweep(_sweep_file(tmp_path))
    assert len(sw.points) == 6
    # block 3 is not a multiple of the 2 lanes: rejected by the spec, with its reason
    assert {p.coords["storage.*.block"] for p in sw.invalid} == {3}
    assert all("block" in (p.reason or "") for p in sw.invalid)
    for p in sw.valid:
        assert p.spec is not None
        assert p.spec.compute.man_bits == p.coords["compute.man_bits"]
        assert {f.block for f in p.spec.storage.roles().values()} == {2}  # type: ignore[union-attr]
    # names depend on the coordinates only
    assert [p.name for p in load_sweep(_sweep_file(tmp_path)).points] == [p.name for p in
                                                                           sw.points]


@pytest.mark.parametrize("text, message", [
    ("[sweep]\nname = 'Bad Name'\nbase = 'lightnorm'\n[axes]\n'compute.man_bits' = [3]\n",
     "sweep.name"),
    ("[sweep]\nname = 'a'\nbase = 'lightnorm'\n", "exactly one of [axes]"),
    ("[sweep]\nname = 'a'\nbase = 'lightnorm'\n[axes]\n'compute.nope.x' = [3]\n",
     "matches no field"),
    ("[sweep]\nname = 'a'\nbase = 'lightnorm'\nstages = ['csim', 'x']\n[axes]\n"
     "'compute.man_bits' = [3]\n", "sweep.stages"),
    ("[sweep]\nname = 'a'\nbase = 'lightnorm'\n[axes]\n'compute.man_bits' = []\n",
     "axes.compute.man_bits"),
    ("[sweep\nname = 'a'\n", "not valid TOML"),
    ("[sweep]\nname = 'a'\nbase = 'lightnorm'\nbogus = 1\n[axes]\n'compute.man_bits' = [3]\n",
     "sweep keys"),
])
def test_malformed_sweep_files(tmp_path: Path, text: str, message: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(SweepError, match=message.replace("[", r"\[")):
        load_sweep(p)
    assert main(["sweep", str(p), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def _verdicts(d: Path, rows: Any = None) -> dict[tuple[str, str], Any]:
    """(spec, stage) -> metrics of every verdict in the store at ``d`` (or of ``rows`` read
    from it already)."""
    out: dict[tuple[str, str], Any] = {}
    for r in rows if rows is not None else ResultStore(d, create=False).rows():
        if r.status in ("ok", "failed"):
            key = (r.spec_name, r.stage)
            assert key not in out, f"{key} recorded twice"
            out[key] = r.metrics
    return out


def _drop_volatile(m: Any) -> Any:
    if isinstance(m, dict):
        return {k: _drop_volatile(v) for k, v in m.items() if k not in ("dir",)}
    return m


def test_sweep_killed_then_resumed_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    sweep = _sweep_file(tmp_path)
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"
    cli = [sys.executable, "-m", "lightnorm", "sweep", str(sweep), "--jobs", "1", "--json"]
    subprocess.run([*cli, "-o", str(ref_dir)], check=True, capture_output=True, timeout=900)
    ref = _verdicts(ref_dir)
    assert len(ref) == 3 * 3  # 3 valid points x 3 stages

    proc = subprocess.Popen([*cli, "-o", str(cut_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t_end = time.monotonic() + 600
    while time.monotonic() < t_end:  # kill -9 once the first point is done, mid-sweep
        if (cut_dir / "results.sqlite").is_file() and len(_verdicts(cut_dir)) >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    # open the store for writing: a writer killed between writing its WAL and indexing it
    # leaves a commit that only a connection able to run SQLite's recovery sees; before and
    # ids_before come from one read, the same state (two reads once differed by one verdict,
    # twice, in fresh-clone runs: a verdict written between them)
    rows_before = ResultStore(cut_dir).rows()
    ids_before = {r.id for r in rows_before}
    before = _verdicts(cut_dir, rows_before)
    assert 4 <= len(before) < 9, "the sweep should have been killed mid-way"

    subprocess.run([*cli, "-o", str(cut_dir)], check=True, capture_output=True, timeout=900)
    after = _verdicts(cut_dir)
    assert {k: _drop_volatile(v) for k, v in after.items()} == \
        {k: _drop_volatile(v) for k, v in ref.items()}
    # finished stages were not redone: their rows are the ones from before the kill
    new_rows = [r for r in ResultStore(cut_dir).rows() if r.id not in ids_before]
    assert {(r.spec_name, r.stage) for r in new_rows}.isdisjoint(set(before))
    assert len(new_rows) == 9 - len(before)


def test_sweep_on_a_dask_local_cluster_survives_a_killed_worker(tmp_path: Path) -> None:
    import distributed  # a core dependency (dask[distributed]): missing is a failure

    from lightnorm.flow.runner import run_on_dask

    sweep = load_sweep(_sweep_file(tmp_path))
    jobs = [Job(p.spec, sweep.name, False, p.coords) for p in sweep.valid if p.spec]
    opts = st.FlowOptions(stages=sweep.stages, out_dir=str(tmp_path / "out"))
    store = ResultStore(tmp_path / "out")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)  # worker address -> pid
            result: dict[str, Any] = {}

            def go() -> None:
                try:
                    result["summaries"] = run_on_dask(jobs, opts, store, cluster.scheduler_address)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    result["error"] = exc

            th = threading.Thread(target=go)
            th.start()
            killed = None
            t_end = time.monotonic() + 300
            while killed is None and time.monotonic() < t_end and th.is_alive():
                busy = client.processing()  # worker address -> keys it is running
                for addr, keys in busy.items():
                    if keys and addr in pids:
                        time.sleep(0.5)  # let it get into the task
                        os.kill(pids[addr], signal.SIGKILL)
                        killed = addr
                        break
                time.sleep(0.05)
            th.join(600)
            assert not th.is_alive()
    assert killed is not None, "no worker was seen running a task"
    assert "error" not in result, result.get("error")
    summaries = result["summaries"]
    assert len(summaries) == len(jobs)
    for s in summaries:
        assert all(v["status"] == "ok" for v in s["stages"].values()), s["stages"]
    assert len(_verdicts(tmp_path / "out")) == len(jobs) * len(sweep.stages)


def test_sweep_jobs_2_pool_gives_the_same_results(tmp_path: Path) -> None:
    sweep = load_sweep(_sweep_file(tmp_path))
    jobs = [Job(p.spec, sweep.name, False, p.coords) for p in sweep.valid if p.spec]
    opts = st.FlowOptions(stages=("generate", "quality"), out_dir=str(tmp_path / "a"))
    one = run_specs(jobs, opts, ResultStore(tmp_path / "a"), workers=1)
    two = run_specs(jobs, st.FlowOptions(stages=("generate", "quality"),
                                         out_dir=str(tmp_path / "b")),
                    ResultStore(tmp_path / "b"), workers=2)
    assert [s["stages"]["quality"]["metrics"] for s in one] == \
        [s["stages"]["quality"]["metrics"] for s in two]


# --- regress -------------------------------------------------------------------------------------
def test_regress_writes_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = _spec_file(tmp_path)
    junit = tmp_path / "j.xml"
    assert main(["regress", str(spec_path), "--seeds", "0,1", "--junit", str(junit)]) == 0
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["random-seed0", "random-seed1", "long-seed0",
                                              "edge"]
    assert root.get("failures") == "0" and not root.findall(".//failure")
    assert "4/4 cases bit-exact" in capsys.readouterr().out


def test_regress_mismatch_exits_1_with_a_junit_failure(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lightnorm.verify import cosim

    real = cosim.compare_many

    def one_bad(spec: Any, cases: Any, **kw: Any) -> list[dict[str, Any]]:
        res = real(spec, cases, **kw)
        res[-1] = dict(res[-1], bit_exact=False, mismatches=2,
                       first_mismatches=[{"tensor": "dx", "index": 3, "expected": "0x1",
                                          "got": "0x2"}])
        return res

    monkeypatch.setattr(cosim, "compare_many", one_bad)
    junit = tmp_path / "j.xml"
    assert main(["regress", str(_spec_file(tmp_path)), "--seeds", "0", "--junit",
                 str(junit)]) == 1
    fails = ET.parse(junit).getroot().findall(".//failure")
    assert len(fails) == 1 and "2 mismatches" in (fails[0].get("message") or "")


def test_regress_default_specs_skip_sweep_files(tmp_path: Path) -> None:
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "s.toml").write_text(textwrap.dedent(SWEEP))
    _spec_file(tmp_path)
    names = regress.default_specs(tmp_path)
    assert names[-1].endswith("tiny-flow.toml") and not any("s.toml" in n for n in names)
    assert load(names[0]).name == names[0]  # presets first


def test_a_flow_without_synthesis_still_reports(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    spec_path = _spec_file(tmp_path)
    assert main(["flow", str(spec_path), "-o", str(out), "--stages", "generate,quality",
                 "--jobs", "1", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    # no synthesis for the ratios: the report shows what is there and says what is missing
    assert Path(body["report"]["html"]).is_file()
    md = Path(body["report"]["markdown"]).read_text()
    assert "tiny-flow" in md and "stage synth is" in md
    assert main(["report", str(out), "--baseline", "tiny-flow", "--csv",
                 str(tmp_path / "new" / "rows.csv")]) == 0
    rows = (tmp_path / "new" / "rows.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 and rows[0].startswith("id,spec_name")  # generate and quality
    capsys.readouterr()
    assert main(["report", str(out), "--baseline", "nope"]) == 2  # a typo is still bad input
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err, err
