"""Faults (issue 15): ``kill -9`` of flow and sweep leaves no process behind and the rerun
redoes nothing; two flows on one directory compute each stage once (leases in the store); a
store with a damaged page or row is exit 2 naming the file, never a source of cached verdicts.
docs/reliability.md lists the promises these tests check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from lightnorm.cli.core import main
from lightnorm.flow import stages as st
from lightnorm.flow.runner import Job, run_spec, run_specs
from lightnorm.flow.store import (
    LEASE_STALE_S,
    SCHEMA_VERSION,
    ResultStore,
    StoreError,
    _pid_start,
    utc_now,
)
from lightnorm.spec import dumps, from_dict

from .test_synth import TINY as SYNTH_TINY

TINY = dict(SYNTH_TINY, name="tiny-fault", hw={"lanes": 2, "max_channel_elems": 4096})
#: how long every process of a killed flow may take to go away
ORPHAN_BOUND_S = 10.0


def _spec(name: str, man_bits: int = 3) -> dict[str, Any]:
    return dict(TINY, name=name, compute={"exp_bits": 4, "man_bits": man_bits})


def _write_spec(tmp: Path, table: dict[str, Any]) -> Path:
    p = tmp / f"{table['name']}.toml"
    p.write_text(dumps(from_dict(table)))
    return p


def _tagged(tag: str) -> list[psutil.Process]:
    """Every live process whose environment carries ``tag`` (what a run started, at any depth:
    workers, the resource tracker, g++ and its cc1plus...)."""
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("LIGHTNORM_TEST_TAG") == tag and p.status() != "zombie":
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def _verdicts(d: Path) -> dict[tuple[str, str], int]:
    """(spec, stage) -> id of its verdict row; each key holds exactly one."""
    out: dict[tuple[str, str], int] = {}
    for r in ResultStore(d, create=False).rows():
        if r.status in ("ok", "failed"):
            key = (r.spec_name, r.stage)
            assert key not in out, f"{key} recorded twice"
            out[key] = r.id
    return out


def _kill_mid_run(argv: list[str], out: Path, tmp: Path, *, want_verdicts: int,
                  want_tool: str | None) -> tuple[dict[tuple[str, str], int], str]:
    """Start ``lightnorm argv`` with a tag in its environment, SIGKILL it once ``want_verdicts``
    verdicts are recorded (and, if given, a ``want_tool`` process runs below it), then check
    that every tagged process is gone within ORPHAN_BOUND_S."""
    tag = uuid.uuid4().hex
    env = dict(os.environ, LIGHTNORM_TEST_TAG=tag, LIGHTNORM_CACHE=str(tmp / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "lightnorm", *argv], env=env, cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            ready = (out / "results.sqlite").is_file() and \
                len(_verdicts(out)) >= want_verdicts
            names = set()
            for p in _tagged(tag):
                try:
                    names.add(p.name())
                except psutil.NoSuchProcess:  # it ended since the scan (a short-lived tool)
                    continue
            if ready and (want_tool is None or any(want_tool in n for n in names)):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached the point to kill it")
        below = [p for p in _tagged(tag) if p.pid != proc.pid]
        assert len(below) >= 2, "expected pool workers (and the resource tracker) below it"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    t0 = time.monotonic()
    while _tagged(tag) and time.monotonic() - t0 < ORPHAN_BOUND_S:
        time.sleep(0.1)
    left = [(p.pid, p.name()) for p in _tagged(tag)]
    for p in _tagged(tag):  # do not leave them to the next test
        p.kill()
    assert not left, f"still running {ORPHAN_BOUND_S:.0f} s after kill -9: {left}"
    return _verdicts(out), tag


def _resume_redoes_nothing(argv: list[str], out: Path, tmp: Path,
                           before: dict[tuple[str, str], int], total: int) -> None:
    env = dict(os.environ, LIGHTNORM_CACHE=str(tmp / "cache"))
    run = subprocess.run([sys.executable, "-m", "lightnorm", *argv, "--json"], env=env, cwd=tmp,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    after = _verdicts(out)
    assert len(after) == total
    # what was recorded before the kill is the same row, and was read, not computed again
    assert all(after[k] == v for k, v in before.items())
    body = json.loads(run.stdout)
    for s in body["specs"]:
        for stage, ent in s["stages"].items():
            if (s["spec"], stage) in before:
                assert ent["cached"] is True, (s["spec"], stage)
    assert not ResultStore(out).leases()  # every claim was dropped


def test_kill_9_flow_leaves_no_process_and_resume_redoes_nothing(tmp_path: Path) -> None:
    """The flow on a pool of 2 workers, killed while g++ compiles a C-simulation (a fresh tool
    cache: the compile is real): workers, their g++/cc1plus and the resource tracker go."""
    specs = [str(_write_spec(tmp_path, _spec(f"kill-{i}", 2 + i))) for i in range(3)]
    out = tmp_path / "out"
    argv = ["flow", *specs, "-o", str(out), "--stages", "generate,csim", "--jobs", "2"]
    before, _ = _kill_mid_run(argv, out, tmp_path, want_verdicts=1, want_tool="cc1plus")
    assert 1 <= len(before) < 6
    _resume_redoes_nothing(argv, out, tmp_path, before, total=6)


def test_kill_9_sweep_leaves_no_process_and_resume_redoes_nothing(tmp_path: Path) -> None:
    _write_spec(tmp_path, TINY)
    (tmp_path / "sweep.toml").write_text(
        "[sweep]\nname = 'killed'\nbase = 'tiny-fault.toml'\nstages = ['generate', 'quality']\n"
        "[axes]\n'compute.man_bits' = [2, 3, 4, 5]\n")
    out = tmp_path / "out"
    argv = ["sweep", str(tmp_path / "sweep.toml"), "-o", str(out), "--jobs", "2"]
    before, _ = _kill_mid_run(argv, out, tmp_path, want_verdicts=2, want_tool=None)
    assert 2 <= len(before) < 8
    _resume_redoes_nothing(argv, out, tmp_path, before, total=8)


# --- two flows on one directory --------------------------------------------------------------
def test_two_concurrent_flows_compute_each_stage_once(tmp_path: Path) -> None:
    specs = [str(_write_spec(tmp_path, _spec(f"both-{i}", 2 + i))) for i in range(2)]
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "lightnorm", "flow", *specs, "-o", str(out), "--stages",
            "generate,quality", "--jobs", "1", "--json"]
    env = dict(os.environ, LIGHTNORM_CACHE=str(tmp_path / "cache"))
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    bodies = []
    for r in runs:
        stdout, stderr = r.communicate(timeout=900)
        assert r.returncode == 0, stderr[-2000:]
        bodies.append(json.loads(stdout))
    computed: dict[tuple[str, str], int] = {}
    for body in bodies:
        for s in body["specs"]:
            for stage, ent in s["stages"].items():
                assert ent["status"] == "ok"
                computed[(s["spec"], stage)] = computed.get((s["spec"], stage), 0) + \
                    (not ent["cached"])
    assert computed == {(f"both-{i}", stage): 1 for i in range(2)
                        for stage in ("generate", "quality")}
    rows = ResultStore(out).rows()
    assert len(rows) == 4 and all(r.status == "ok" for r in rows)
    assert not ResultStore(out).leases()


def _quality_key(spec: Any, opts: st.FlowOptions) -> str:
    return st.stage_key("quality", spec, st.stage_inputs("quality", spec, opts),
                        st.tool_versions("quality"))


def _hold(store: ResultStore, key: str, pid: int, host: str | None = None,
          renewed: float | None = None) -> None:
    """Put a claim of another process into the store."""
    import socket

    with store._write() as con:
        con.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                    (key, host or socket.gethostname(), pid, _pid_start(pid), utc_now(),
                     time.time() if renewed is None else renewed))


def _counted_quality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> tuple[Any, st.FlowOptions, ResultStore, str, list[int]]:
    """A spec whose quality stage only counts its runs, its options, store and stage key."""
    spec = from_dict(TINY)
    opts = st.FlowOptions(stages=("quality",), out_dir=str(tmp_path))
    calls: list[int] = []
    monkeypatch.setitem(st.RUNNERS, "quality", lambda *a: calls.append(1) or ("ok", None, {}))
    return spec, opts, ResultStore(tmp_path), _quality_key(spec, opts), calls


def test_a_stage_claimed_by_a_live_run_is_waited_for_and_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, opts, store, key, calls = _counted_quality(tmp_path, monkeypatch)
    monkeypatch.setattr("lightnorm.flow.runner.WAIT_POLL_S", 0.05)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _hold(store, key, owner.pid)
        events: list[str] = []
        result: dict[str, Any] = {}
        t = threading.Thread(target=lambda: result.update(run_spec(
            spec, opts, store, on_event=lambda n, s, e: events.append(e))))
        t.start()
        t0 = time.monotonic()
        while "waiting" not in events and time.monotonic() - t0 < 30:
            time.sleep(0.02)
        assert "waiting" in events and t.is_alive() and calls == []
        # the owner records its verdict and drops the claim: the waiting run reuses it
        store.record(spec_hash=spec.hash, spec_name=spec.name, spec_toml=dumps(spec),
                     stage="quality", stage_key=key, tool_versions={}, inputs={}, status="ok",
                     reason=None, metrics={"by": "the other run"}, started=utc_now(),
                     duration_s=1.0, version="test")
        with store._write() as con:
            con.execute("DELETE FROM leases")
        t.join(30)
        assert not t.is_alive()
    finally:
        owner.kill()
        owner.wait()
    ent = result["stages"]["quality"]
    assert ent["cached"] is True and ent["metrics"] == {"by": "the other run"}
    assert calls == []


def test_a_dead_or_stale_claim_is_taken_over(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec, opts, store, key, calls = _counted_quality(tmp_path, monkeypatch)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _hold(store, key, gone.pid)  # its owner exited (kill -9 of a flow)
    assert store.claim(key)[0] == "claimed"
    store.release(key)
    _hold(store, key, 1, host="elsewhere")  # another machine, renewed just now: alive
    assert store.claim(key)[0] == "held"
    _hold(store, key, 1, host="elsewhere", renewed=time.time() - LEASE_STALE_S - 1)
    s = run_spec(spec, opts, store)  # not renewed for too long: taken over
    assert s["stages"]["quality"]["cached"] is False and calls == [1]
    assert not store.leases()


# --- a damaged store ------------------------------------------------------------------------------
def _store_with_rows(d: Path) -> list[dict[str, Any]]:
    store = ResultStore(d)
    for i in range(40):  # enough rows for the tables and indexes to span many pages
        spec = from_dict(_spec(f"spec-{i}", 2 + i % 5))
        store.add_member("flow", spec.hash, spec.name, dumps(spec), False)
        for stage in ("csim", "quality"):
            store.record(spec_hash=spec.hash, spec_name=spec.name, spec_toml=dumps(spec),
                         stage=stage, stage_key=f"{stage}-{i}", tool_versions={"t": "1"},
                         inputs={"i": i}, status="ok", reason=None,
                         metrics={"bit_exact": True, "values": list(range(i, i + 30))},
                         started=utc_now(), duration_s=0.5, version="test")
    assert not (d / "results.sqlite-wal").exists()  # everything is in the main file
    return store.summaries()


def test_every_damaged_page_is_exit_2_or_harmless(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Overwrite each page of a store in turn: opening, reporting and reading verdicts either
    stop with exit 2 (one line, the file, how to recover) or - the page held nothing in use -
    give exactly what the intact store gives. Never a traceback, never a changed verdict."""
    good = tmp_path / "good"
    reference = _store_with_rows(good)
    keys = {f"{st_}-{i}": None for i in range(40) for st_ in ("csim", "quality")}
    for k in keys:
        keys[k] = ResultStore(good).verdict(k)
    data = (good / "results.sqlite").read_bytes()
    page = 4096
    pages = len(data) // page
    assert pages >= 10
    rng = __import__("random").Random(15)
    damaged = 0
    for p in range(pages):
        d = tmp_path / f"p{p}"
        d.mkdir()
        noise = bytes(rng.randrange(256) for _ in range(page))
        (d / "results.sqlite").write_bytes(data[:p * page] + noise + data[(p + 1) * page:])
        rc = main(["report", str(d), "-o", str(tmp_path / "r"), "--json"])
        _, err = capsys.readouterr()
        if rc == 2:
            damaged += 1
            assert err.count("\n") == 1 and str(d / "results.sqlite") in err, err
            assert "move it aside" in err or "not a lightnorm" in err, err
            with pytest.raises(StoreError):
                ResultStore(d)
            continue
        assert rc == 0, err
        store = ResultStore(d)
        assert store.summaries() == reference
        for k, row in keys.items():
            assert store.verdict(k) == row
        shutil.rmtree(d)
    assert damaged >= pages // 2  # most pages hold data: those are all caught


def test_an_edited_row_or_malformed_json_is_exit_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _store_with_rows(tmp_path)
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.execute("UPDATE results SET metrics = '{\"bit_exact\": tru' WHERE id = 3")
    con.commit()
    con.close()
    for argv in (["report", str(tmp_path)],
                 ["flow", "lightnorm", "-o", str(tmp_path), "--stages", "generate"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "damaged" in err and "results row 3" in err, err
    # a writer that kept the checksum consistent but stored text that is not JSON
    from lightnorm.flow import store as store_mod

    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.row_factory = sqlite3.Row
    r = dict(con.execute("SELECT * FROM results WHERE id = 3").fetchone())
    con.execute("UPDATE results SET row_digest = ? WHERE id = 3",
                (store_mod._digest([r[c] for c in store_mod._RESULT_COLS]),))
    con.commit()
    con.close()
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "malformed JSON" in err


SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, spec_hash TEXT NOT NULL,
    spec_name TEXT NOT NULL, stage TEXT NOT NULL, stage_key TEXT NOT NULL,
    tool_versions TEXT NOT NULL, inputs TEXT NOT NULL, spec_toml TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, metrics TEXT, started TEXT NOT NULL,
    finished TEXT NOT NULL, duration_s REAL NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    lightnorm_version TEXT NOT NULL);
CREATE UNIQUE INDEX results_verdict ON results (stage_key) WHERE status IN ('ok', 'failed');
CREATE TABLE members (collection TEXT NOT NULL, spec_hash TEXT NOT NULL,
    spec_name TEXT NOT NULL, spec_toml TEXT NOT NULL, preset INTEGER NOT NULL, point TEXT,
    added TEXT NOT NULL, PRIMARY KEY (collection, spec_hash));
CREATE TABLE skipped (collection TEXT NOT NULL, point TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (collection, point));
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO results VALUES (NULL, 'h', 's', 'csim', 'k', '{}', '{}', '', 'ok', NULL,
    '{"bit_exact": true}', 't0', 't1', 1.5, 'host', 1, '0.1');
INSERT INTO members VALUES ('flow', 'h', 's', '', 0, NULL, 't0');
"""


def test_a_schema_1_store_is_migrated(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.executescript(SCHEMA_V1)
    con.close()
    store = ResultStore(tmp_path)
    row = store.verdict("k")
    assert row is not None and row.metrics == {"bit_exact": True}
    assert store.members()[0]["spec"] == "s"
    con = sqlite3.connect(tmp_path / "results.sqlite")
    assert con.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    con.close()
    assert store.claim("other")[0] == "claimed"  # the leases table exists


def test_run_specs_on_a_damaged_store_stops_before_any_stage(tmp_path: Path) -> None:
    (tmp_path / "results.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    with pytest.raises(StoreError):
        run_specs([Job(from_dict(TINY))], st.FlowOptions(stages=("generate",)),
                  ResultStore(tmp_path), 0)


def test_ctrl_c_of_a_flow_is_one_line_exit_130_and_resumes(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it: the flow says it was
    interrupted (one line, exit 130), its workers stop without a traceback and leave nothing
    running, and the rerun reads what had finished."""
    # three specs on two workers, interrupted during the last stage: one worker is idle then
    specs = [str(_write_spec(tmp_path, _spec(f"intr-{i}", 2 + i))) for i in range(3)]
    out = tmp_path / "out"
    # csim with a fresh tool cache: the last stage compiles for seconds, time to interrupt it
    argv = ["flow", *specs, "-o", str(out), "--stages", "generate,csim", "--jobs", "2"]
    tag = uuid.uuid4().hex
    env = dict(os.environ, LIGHTNORM_TEST_TAG=tag, LIGHTNORM_CACHE=str(tmp_path / "cache"))
    # as a terminal's foreground job: SIGINT at its default, whatever this test inherited (a
    # background job of a non-interactive shell has it ignored, and the flow then ignores it)
    proc = subprocess.Popen([sys.executable, "-m", "lightnorm", *argv, "--json"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.monotonic()
    while not ((out / "results.sqlite").is_file() and len(_verdicts(out)) >= 5
               and ResultStore(out, check=False).leases()):  # the last stage is running
        assert proc.poll() is None and time.monotonic() - t0 < 600
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.splitlines() == [line for line in err.splitlines() if line.strip()]
    assert len(err.splitlines()) == 1 and "interrupted" in err and "Traceback" not in err, err
    t0 = time.monotonic()
    while _tagged(tag) and time.monotonic() - t0 < ORPHAN_BOUND_S:
        time.sleep(0.1)
    assert not _tagged(tag)
    before = _verdicts(out)
    _resume_redoes_nothing(argv, out, tmp_path, before, total=6)


def test_a_flow_that_ignores_ctrl_c_ignores_it_in_its_workers(tmp_path: Path) -> None:
    """Started with SIGINT ignored (a background job of a shell without job control), the flow
    and its pool workers all ignore a SIGINT to the group: the run completes, exit 0, no
    broken pool."""
    specs = [str(_write_spec(tmp_path, _spec(f"bg-{i}", 2 + i))) for i in range(2)]
    out = tmp_path / "out"
    argv = ["flow", *specs, "-o", str(out), "--stages", "generate,csim", "--jobs", "2"]
    env = dict(os.environ, LIGHTNORM_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "lightnorm", *argv, "--json"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    t0 = time.monotonic()
    while not ((out / "results.sqlite").is_file() and ResultStore(out, check=False).leases()):
        assert proc.poll() is None and time.monotonic() - t0 < 600  # a stage is running
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenProcessPool" not in err, err
    assert len(_verdicts(out)) == 4  # generate and csim of both specs


def test_a_tool_dies_with_the_process_that_ran_it(tmp_path: Path) -> None:
    """run_tool's children get a parent-death signal: kill -9 of a single-process command
    (csim, synth...) does not leave its g++ or Yosys running."""
    tag = uuid.uuid4().hex
    script = ("from pathlib import Path\n"
              "from lightnorm.tools.runner import ToolCommand, run_tool\n"
              f"run_tool(ToolCommand(('sleep', '120'), Path({str(tmp_path)!r})))\n")
    proc = subprocess.Popen([sys.executable, "-c", script],
                            env=dict(os.environ, LIGHTNORM_TEST_TAG=tag))
    t0 = time.monotonic()
    while not any(p.name() == "sleep" for p in _tagged(tag)):
        assert time.monotonic() - t0 < 60 and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    t0 = time.monotonic()
    while _tagged(tag) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    left = [(p.pid, p.name()) for p in _tagged(tag)]
    for p in _tagged(tag):
        p.kill()
    assert not left
